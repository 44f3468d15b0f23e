"""The seed's score components, reproduced by hand, and the latency fix."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mangaroute.core.scoring import (
    available_rps,
    cost_score,
    latency_score,
    monthly_cost_usd,
    throughput_score,
)
from mangaroute.core.targets import Capacity, LatencyProfile, Pattern, Pricing, Target

positive = st.floats(min_value=1.0, max_value=100_000.0, allow_nan=False)


def test_latency_score_values() -> None:
    assert latency_score(600, 1500) == 100.0
    assert latency_score(750, 1500) == 100.0
    assert latency_score(1125, 1500) == pytest.approx(75.0)  # halfway through [750, 1500]
    assert latency_score(1500, 1500) == pytest.approx(50.0)
    assert latency_score(2250, 1500) == pytest.approx(25.0)
    assert latency_score(3000, 1500) == 0.0


def test_the_seed_formula_is_discontinuous_at_the_target() -> None:
    # The seed's in-range branch reaches 0 at the target, its over-target branch restarts
    # at 50: a target 1 ms over the SLO outscores one exactly at it.
    at = latency_score(1500, 1500, seed_exact=True)
    over = latency_score(1501, 1500, seed_exact=True)
    assert at == pytest.approx(0.0)
    assert over == pytest.approx(50 * (1 - 1 / 1500))
    assert latency_score(1500, 1500) >= latency_score(1501, 1500)


@given(positive, positive, positive)
def test_latency_score_never_rewards_being_slower(a: float, b: float, target: float) -> None:
    low, high = sorted((a, b))
    assert latency_score(low, target) >= latency_score(high, target)


def test_throughput_score_values() -> None:
    assert throughput_score(100, 40) == 100.0
    assert throughput_score(40, 40) == 70.0
    assert throughput_score(60, 40) == pytest.approx(85.0)
    assert throughput_score(20, 40) == pytest.approx(35.0)


@given(positive, positive, positive)
def test_throughput_and_cost_scores_are_monotone(a: float, b: float, c: float) -> None:
    low, high = sorted((a, b))
    assert throughput_score(low, c) <= throughput_score(high, c)
    assert cost_score(low, c) >= cost_score(high, c)


def test_cost_score_values() -> None:
    assert cost_score(3000, 10000) == 100.0
    assert cost_score(10000, 10000) == pytest.approx(40.0)
    assert cost_score(6500, 10000) == pytest.approx(70.0)
    assert cost_score(15000, 10000) == pytest.approx(20.0)
    assert cost_score(25000, 10000) == 0.0


def _target(capacity: Capacity, pricing: Pricing) -> Target:
    return Target(
        "t",
        Pattern.BEDROCK_PROVISIONED,
        "m",
        "r",
        LatencyProfile(1, 2, 3),
        pricing=pricing,
        capacity=capacity,
    )


def test_available_rps_takes_the_tightest_axis() -> None:
    # 80,000 tokens/min over 800-token requests = 100 requests/min = 1.667/s
    target = _target(Capacity(tokens_per_minute=80_000, requests_per_second=5), Pricing())
    assert available_rps(target, 800, 0.6) == pytest.approx(80_000 / 800 / 60)
    # 10 concurrent calls of 2 s each carry 5 requests/s (Little's law)
    assert available_rps(_target(Capacity(concurrency=10), Pricing()), 800, 2.0) == 5.0
    assert available_rps(_target(Capacity(), Pricing()), 800, 1.0) == float("inf")


def test_monthly_cost_is_commitment_plus_tokens() -> None:
    target = _target(Capacity(), Pricing(0.25, 1.25, hourly_usd=46.0))
    # 46 $/h x 720 h = 33,120; per call 500 x 0.25e-6 + 300 x 1.25e-6 = 0.0005 $;
    # 10 req/s x 2,592,000 s = 25.92M calls -> 12,960 $
    assert monthly_cost_usd(target, 10, 500, 300) == pytest.approx(33_120 + 12_960)
