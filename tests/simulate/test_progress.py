"""The progress line: on stderr when it is a terminal, never on stdout, gone when done."""

from __future__ import annotations

import dataclasses
import io
import json
import sys
from pathlib import Path

import pytest

from mangaroute.simulate import parse_scenario, simulate
from mangaroute.simulate.progress import EVERY, Progress
from tests.simulate.test_cli import TINY, run
from tests.simulate.test_engine import ROUTER, SCENARIO


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_line_counts_messages_and_is_erased() -> None:
    now = [100.0]
    stream = io.StringIO()
    progress = Progress(["a", "b"], 1_000_000, stream, clock=lambda: now[0], interval_s=0.5)
    report_a, report_b = progress.reporter("a"), progress.reporter("b")
    now[0] = 112.0
    report_a(500_000)
    assert stream.getvalue() == (
        "\rsimulating: 0.50M of 2.00M messages (25 %), 0/2 runs done, 12 s"
    )
    report_b(250_000)  # within the interval: not redrawn
    assert stream.getvalue().count("\r") == 1
    now[0] = 113.0
    report_a(1_000_000)
    assert stream.getvalue().endswith(
        "\rsimulating: 1.25M of 2.00M messages (62 %), 1/2 runs done, 13 s"
    )
    progress.close()
    width = len("simulating: 1.25M of 2.00M messages (62 %), 1/2 runs done, 13 s")
    assert stream.getvalue().endswith("\r" + " " * width + "\r")


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_simulation_draws_it_and_scores_the_same(tmp_path: Path, jobs: int) -> None:
    (tmp_path / "router.toml").write_text(ROUTER)
    scenario = parse_scenario(SCENARIO, source="s.toml", base_dir=tmp_path)
    scenario = dataclasses.replace(
        scenario, traffic=dataclasses.replace(scenario.traffic, window=(0.0, 86_400.0))
    )
    stream = io.StringIO()
    shown = simulate(scenario, jobs=jobs, bound=False, progress=stream)
    quiet = simulate(scenario, jobs=1, bound=False)
    assert len(shown.traffic) == 24_000 > EVERY
    assert shown.results[0].answered == quiet.results[0].answered
    assert shown.results[0].total_usd == quiet.results[0].total_usd
    text = stream.getvalue()
    assert "simulating: " in text and "M messages" in text
    assert text.endswith("\r") and "\n" not in text


def test_the_cli_shows_it_on_a_terminal_only_and_never_in_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    code, out = run([*TINY, "--policies", "seed-hybrid", "--no-bound", "--json"])
    assert code == 0
    json.loads(out)  # stdout is the JSON alone
    assert "simulating: " in terminal.getvalue()
    quiet = Terminal()
    monkeypatch.setattr(sys, "stderr", quiet)
    code, out = run([*TINY, "--policies", "seed-hybrid", "--no-bound", "--json", "--quiet"])
    assert code == 0 and quiet.getvalue() == ""
    piped = io.StringIO()  # not a terminal: nothing
    monkeypatch.setattr(sys, "stderr", piped)
    code, out = run([*TINY, "--policies", "seed-hybrid", "--no-bound"])
    assert code == 0 and piped.getvalue() == "" and "seed-hybrid" in out
