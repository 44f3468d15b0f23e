"""Which config ``mangaroute serve`` serves: ``--config``, else ``MANGAROUTE_CONFIG``, else
``--demo`` for the shipped example - and without any of them, a refusal (exit 2) instead of
quietly serving ARNs in the placeholder account 123456789012."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from mangaroute.config import default_config_text
from mangaroute.sidecar._generated.mangaroute_api.v1 import router_pb2 as pb
from mangaroute.sidecar.cli import main as sidecar_main

from .conftest import ServeProcess, connect

SERVE = [sys.executable, "-m", "mangaroute", "serve", "--listen", "127.0.0.1:0"]


def _env(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if k != "MANGAROUTE_CONFIG"}, **extra}


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MANGAROUTE_CONFIG", raising=False)


@pytest.mark.usefixtures("no_env")
def test_serve_without_a_config_refuses_and_says_what_to_do(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert sidecar_main(["--listen", "0"]) == 2
    err = capsys.readouterr().err
    assert "no router config: pass --config FILE or set MANGAROUTE_CONFIG=FILE" in err
    assert "--demo serves the shipped MangaAssist example" in err
    assert "placeholder account 123456789012" in err


@pytest.mark.usefixtures("no_env")
def test_demo_and_config_together_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sidecar_main(["--listen", "0", "--demo", "--config", str(tmp_path / "x.toml")]) == 2
    assert "--demo serves the shipped example config and --config names your own" in (
        capsys.readouterr().err
    )


def test_the_config_flag_wins_over_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MANGAROUTE_CONFIG", str(tmp_path / "from-env.toml"))
    bad = tmp_path / "from-flag.toml"
    bad.write_text("[router]\ndefault_class = 3\n")
    assert sidecar_main(["--listen", "0", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "from-flag.toml" in err and "from-env.toml" not in err


def test_an_unreadable_variable_config_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "router.toml"
    monkeypatch.setenv("MANGAROUTE_CONFIG", str(missing))
    assert sidecar_main(["--listen", "0"]) == 2
    assert f"{missing} cannot be read: No such file or directory" in capsys.readouterr().err


def test_serve_serves_the_config_the_variable_names(
    spawn: type[ServeProcess], tmp_path: Path
) -> None:
    path = tmp_path / "router.toml"
    path.write_text(
        default_config_text().replace("[targets.ondemand-haiku]", "[targets.haiku-tokyo]")
        .replace('"ondemand-haiku"', '"haiku-tokyo"')
    )  # fmt: skip
    server = spawn(SERVE, env=_env(MANGAROUTE_CONFIG=str(path)))
    address = server.address()
    with connect(address) as (_, stub):
        snapshot = stub.GetSnapshot(pb.GetSnapshotRequest(), timeout=10)
    assert "haiku-tokyo" in {t.target.name for t in snapshot.targets}
    server.process.send_signal(signal.SIGTERM)
    assert server.finish() == 0
    log = "".join(server.log)
    assert f"targets from {path}" in log
    assert "placeholder account" not in log


def test_demo_serves_the_example_and_warns_about_its_arns(spawn: type[ServeProcess]) -> None:
    server = spawn([*SERVE, "--demo"], env=_env())
    address = server.address()
    with connect(address) as (_, stub):
        assert stub.Choose(pb.ChooseRequest(request_class="manga"), timeout=10).target.name
    server.process.send_signal(signal.SIGTERM)
    assert server.finish() == 0
    log = "".join(server.log)
    assert "--demo: serving the shipped MangaAssist example" in log
    assert "placeholder account 123456789012" in log
