"""Shared state that cannot start says why and exits 2 (no traceback); the Redis password
never shows in a repr, a log line or the status output."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from mangaroute import Router
from mangaroute.cli import main
from mangaroute.config import default_config_text, load_config, parse_config
from mangaroute.core.fleet import SharedSettings, redact_url
from mangaroute.shared import SharedState
from mangaroute.shared.redis_store import SharedSetupError, key_prefix
from tests.shared.helpers import FLEET_CONFIG, serve_until_synced

ROOT = Path(__file__).resolve().parents[2]
SECRET = "Hunter2-s3cr3t"


def _config(tmp_path: Path, url: str, deployment: str = "setup-test", **extra: str) -> Path:
    lines = [f'url = "{url}"', f'deployment = "{deployment}"', "timeout_ms = 100"]
    lines += [f"{key} = {value}" for key, value in extra.items()]
    path = tmp_path / "fleet.toml"
    path.write_text(default_config_text() + "\n[shared]\n" + "\n".join(lines) + "\n")
    return path


def _without_redis(tmp_path: Path) -> dict[str, str]:
    """An environment whose ``import redis`` fails, as without ``mangaroute[redis]``."""
    shadow = tmp_path / "no-redis"
    (shadow / "redis").mkdir(parents=True)
    (shadow / "redis" / "__init__.py").write_text(
        "raise ImportError(\"No module named 'redis' (hidden by the test)\")\n"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(shadow), str(ROOT)]))
    return env


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mangaroute", *args],
        cwd=ROOT,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("command", ["serve", "status"])
def test_without_the_redis_package_the_cli_says_so_and_exits_2(
    tmp_path: Path, command: str
) -> None:
    path = _config(tmp_path, "redis://127.0.0.1:1/0")
    args = (
        ["serve", "--listen", "127.0.0.1:0", "--config", str(path)]
        if command == "serve"
        else ["shared", "status", "--config", str(path)]
    )
    done = _run(args, _without_redis(tmp_path))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "needs the redis package: pip install 'mangaroute[redis]'" in done.stderr


@pytest.mark.parametrize("command", ["serve", "status"])
def test_an_unset_password_env_is_named_and_exits_2(tmp_path: Path, command: str) -> None:
    path = _config(tmp_path, "redis://127.0.0.1:1/0", password_env='"MANGAROUTE_TEST_NO_SUCH"')
    env = dict(os.environ)
    env.pop("MANGAROUTE_TEST_NO_SUCH", None)
    args = (
        ["serve", "--listen", "127.0.0.1:0", "--config", str(path)]
        if command == "serve"
        else ["shared", "status", "--config", str(path)]
    )
    done = _run(args, env)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert (
        "[shared] password_env names the environment variable 'MANGAROUTE_TEST_NO_SUCH', "
        "which is not set" in done.stderr
    )


def test_shared_state_raises_the_setup_error_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MANGAROUTE_TEST_NO_SUCH", raising=False)
    config = parse_config(FLEET_CONFIG)
    settings = SharedSettings(
        url="redis://127.0.0.1:1/0", deployment="d", password_env="MANGAROUTE_TEST_NO_SUCH"
    )
    with pytest.raises(SharedSetupError, match="MANGAROUTE_TEST_NO_SUCH"):
        SharedState(Router(config), settings, start=False)


def test_the_password_is_not_in_the_repr_of_the_config_or_the_settings(tmp_path: Path) -> None:
    url = f"redis://app:{SECRET}@127.0.0.1:6379/0?password={SECRET}x"
    config = load_config(_config(tmp_path, url))
    assert config.shared is not None
    assert config.shared.url == url  # the client still gets it
    for text in (repr(config), repr(config.shared), str(config.shared)):
        assert SECRET not in text
    assert "url='redis://app:***@127.0.0.1:6379/0?password=***'" in repr(config.shared)
    with pytest.raises(ValueError) as caught:
        SharedSettings(url=f"http://app:{SECRET}@cache", deployment="d")
    assert SECRET not in str(caught.value) and "http://app:***@cache" in str(caught.value)


def test_the_password_is_not_in_the_status_output_or_the_log(
    tmp_path: Path, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # the test server has no requirepass: redis-py's AUTH is accepted and the status shown
    host = urlsplit(redis_url).netloc
    path = _config(tmp_path, f"redis://:{SECRET}@{host}/0", sync_interval_ms="100")
    out = io.StringIO()
    with caplog.at_level(logging.DEBUG, logger="mangaroute"):
        code = main(["shared", "status", "--config", str(path), "--json"], out=out)
        router = Router(load_config(path))
        with SharedState(router, start=False) as state:
            state.sync_now()
            status = state.status()
    assert code == 0
    assert f'"url": "redis://:***@{host}/0"' in out.getvalue()
    assert SECRET not in out.getvalue()
    assert SECRET not in repr(status)
    assert all(SECRET not in record.getMessage() for record in caplog.records)


def test_serve_logs_the_url_without_the_password(
    tmp_path: Path, redis_url: str, deployment: str, redis_client: redis.Redis
) -> None:
    host = urlsplit(redis_url).netloc
    path = _config(
        tmp_path,
        f"redis://:{SECRET}@{host}/0",
        deployment,
        sync_interval_ms="100",
        replica_id='"sidecar-pw"',
    )
    code, log = serve_until_synced(
        path, key_prefix(deployment) + "replicas", "sidecar-pw", redis_client, "DEBUG"
    )
    assert code == 0, log
    assert f"redis://:***@{host}/0" in log
    assert SECRET not in log


PASSWORDS = st.text(
    alphabet=st.characters(blacklist_characters="/?#&", blacklist_categories=("Cs", "Cc")),
    min_size=1,
    max_size=30,
).map(lambda s: "PW" + s)


@given(
    password=PASSWORDS,
    user=st.sampled_from(["", "app", "default"]),
    scheme=st.sampled_from(["redis", "rediss"]),
    query=st.booleans(),
)
def test_redact_hides_any_password_and_keeps_the_address(
    password: str, user: str, scheme: str, query: bool
) -> None:
    url = f"{scheme}://{user}:{password}@cache.example:6380/2"
    if query:
        url += f"?password={password}&db=2"
    shown = redact_url(url)
    assert password not in shown
    parts = urlsplit(shown)
    assert (parts.hostname, parts.port, parts.path) == ("cache.example", 6380, "/2")
    assert parts.username == user
