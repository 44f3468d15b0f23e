"""``mangaroute shared status`` and ``mangaroute serve`` with a [shared] table."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import redis

from mangaroute import Router
from mangaroute.cli import main
from mangaroute.config import default_config_text, load_config
from mangaroute.shared import SharedState
from mangaroute.shared.cli import redact
from mangaroute.shared.redis_store import key_prefix
from tests.shared.helpers import serve_until_synced

ROOT = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path, url: str, deployment: str, **extra: str) -> Path:
    lines = [f'url = "{url}"', f'deployment = "{deployment}"', "sync_interval_ms = 100"]
    lines += [f"{key} = {value}" for key, value in extra.items()]
    path = tmp_path / "fleet.toml"
    path.write_text(default_config_text() + "\n[shared]\n" + "\n".join(lines) + "\n")
    return path


def test_status_shows_replicas_primary_ejections_usage_and_spend(
    tmp_path: Path, redis_url: str, deployment: str
) -> None:
    path = _config(tmp_path, redis_url, deployment)
    router = Router(load_config(path))
    with SharedState(router, start=False) as state:
        for _ in range(40):
            decision = router.choose("complex")
            router.record(decision, latency_ms=900, input_tokens=1500, output_tokens=500)
        router.record("ondemand-sonnet", latency_ms=900, input_tokens=1000, output_tokens=1000)
        router.eject("provisioned-sonnet", "AccessDeniedException")
        router.snapshot()
        for _ in range(2):
            assert state.sync_now()
        out = io.StringIO()
        assert main(["shared", "status", "--config", str(path), "--json"], out=out) == 0
        status = json.loads(out.getvalue())
        text = io.StringIO()
        assert main(["shared", "status", "--config", str(path)], out=text) == 0
    assert status["deployment"] == deployment
    assert [r["replica"] for r in status["replicas"]] == [state.replica]
    assert status["primary"]["target"] != "provisioned-sonnet"
    assert status["primary"]["by"] == state.replica and status["primary"]["epoch"] == 1
    assert [(e["target"], e["reason"]) for e in status["ejections"]] == [
        ("provisioned-sonnet", "AccessDeniedException")
    ]
    usage = status["usage"]
    fleet_requests = sum(row["requests_per_second"] for row in usage.values())
    assert fleet_requests > 0
    assert status["spend_today_usd"] >= 0.018  # 1,000 x $3 + 1,000 x $15 per million
    lines = text.getvalue()
    assert f"deployment {deployment}" in lines and "replicas: 1 live" in lines
    assert "provisioned-sonnet" in lines and "AccessDeniedException" in lines


def test_status_of_an_unreachable_redis_exits_1_and_says_why(
    tmp_path: Path, deployment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _config(tmp_path, "redis://app:hunter2@127.0.0.1:1/0", deployment, timeout_ms="100")
    out = io.StringIO()
    assert main(["shared", "status", "--config", str(path)], out=out) == 1
    assert out.getvalue() == ""  # a failure is said on stderr, like every command's
    err = capsys.readouterr().err
    assert err.startswith(
        "mangaroute: shared state at redis://app:***@127.0.0.1:1/0 is unreachable"
    )
    assert "hunter2" not in err
    out = io.StringIO()
    assert main(["shared", "status", "--config", str(path), "--json"], out=out) == 1
    failure = json.loads(out.getvalue())
    assert failure["type"] == "CommandFailed" and failure["field"] is None
    assert failure["error"].startswith(
        "shared state at redis://app:***@127.0.0.1:1/0 is unreachable"
    )
    assert "hunter2" not in out.getvalue() + capsys.readouterr().err


def test_status_needs_a_shared_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "plain.toml"
    path.write_text(default_config_text())
    assert main(["shared", "status", "--config", str(path)], out=io.StringIO()) == 2
    assert f"{path} has no [shared] table" in capsys.readouterr().err


def test_redact_hides_only_the_password() -> None:
    assert redact("rediss://user:pw@cache:6379/0") == "rediss://user:***@cache:6379/0"
    assert redact("redis://cache:6379/0") == "redis://cache:6379/0"
    assert redact("redis://:pw@cache") == "redis://:***@cache"


def test_serve_joins_the_fleet_and_leaves_on_sigterm(
    tmp_path: Path, redis_url: str, deployment: str, redis_client: redis.Redis
) -> None:
    path = _config(tmp_path, redis_url, deployment, replica_id='"sidecar-1"')
    code, log = serve_until_synced(
        path, key_prefix(deployment) + "replicas", "sidecar-1", redis_client
    )
    assert code == 0, log
    assert f"sharing routing state as replica sidecar-1 of deployment '{deployment}'" in log
