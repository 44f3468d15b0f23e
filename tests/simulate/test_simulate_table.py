"""``scripts/simulate_table.py --bar``: issue 15's bar applied to one row and seed, on
fabricated reports (what ``mangaroute simulate --json`` prints, the keys the bar reads)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.scripts import load_script

table = load_script("simulate_table")

MESSAGES = 10_000


def _entry(name: str, within: int, cost: float, failed: int = 10) -> dict[str, Any]:
    return {
        "name": name,
        "within_first_token_slo": within,
        "within_first_token_slo_share": within / MESSAGES,
        "failed": failed,
        "cost": {"usd_per_1k_messages": cost},
    }


def _report(ours: tuple[int, float], bound: tuple[int, float] = (9_700, 3.0)) -> dict[str, Any]:
    policies = [_entry("mangaroute", *ours)]
    policies += [_entry(name, 9_600, 3.2) for name in table.BASELINES]
    policies[-1] = _entry("litellm-latency", 9_650, 3.3)  # the best baseline
    return {
        "scenario": {"budget": {"streaming": True}},
        "policies": policies,
        "bound": _entry("bound", *bound),
    }


def test_a_row_level_with_the_best_baseline_and_near_the_bound_passes() -> None:
    cells, passed = table.bar_row("default", 7, _report((9_660, 3.2), bound=(9_680, 3.0)))
    assert passed
    assert cells[-1] == "pass"
    assert cells[6].startswith("`litellm-latency` 96.50%")
    assert cells[7] == "+0.10 pt, -3.0%"
    assert cells[8:10] == ["0.20 pt", "+6.7%"]


@pytest.mark.parametrize(
    ("ours", "miss"),
    [
        ((9_647, 3.2), "0.03 pt behind `litellm-latency`"),  # 0.02 points is the most allowed
        ((9_650, 3.4), "+3.0% cost vs `litellm-latency`"),  # 2 % is the most allowed
        ((9_660, 3.31), "+10.3% cost vs the bound"),  # 10 % is the most allowed
    ],
)
def test_each_limit_of_the_bar_names_what_missed(ours: tuple[int, float], miss: str) -> None:
    cells, passed = table.bar_row("default", 7, _report(ours, bound=(9_680, 3.0)))
    assert not passed
    assert miss in cells[-1]


def test_the_bound_gap_is_measured_in_points_of_answers() -> None:
    cells, passed = table.bar_row("default", 7, _report((9_660, 3.2), bound=(9_700, 3.0)))
    assert cells[8] == "0.40 pt" and not passed  # more than 0.3 points behind the bound
    cells, passed = table.bar_row("default", 7, _report((9_680, 3.2), bound=(9_700, 3.0)))
    assert cells[8] == "0.20 pt" and passed


def test_on_a_fault_preset_a_tie_with_a_baseline_is_not_ahead() -> None:
    report = _report((9_680, 3.2), bound=(9_690, 3.0))
    report["policies"][1] = _entry("seed-switcher", 9_680, 3.2)  # same answers, same cost
    _, passed_on_day = table.bar_row("default", 7, report)
    cells, passed_on_fault = table.bar_row("fast-errors", 7, report)
    assert passed_on_day  # level with the best baseline is enough on a scenario
    assert not passed_on_fault
    assert cells[-1] == "miss: not ahead of `seed-switcher`"
    report["policies"][1] = _entry("seed-switcher", 9_680, 3.3)  # same answers, dearer
    _, passed_on_fault = table.bar_row("fast-errors", 7, report)
    assert passed_on_fault
