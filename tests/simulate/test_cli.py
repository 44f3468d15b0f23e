"""``mangaroute simulate`` through its argparse registration: help, JSON, text, plots,
errors."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest

from mangaroute.core.errors import MangarouteError
from mangaroute.simulate import plots
from mangaroute.simulate.cli import register

TINY = ["--messages", "20000", "--hours", "20:30-21:30", "--jobs", "1"]


def run(argv: list[str]) -> tuple[int, str]:
    """Parse like the main CLI and call the handler; errors map to exit 2 as there."""
    parser = argparse.ArgumentParser(prog="mangaroute")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["simulate", *argv])
    out = io.StringIO()
    try:
        code = args.handler(args, out)
    except MangarouteError as exc:
        return 2, str(exc)
    return code, out.getvalue()


def test_help_lists_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        run(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for option in (
        "--scenario",
        "--faults",
        "--policies",
        "--messages",
        "--hours",
        "--seed",
        "--json",
        "--plot",
        "--no-bound",
        "bad-day",
        "provisioned-outage",
    ):
        assert option in text


def test_json_for_machines() -> None:
    code, out = run([*TINY, "--scenario", "bad-day", "--policies", "seed-hybrid", "--json"])
    assert code == 0
    data = json.loads(out)
    assert [p["name"] for p in data["policies"]] == ["seed-hybrid"]
    assert data["bound"]["name"] == "bound"
    assert data["scenario"]["faults"] == ["provisioned-outage", "flash-sale"]
    assert data["plots"] == []
    policy = data["policies"][0]
    for key in (
        "within_deadline_share",
        "latency_ms",
        "failed",
        "failovers",
        "primary_switches",
        "cost",
        "regret",
        "timeline",
        "reasons",
    ):
        assert key in policy
    assert set(policy["cost"]["by_target"]) == {
        "provisioned-sonnet",
        "ondemand-haiku",
        "ondemand-sonnet",
        "sagemaker-manga",
    }


def test_text_with_extra_faults_seed_and_no_bound() -> None:
    code, out = run(
        [
            *TINY,
            "--policies",
            "mangaroute",
            "--faults",
            "sagemaker-slow",
            "--seed",
            "11",
            "--no-oracle",
        ]
    )
    assert code == 0
    assert "faults: sagemaker-slow" in out and "(seed 11)" in out
    assert "mangaroute" in out
    assert "\nbound" not in out and "cost vs bound" not in out


def test_plots_are_written_or_skipped_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib")
    code, out = run([*TINY, "--policies", "seed-hybrid", "--plot", str(tmp_path / "png")])
    assert code == 0
    for name in ("latency.png", "cost.png", "targets.png"):
        assert (tmp_path / "png" / name).stat().st_size > 1000
        assert f"wrote {tmp_path / 'png' / name}" in out

    def missing() -> None:
        raise plots.PlottingUnavailable(
            "matplotlib is not installed (pip install 'mangaroute[plots]')"
        )

    monkeypatch.setattr(plots, "_pyplot", missing)
    code, out = run([*TINY, "--policies", "seed-hybrid", "--plot", str(tmp_path / "x"), "--json"])
    assert code == 0
    assert "matplotlib is not installed" in json.loads(out)["plots_skipped"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--policies", "magic"], "--policies: unknown policy 'magic'"),
        (["--faults", "meteor"], "--faults: unknown fault 'meteor'"),
        (["--hours", "25-26"], "--hours: '25-26' is not within 00:00-24:00"),
        (["--hours", "21-20"], "--hours: START must be before END"),
        (["--hours", "evening"], "--hours: expected START-END"),
        (["--messages", "0"], "--messages must be >= 1"),
        (["--jobs", "0"], "--jobs must be >= 1"),
        (["--scenario", "/nowhere.toml"], "/nowhere.toml cannot be read"),
    ],
)
def test_bad_options_exit_2_with_a_precise_message(argv: list[str], message: str) -> None:
    code, out = run(argv)
    assert code == 2
    assert message in out


def test_a_bad_scenario_file_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[scenario]\nname = "bad"\n\n[[faults]]\nkind = "meltdown"\n')
    code, out = run(["--scenario", str(path)])
    assert code == 2
    assert out.startswith(f"{path}: [faults.0.kind] expected one of outage")
