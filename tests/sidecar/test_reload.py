"""``mangaroute serve`` reloads its config without a restart: on SIGHUP and when the file
changes, keeping what it knows of the targets that stay; a config that does not load is
refused with its reason while the running one keeps serving."""

from __future__ import annotations

import signal
import sys
from importlib import resources
from pathlib import Path

from mangaroute.sidecar._generated.mangaroute_api.v1 import router_pb2 as pb

from .conftest import ServeProcess, connect, counts, report, wait_for

SHIPPED = resources.files("mangaroute").joinpath("data", "mangaassist.toml").read_text("utf-8")


def _names(stub: object) -> set[str]:
    snapshot = stub.GetSnapshot(pb.GetSnapshotRequest(), timeout=10)  # type: ignore[attr-defined]
    return {t.target.name for t in snapshot.targets}


def _logged(server: ServeProcess, text: str) -> bool:
    return text in "".join(server.log)


def test_sighup_and_a_changed_file_reload_the_config_keeping_what_it_knows(
    spawn: type[ServeProcess], tmp_path: Path
) -> None:
    path = tmp_path / "router.toml"
    path.write_text(SHIPPED)
    server = spawn([sys.executable, "-m", "mangaroute.sidecar", "--config", str(path)])
    with connect(server.address()) as (_, stub):
        for _ in range(3):
            stub.Report(report("ondemand-haiku"), timeout=10)
        before = _names(stub)
        assert "ondemand-haiku" in before

        # SIGHUP with a new price for Haiku: the same targets, Haiku's counts kept
        path.write_text(
            SHIPPED.replace("input_per_million_usd = 0.25", "input_per_million_usd = 0.3")
        )
        server.process.send_signal(signal.SIGHUP)
        wait_for(lambda: _logged(server, "config reloaded (SIGHUP)"), timeout_s=30)
        assert _names(stub) == before
        assert counts(stub)["ondemand-haiku"][0] == 3

        # a broken file: refused, the running config keeps serving
        path.write_text(SHIPPED + "\n[targets.broken\n")
        server.process.send_signal(signal.SIGHUP)
        wait_for(lambda: _logged(server, "rejected, the running config keeps serving"), 30)
        assert stub.Choose(pb.ChooseRequest(request_class="simple"), timeout=10).target.name
        assert counts(stub)["ondemand-haiku"][0] == 3

        # a changed file, no signal: picked up by the watcher (every 2 s)
        extra = SHIPPED + (
            '\n[targets.spare-haiku]\npattern = "bedrock_on_demand"\n'
            'model_id = "anthropic.claude-3-5-haiku-20241022-v1:0"\n'
            'region = "ap-northeast-1"\nprior = "bedrock_ondemand_haiku"\n'
        )
        path.write_text(extra)
        wait_for(lambda: "spare-haiku" in _names(stub), timeout_s=30)
        wait_for(lambda: _logged(server, "config reloaded (the file changed)"), timeout_s=30)
        assert counts(stub)["ondemand-haiku"][0] == 3
    server.process.send_signal(signal.SIGTERM)
    assert server.finish() == 0
    assert "Traceback" not in "".join(server.log)
