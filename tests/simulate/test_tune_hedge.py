"""``scripts/tune_hedge.py``'s choice rule, on fabricated result tables: a delay is kept only
within 5 % extra calls, with a real gain that hurts no cell, at a price worth paying; the
latest of the best delays wins; none passing leaves the class off."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.scripts import load_script

tune = load_script("tune_hedge")
Measure = tune.Measure

MESSAGES = 10_000
OFF = [Measure(9_000, 10_200, 30.0, MESSAGES), Measure(8_800, 10_300, 31.0, MESSAGES)]
BOUND = [9_900, 9_700]  # gaps of 900 answers each: 1,800 in all


def hedged(gains: Sequence[int], extra: Sequence[int], usd: Sequence[float]) -> list[Any]:
    return [
        Measure(o.within_slo + g, o.attempts + e, o.usd + u, o.messages)
        for o, g, e, u in zip(OFF, gains, extra, usd, strict=True)
    ]


def test_a_delay_that_closes_part_of_the_gap_cheaply_passes() -> None:
    verdict = tune.judge(0.3, OFF, hedged((90, 90), (300, 400), (0.5, 0.5)), BOUND)
    assert verdict.passed and verdict.why == "passes"
    assert verdict.gain_points == pytest.approx(0.9)  # 180 answers of 20,000 messages
    assert verdict.closed == pytest.approx(0.1)  # 180 of the 1,800 the bound gets
    assert verdict.extra == pytest.approx(0.04)
    assert verdict.usd_per_answer == pytest.approx(1.0 / 180)
    assert verdict.usd_limit == pytest.approx(10 * 61.0 / 20_000)


@pytest.mark.parametrize(
    ("gains", "extra", "usd", "why"),
    [
        ((90, 90), (300, 501), (0.5, 0.5), "extra calls 5.0% > 5%"),
        ((2, 1), (10, 10), (0.0, 0.0), "gains less than 0.02 points"),
        ((-20, 200), (10, 10), (0.0, 0.0), "loses 0.200 points in a cell"),
        ((90, 90), (100, 100), (10.0, 10.0), "$0.1111 per answer gained > $0.0305"),
    ],
)
def test_each_rule_rejects_on_its_own(
    gains: tuple[int, int], extra: tuple[int, int], usd: tuple[float, float], why: str
) -> None:
    verdict = tune.judge(0.3, OFF, hedged(gains, extra, usd), BOUND)
    assert not verdict.passed and verdict.why == why


def verdict(delay: float, gain: float, passed: bool = True) -> object:
    return tune.Verdict(delay, gain, 0.0, 0.0, 0.0, None, 0.0, passed, "")


def test_the_latest_of_the_best_delays_wins_and_none_passing_is_off() -> None:
    verdicts = [
        verdict(0.1, 0.50),
        verdict(0.2, 0.495),
        verdict(0.3, 0.30),
        verdict(0.4, 0.9, False),
    ]
    assert tune.choose(verdicts) == 0.2  # within 0.01 points of the best: the later one
    assert tune.choose([verdict(0.1, 0.5, False), verdict(0.2, 0.4, False)]) is None
    assert tune.choose([]) is None


verdicts = st.lists(
    st.builds(
        verdict,
        st.sampled_from([0.1, 0.2, 0.3, 0.4, 0.6]),
        st.floats(min_value=-1.0, max_value=1.0),
        st.booleans(),
    ),
    max_size=8,
)


@given(verdicts)
def test_the_choice_is_a_passing_delay_no_passing_one_beats_by_more_than_a_tie(
    found: list[Any],
) -> None:
    chosen = tune.choose(found)
    passed = [v for v in found if v.passed]
    if not passed:
        assert chosen is None
        return
    best = max(v.gain_points for v in passed)
    winners = [v for v in passed if v.delay == chosen]
    assert winners and max(v.gain_points for v in winners) >= best - tune.TIE_POINTS
    later = [v for v in passed if v.delay > chosen]
    assert all(v.gain_points < best - tune.TIE_POINTS for v in later)


@given(
    st.lists(
        st.tuples(st.integers(-50, 300), st.integers(-100, 1_000), st.floats(-5.0, 5.0)),
        min_size=2,
        max_size=2,
    )
)
def test_a_passing_delay_never_exceeds_the_extra_call_bound(
    cells: list[tuple[int, int, float]],
) -> None:
    gains, extra, usd = zip(*cells, strict=True)
    found = tune.judge(0.3, OFF, hedged(gains, extra, usd), BOUND)
    if found.passed:
        assert max(extra) <= tune.MAX_EXTRA * MESSAGES
        assert sum(gains) >= tune.TOLERANCE_POINTS / 100 * 2 * MESSAGES
        assert min(gains) >= -tune.TOLERANCE_POINTS / 100 * MESSAGES
