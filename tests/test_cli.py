"""The `mangaroute` command, run as a user runs it."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mangaroute import FakeClock, Router
from mangaroute.cli import build_parser, error_json
from mangaroute.cli.routing import _snapshot_text
from mangaroute.core.errors import ConfigError
from mangaroute.sidecar.cli import add_arguments as add_serve_arguments

from .conftest import SMALL_CONFIG


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mangaroute", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_help_lists_the_commands() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("config", "targets", "snapshot", "route", "walkthrough", "plan"):
        assert command in result.stdout


def test_config_check_accepts_a_good_file(tmp_path: Path) -> None:
    path = tmp_path / "good.toml"
    path.write_text(SMALL_CONFIG)
    result = run("config", "check", str(path))
    assert result.returncode == 0, result.stderr
    assert f"{path}: OK" in result.stdout
    assert "fast" in result.stdout and "ordered" in result.stdout
    data = json.loads(run("config", "check", str(path), "--json").stdout)
    assert data["ok"] is True and [t["name"] for t in data["targets"]] == ["fast", "slow", "steady"]


def test_config_check_rejects_a_bad_file_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(SMALL_CONFIG.replace("tokens_per_minute = 100000", "tokens_per_minute = 0"))
    result = run("config", "check", str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    assert f"{path}: [targets.fast.tokens_per_minute] expected a number > 0" in result.stderr


def test_config_show_prints_a_loadable_default(tmp_path: Path) -> None:
    path = tmp_path / "copy.toml"
    path.write_text(run("config", "show").stdout)
    assert run("config", "check", str(path)).returncode == 0


def test_targets_json_lists_the_default_targets() -> None:
    data = json.loads(run("targets", "--json").stdout)
    assert [t["name"] for t in data] == [
        "provisioned-sonnet",
        "ondemand-haiku",
        "ondemand-sonnet",
        "sagemaker-manga",
    ]
    assert data[0]["prior"]["p99_ms"] == 1400


def test_snapshot_json_shows_priors_and_routes() -> None:
    data = json.loads(run("snapshot", "--json").stdout)
    assert data["primary"] == "provisioned-sonnet"
    assert data["targets"][0]["latency_ms"]["source"] == "prior"
    assert data["routes"]["manga"]["candidates"][0] == "sagemaker-manga"


@pytest.mark.parametrize("budget", ["1000", "5000"])
def test_route_reports_decision_and_share(budget: str) -> None:
    data = json.loads(run("route", "--class", "simple", "--budget-ms", budget, "--json").stdout)
    shares = data["share"]
    assert abs(sum(shares.values()) - 1) < 1e-6
    if budget == "1000":  # every prior p99 is over 1,000 ms: nothing fits
        assert data["decision"]["reason"].endswith("+over_budget")
    else:
        assert shares["provisioned-sonnet"] > 0.8


def test_route_rejects_an_unknown_class() -> None:
    result = run("route", "--class", "poetry")
    assert result.returncode == 2
    assert "unknown request class 'poetry'; configured classes: simple, complex, manga" in (
        result.stderr
    )


def test_walkthrough_shows_ejection_failover_and_recovery() -> None:
    data = json.loads(run("walkthrough", "--json").stdout)
    events = data["events"]
    kinds = [(e["event"], e.get("to")) for e in events]
    assert ("breaker", "open") in kinds and ("breaker", "closed") in kinds
    switches = [e for e in events if e["event"] == "switch"]
    assert switches[0]["from"] == "provisioned-sonnet"
    assert any(e["reason"] == "recovered" and e["to"] == "provisioned-sonnet" for e in switches)
    outage = data["phases"][1]
    assert outage["phase"] == "primary outage"
    assert outage["answered"] == outage["requests"]  # failover hid the outage from users
    assert "provisioned-sonnet" not in outage["answered_by"]
    assert run("walkthrough", "--json").stdout == run("walkthrough", "--json").stdout


def test_walkthrough_text_is_readable() -> None:
    result = run("walkthrough")
    assert result.returncode == 0
    assert "primary outage" in result.stdout and "Events:" in result.stdout


# -- MANGAROUTE_CONFIG: the config path when --config is absent ------------------------------


def run_with(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "MANGAROUTE_CONFIG"}
    return subprocess.run(
        [sys.executable, "-m", "mangaroute", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**base, **env},
    )


@pytest.mark.parametrize(
    "command", [["targets"], ["snapshot"], ["route"], ["telemetry", "dashboard"]], ids=" ".join
)
def test_mangaroute_config_names_the_config_when_config_is_absent(
    tmp_path: Path, command: list[str]
) -> None:
    path = tmp_path / "small.toml"
    path.write_text(SMALL_CONFIG)
    result = run_with({"MANGAROUTE_CONFIG": str(path)}, *command, "--json")
    assert result.returncode == 0, result.stderr
    assert '"fast"' in result.stdout and "provisioned-sonnet" not in result.stdout


def test_the_config_flag_wins_over_the_variable(tmp_path: Path) -> None:
    path = tmp_path / "small.toml"
    path.write_text(SMALL_CONFIG)
    result = run_with({"MANGAROUTE_CONFIG": "/nonexistent.toml"}, "targets", "--config", str(path))
    assert result.returncode == 0, result.stderr
    assert "fast" in result.stdout


@pytest.mark.parametrize(
    "command", [["targets"], ["demo"], ["telemetry", "alarms"], ["walkthrough"]], ids=" ".join
)
def test_an_unreadable_config_from_the_variable_is_named(
    tmp_path: Path, command: list[str]
) -> None:
    missing = tmp_path / "missing.toml"
    result = run_with({"MANGAROUTE_CONFIG": str(missing)}, *command)
    assert result.returncode == 2
    assert f"{missing} cannot be read" in result.stderr


def test_an_empty_variable_means_the_shipped_config() -> None:
    result = run_with({"MANGAROUTE_CONFIG": ""}, "targets", "--json")
    assert result.returncode == 0, result.stderr
    assert "provisioned-sonnet" in result.stdout


def test_shared_status_reads_the_variable_and_needs_a_config(tmp_path: Path) -> None:
    path = tmp_path / "small.toml"
    path.write_text(SMALL_CONFIG)
    result = run_with({"MANGAROUTE_CONFIG": str(path)}, "shared", "status")
    assert result.returncode == 2
    assert f"{path} has no [shared] table" in result.stderr  # read the variable's file
    result = run_with({}, "shared", "status")
    assert result.returncode == 2
    assert "shared status needs --config FILE (or MANGAROUTE_CONFIG=FILE)" in result.stderr


# -- --json failures: a JSON error object on stdout, the same exit code ----------------------


def _json_failure(*args: str) -> dict[str, Any]:
    result = run(*args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr == ""
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_config_check_json_reports_a_bad_file_as_json(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(SMALL_CONFIG.replace("tokens_per_minute = 100000", "tokens_per_minute = 0"))
    data = _json_failure("config", "check", str(path), "--json")
    assert data["error"].startswith(
        f"{path}: [targets.fast.tokens_per_minute] expected a number > 0, got 0"
    )
    assert data["field"] == "targets.fast.tokens_per_minute"
    assert data["file"] == str(path) and data["type"] == "ConfigError"


def test_config_check_json_reports_an_unreadable_file_as_json(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    data = _json_failure("config", "check", str(missing), "--json")
    assert data["error"] == f"{missing} cannot be read: No such file or directory"
    assert data["file"] == str(missing) and data["field"] is None


def test_simulate_json_reports_a_bad_option_as_json() -> None:
    data = _json_failure("simulate", "--json", "--faults", "provisioned-outage,bogus")
    assert data["field"] == "--faults" and data["file"] is None
    assert data["error"].startswith("--faults: unknown fault 'bogus' (known: provisioned-outage")


def test_simulate_json_reports_a_rejected_argument_as_json() -> None:
    assert _json_failure("simulate", "--json", "--replicas", "0") == {
        "error": "argument --replicas: must be >= 1 (one router per replica), got 0",
        "field": "--replicas",
        "file": None,
        "type": "UsageError",
    }
    data = _json_failure("simulate", "--json", "--hours", "20-18")
    assert data["error"] == "--hours: START must be before END, got '20-18'"
    assert data["field"] == "--hours"


def test_without_json_errors_stay_text_on_stderr() -> None:
    result = run("simulate", "--replicas", "0")
    assert result.returncode == 2 and result.stdout == ""
    assert "mangaroute simulate: error: argument --replicas: must be >= 1" in result.stderr


@given(
    key=st.from_regex(r"[a-z_]{1,10}(\.[a-z_]{1,10}){0,3}", fullmatch=True),
    source=st.from_regex(r"/[a-z]{1,8}\.toml", fullmatch=True),
    message=st.text(min_size=1, max_size=40),
)
def test_error_json_names_the_file_and_key_of_any_config_error(
    key: str, source: str, message: str
) -> None:
    data = error_json(ConfigError(message, source=source, key=key))
    assert data == {
        "error": f"{source}: [{key}] {message}",
        "field": key,
        "file": source,
        "type": "ConfigError",
    }
    json.dumps(data)  # serialisable whatever the text


# -- --help shows the user's words, not the code's -------------------------------------------

_INTERNAL = re.compile(
    r"__"  # a dunder or a flattened path (SET__TRAFFIC__DAILY_MESSAGES)
    r"|\b[A-Z][A-Z0-9_]*(?:\.[A-Z][A-Z0-9_]*)+\b"  # an all-caps dotted path (SECTION.KEY)
)


def _parsers() -> Iterator[tuple[str, argparse.ArgumentParser]]:
    def walk(name: str, parser: argparse.ArgumentParser) -> Iterator[Any]:
        yield name, parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub, child in action.choices.items():
                    yield from walk(f"{name} {sub}", child)

    yield from walk("mangaroute", build_parser())
    sidecar = argparse.ArgumentParser(prog="python -m mangaroute.sidecar")
    add_serve_arguments(sidecar)
    yield "python -m mangaroute.sidecar", sidecar


def test_no_help_shows_an_internal_name() -> None:
    seen = 0
    for name, parser in _parsers():
        text = parser.format_help()
        assert not _INTERNAL.findall(text), f"{name} --help: {_INTERNAL.findall(text)}"
        for action in parser._actions:
            long = [o for o in action.option_strings if o.startswith("--")]
            if action.metavar is None and action.nargs != 0 and long:
                # argparse would show the dest: only fine when the flag spells it
                assert action.dest == long[0][2:].replace("-", "_"), (
                    f"{name} {long[0]} shows {action.dest.upper()}"
                )
        seen += 1
    assert seen > 20  # every command and sub-command was looked at


def test_plan_help_shows_value_names() -> None:
    result = run("plan", "tco", "--help")
    assert result.returncode == 0
    for shown in ("--daily-messages N", "--peak-hours HOURS", "--set KEY=VALUE"):
        assert shown in result.stdout
    assert "SET__" not in result.stdout


# -- the snapshot's text view ---------------------------------------------------------------


def test_snapshot_text_shows_an_operators_pin_and_when_an_open_breaker_ends() -> None:
    clock = FakeClock(1_000_000_000_000)
    router = Router.default(clock=clock)
    started = router.unix_time()
    router.pin_primary("provisioned-sonnet", "quota cut upstream", 600.0, by="alice")
    router.eject("ondemand-haiku", "bad deploy", 90.0, by="bob")
    text = _snapshot_text(router.snapshot())
    pin_ends = time.strftime("%H:%M:%S UTC", time.gmtime(started + 600.0))
    eject_ends = time.strftime("%H:%M:%S UTC", time.gmtime(started + 90.0))
    assert text.splitlines()[0] == (
        f"primary: provisioned-sonnet (pinned by alice until {pin_ends}: quota cut upstream)"
    )
    haiku = next(line for line in text.splitlines() if line.startswith("ondemand-haiku"))
    assert f"open until {eject_ends}" in haiku
    sonnet = next(line for line in text.splitlines() if line.startswith("provisioned-sonnet"))
    assert "until" not in sonnet  # a closed breaker has no end to show
    router.unpin_primary("quota back", by="alice")
    assert _snapshot_text(router.snapshot()).splitlines()[0] == "primary: provisioned-sonnet"


def test_serve_flags_reach_the_sidecar_and_metrics_settings() -> None:
    from mangaroute.cli.options import settings_from_flags  # noqa: PLC0415
    from mangaroute.sidecar.address import parse_listen  # noqa: PLC0415
    from mangaroute.sidecar.metrics import MetricsSettings  # noqa: PLC0415
    from mangaroute.sidecar.server import SidecarSettings  # noqa: PLC0415

    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    args = parser.parse_args(
        ["--workers", "3", "--max-streams", "5", "--max-message-bytes", "2048", "--grace-s",
         "1.5", "--refresh-ms", "250", "--socket-mode", "660", "--prometheus-host", "0.0.0.0",
         "--prometheus-port", "9000", "--emf-namespace", "Ns"]
    )  # fmt: skip
    listen = parse_listen("127.0.0.1:0")
    settings = settings_from_flags(SidecarSettings, args, listen=listen)
    assert settings == SidecarSettings(
        listen=listen,
        workers=3,
        max_streams=5,
        max_message_bytes=2048,
        grace_s=1.5,
        refresh_ms=250.0,
        socket_mode=0o660,
    )
    metrics = settings_from_flags(MetricsSettings, args, exporters=("emf",))
    assert metrics == MetricsSettings(("emf",), "0.0.0.0", 9000, "Ns")
