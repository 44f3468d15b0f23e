"""Every front door fails the same way (mangaroute/cli/output.py): exit 2 for wrong input,
1 when a service it called failed; one line on stderr naming the command, or under ``--json``
a JSON error object on stdout and nothing on stderr. Real bad inputs, run in process."""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mangaroute import demo
from mangaroute.cli import main
from mangaroute.cli.output import (
    EXIT_FAILED,
    EXIT_USAGE,
    CommandFailed,
    UsageError,
    error_json,
    guarded,
    table,
)
from mangaroute.config import default_config_text
from mangaroute.core.errors import MangarouteError
from mangaroute.planning import cli as plan_cli
from mangaroute.telemetry import cli as telemetry_cli

BAD_KEY = "[router]\nnope = 1\n"
UNREACHABLE_AWS = ["--endpoint-url", "http://127.0.0.1:9", "--max-attempts", "1"]


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A config with an unknown key, one with an unreachable [shared] Redis, fake AWS keys."""
    monkeypatch.delenv("MANGAROUTE_CONFIG", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    bad = tmp_path / "bad.toml"
    bad.write_text(BAD_KEY)
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(
        default_config_text()
        + '\n[shared]\nurl = "redis://app:hunter2@127.0.0.1:1/0"\ndeployment = "d"\n'
        "timeout_ms = 100\n"
    )
    return {"bad": str(bad), "fleet": str(fleet)}


class Case(NamedTuple):
    """A real bad input: ``argv`` (``{bad}``, ``{fleet}``: the fixture's files), the exit code,
    the JSON object's keys but ``error``, how the message starts, the stderr line's prefix."""

    argv: list[str]
    code: int
    keys: dict[str, Any]
    starts: str
    prefix: str

    def fill(self, text: Any, files: dict[str, str]) -> Any:
        return text.format(**files) if isinstance(text, str) else text


def _bad_config(argv: list[str], prefix: str = "mangaroute: error: ") -> Case:
    keys = {"field": "router.nope", "file": "{bad}", "type": "ConfigError"}
    return Case(argv, EXIT_USAGE, keys, "{bad}: [router.nope] is not a known key", prefix)


def _failed(argv: list[str], starts: str, prefix: str) -> Case:
    keys = {"field": None, "file": None, "type": "CommandFailed"}
    return Case(argv, EXIT_FAILED, keys, starts, prefix)


AWS_FAILED = "AWS call failed: Could not connect to the endpoint URL"
CASES = [
    _bad_config(["config", "check", "{bad}"]),
    _bad_config(["walkthrough", "--config", "{bad}"]),
    _bad_config(["telemetry", "dashboard", "--config", "{bad}"], "mangaroute telemetry: error: "),
    _bad_config(["demo", "--config", "{bad}"], "mangaroute demo: error: "),
    _bad_config(["shared", "status", "--config", "{bad}"]),
    Case(
        ["route", "--class", "poetry"],
        EXIT_USAGE,
        {"field": None, "file": None, "type": "UnknownRequestClass"},
        "unknown request class 'poetry'; configured classes: simple, complex, manga",
        "mangaroute: error: ",
    ),
    Case(
        ["plan", "recommend", "--observed", "lambda_on_demand=1/2"],
        EXIT_USAGE,
        {"field": "--observed", "file": None, "type": "PlanningInputError"},
        "--observed: expected PATTERN=P50/P90/P99, got 'lambda_on_demand=1/2'",
        "mangaroute plan recommend: error: ",
    ),
    Case(
        ["plan", "throughput", "--daily-messages", "0"],
        EXIT_USAGE,
        {
            "field": "traffic.daily_messages",
            "file": "mangaassist.toml (shipped MangaAssist profile)",
            "type": "ProfileError",
        },
        "mangaassist.toml (shipped MangaAssist profile): [traffic] daily_messages: must be > 0",
        "mangaroute plan throughput: error: ",
    ),
    Case(
        ["telemetry", "alarms", "--budget-ms", "-5"],
        EXIT_USAGE,
        {"field": "budget_ms", "file": None, "type": "ConfigError"},
        "<config>: [budget_ms] must be > 0, got -5.0",
        "mangaroute telemetry: error: ",
    ),
    Case(
        ["simulate", "--faults", "provisioned-outage,meteor"],
        EXIT_USAGE,
        {"field": "--faults", "file": None, "type": "ConfigError"},
        "--faults: unknown fault 'meteor' (known: provisioned-outage",
        "mangaroute: error: ",
    ),
    Case(
        ["shared", "status"],
        EXIT_USAGE,
        {"field": "--config", "file": None, "type": "ConfigNotGiven"},
        "shared status needs --config FILE (or MANGAROUTE_CONFIG=FILE)",
        "mangaroute: error: ",
    ),
    _failed(
        ["plan", "autoscaling", "--apply", *UNREACHABLE_AWS],
        AWS_FAILED,
        "mangaroute plan autoscaling: ",
    ),
    _failed(
        ["cloudwatch", "dashboard", "--apply", "--region", "us-east-1", *UNREACHABLE_AWS],
        AWS_FAILED,
        "mangaroute telemetry: ",
    ),
    _failed(
        ["shared", "status", "--config", "{fleet}"],
        "shared state at redis://app:***@127.0.0.1:1/0 is unreachable",
        "mangaroute: ",
    ),
]
IDS = [" ".join(case.argv).replace("{", "").replace("}", "") for case in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_a_failure_under_json_is_one_error_object_on_stdout(
    case: Case, files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    out = io.StringIO()
    assert main([case.fill(word, files) for word in case.argv] + ["--json"], out=out) == case.code
    data = json.loads(out.getvalue())
    assert list(data) == ["error", "field", "file", "type"]
    assert {k: data[k] for k in case.keys} == {k: case.fill(v, files) for k, v in case.keys.items()}
    assert data["error"].startswith(case.fill(case.starts, files))
    assert "hunter2" not in out.getvalue()
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_a_failure_without_json_is_one_line_on_stderr_naming_the_command(
    case: Case, files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    out = io.StringIO()
    assert main([case.fill(word, files) for word in case.argv], out=out) == case.code
    assert out.getvalue() == ""
    err = capsys.readouterr().err
    assert err.startswith(case.prefix + case.fill(case.starts, files)), err
    assert err.count("\n") == 1 and "Traceback" not in err and "hunter2" not in err


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["route", "--samples", "many"], "--samples"),
        (["plan", "tco", "--sonnet-mus", "x"], "--sonnet-mus"),
        (["telemetry", "alarms", "--max-switches", "x"], "--max-switches"),
        (["demo", "--requests", "0"], "--requests"),
        (["simulate", "--replicas", "0"], "--replicas"),
        (["plan", "autoscaling", "--apply", "--status"], "--status"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else v,
)
def test_a_rejected_command_line_under_json_is_a_usage_error_object(
    argv: list[str], flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = io.StringIO()
    assert main([*argv, "--json"], out=out) == EXIT_USAGE
    data = json.loads(out.getvalue())
    assert data["type"] == "UsageError" and data["field"] == flag and data["file"] is None
    assert data["error"].startswith(f"argument {flag}: ")
    assert capsys.readouterr().err == ""


Runner = Callable[[Sequence[str], Any], int]


@pytest.mark.parametrize(
    ("run", "argv"),
    [
        (plan_cli.run, ["plan", "tco", "--set", "prices.bogus=1"]),
        (plan_cli.run, ["plan", "tco", "--sonnet-mus", "x"]),
        (telemetry_cli.run, ["telemetry", "alarms", "--budget-ms", "-5"]),
        (demo.run, ["demo", "--requests", "0"]),
    ],
    ids=["plan bad key", "plan bad flag", "telemetry bad budget", "demo bad flag"],
)
def test_a_front_door_run_alone_fails_as_the_mangaroute_command_does(
    run: Runner, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    alone, whole = io.StringIO(), io.StringIO()
    assert run([*argv, "--json"], alone) == main([*argv, "--json"], out=whole) == EXIT_USAGE
    assert json.loads(alone.getvalue()) == json.loads(whole.getvalue())
    assert run(argv, io.StringIO()) == EXIT_USAGE  # argparse or the guard: exit 2, no raise
    assert capsys.readouterr().err


def test_a_group_without_its_command_prints_its_help_and_exits_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for group in (["plan"], ["telemetry"]):
        assert main(group, out=io.StringIO()) == EXIT_USAGE
        assert capsys.readouterr().err.startswith(f"usage: mangaroute {group[0]}")


def test_only_deliberate_errors_are_reported_a_bug_still_raises() -> None:
    def broken(args: argparse.Namespace, out: Any) -> int:
        return {"a": 1}["b"]

    with pytest.raises(KeyError):
        guarded(broken)(argparse.Namespace(json=True), io.StringIO())


def test_exit_codes_follow_the_error_kind(capsys: pytest.CaptureFixture[str]) -> None:
    def failing(exc: Exception) -> Callable[[argparse.Namespace, Any], int]:
        def handler(args: argparse.Namespace, out: Any) -> int:
            raise exc

        return handler

    args = argparse.Namespace(json=False)
    assert guarded(failing(CommandFailed("Redis is down")), "x")(args, io.StringIO()) == 1
    assert guarded(failing(MangarouteError("bad input")), "x")(args, io.StringIO()) == 2
    assert guarded(failing(ValueError("odd")), "x", (ValueError,))(args, io.StringIO()) == 2
    assert capsys.readouterr().err == "x: Redis is down\nx: error: bad input\nx: error: odd\n"


# -- properties ---------------------------------------------------------------------------------

FLAGS = st.from_regex(r"--[a-z][a-z0-9]{0,7}(-[a-z0-9]{1,7}){0,2}", fullmatch=True)


@given(flag=FLAGS, rest=st.text(max_size=40))
def test_error_json_names_the_flag_a_message_starts_with(flag: str, rest: str) -> None:
    message = f"{flag}: {rest}"
    assert error_json(MangarouteError(message)) == {
        "error": message,
        "field": flag,
        "file": None,
        "type": "MangarouteError",
    }
    parser = argparse.ArgumentParser()
    usage = error_json(UsageError(parser, f"argument {flag}: {rest}"))
    assert usage["field"] == flag and usage["type"] == "UsageError"


CELL = st.one_of(
    st.integers(-(10**9), 10**9),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(alphabet="abcxyz-", min_size=1, max_size=8),
)


@given(
    rows=st.integers(1, 3).flatmap(
        lambda width: st.lists(st.lists(CELL, min_size=width, max_size=width), min_size=1)
    )
)
def test_table_right_aligns_the_columns_holding_only_numbers(rows: list[list[Any]]) -> None:
    headers = [f"h{i}" for i in range(len(rows[0]))]
    lines = table(rows, headers).split("\n")
    assert len(lines) == len(rows) + 2  # headers, rule, rows
    starts = [0]
    for dashes in lines[1].split("  ")[:-1]:
        starts.append(starts[-1] + len(dashes) + 2)
    widths = [len(d) for d in lines[1].split("  ")]
    for column, (start, width) in enumerate(zip(starts, widths, strict=True)):
        numeric = all(
            isinstance(r[column], int | float) and not isinstance(r[column], bool) for r in rows
        )
        for row, line in zip(rows, lines[2:], strict=True):
            cell = line[start : start + width]
            shown = cell.strip()
            assert shown == str(row[column])
            if numeric:
                assert cell.endswith(shown)  # right-aligned
            else:
                assert cell.startswith(shown)  # left-aligned (the last cell is stripped)


def test_table_shows_none_as_the_blank_given() -> None:
    assert table([["a", None, 1]], ["x", "y", "z"], blank="-").split("\n")[2] == "a  -  1"
