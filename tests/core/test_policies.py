"""Filters, rankers and pickers, each on its own, and their composition."""

from __future__ import annotations

import random
from bisect import bisect_right
from collections import Counter

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from mangaroute.core.breaker import BreakerState
from mangaroute.core.policy import (
    Best,
    CheapestWithinSlo,
    ConfigOrder,
    Headroom,
    Healthy,
    LatencyCeiling,
    LowestLatency,
    Policy,
    PrimaryShare,
    Weighted,
    WeightedScore,
)
from mangaroute.core.snapshot import PickPlan
from mangaroute.core.targets import Capacity, Pattern, Pricing

from .views import make_view


def shares(plan: PickPlan, draws: int = 20_000, seed: int = 3) -> dict[str, float]:
    rng = random.Random(seed)
    assert plan.cumulative is not None
    counts: Counter[str] = Counter()
    for _ in range(draws):
        slot = min(
            bisect_right(plan.cumulative, rng.random() * plan.total), len(plan.cumulative) - 1
        )
        counts[plan.targets[slot].name] += 1
    return {name: count / draws for name, count in counts.items()}


def test_healthy_excludes_open_and_half_open_breakers() -> None:
    assert Healthy().exclude(make_view("a")) is None
    assert Healthy().exclude(make_view("a", breaker=BreakerState.OPEN)) == "breaker_open"
    assert Healthy().exclude(make_view("a", breaker=BreakerState.HALF_OPEN)) == "breaker_half_open"


def test_headroom_excludes_full_and_throttling_targets_only_with_volume() -> None:
    headroom = Headroom(max_utilization=0.9, max_throttle_rate=0.2, min_requests=10)
    assert headroom.exclude(make_view("a", utilization=0.89)) is None
    assert headroom.exclude(make_view("a", utilization=0.95)) == "at_capacity(0.95)"
    assert headroom.exclude(make_view("a", throttle_rate=0.3)) == "throttling(0.30)"
    assert headroom.exclude(make_view("a", throttle_rate=0.5, requests=4)) is None


def test_latency_ceiling_is_the_seeds_hard_filter() -> None:
    ceiling = LatencyCeiling(2250)
    assert ceiling.exclude(make_view("a", p99=2250)) is None
    assert ceiling.exclude(make_view("a", p99=3500)) == "p99_over_ceiling(3500ms)"


def test_lowest_latency_and_config_order_rankers() -> None:
    views = [make_view("a", p99=900), make_view("b", p99=400), make_view("c", p99=700)]
    ranked, _ = LowestLatency().rank(views)
    assert [v.name for v in ranked] == ["b", "c", "a"]
    assert [v.name for v in ConfigOrder().rank(views)[0]] == ["a", "b", "c"]


def test_cheapest_within_slo_treats_provisioned_capacity_as_paid() -> None:
    haiku = make_view("haiku", p99=1200, pricing=Pricing(0.25, 1.25))
    sonnet = make_view("sonnet", p99=1400, pricing=Pricing(3, 15))
    provisioned = make_view(
        "pt", p99=1300, pattern=Pattern.BEDROCK_PROVISIONED, pricing=Pricing(hourly_usd=46)
    )
    slow_free = make_view("slow", p99=4000)
    ranked, prices = CheapestWithinSlo(slo_p99_ms=1500).rank(
        [sonnet, haiku, slow_free, provisioned]
    )
    assert [v.name for v in ranked] == ["pt", "haiku", "sonnet", "slow"]
    assert prices["haiku"] == pytest.approx(500 * 0.25e-6 + 300 * 1.25e-6)


def test_weighted_score_reproduces_the_seed_components() -> None:
    # p99 1,400 vs target 1,500: latency 100 - 50 x 650/750 = 56.667
    # 80k tok/min / 800 tok / 60 = 1.667 req/s vs 40.5 required: 70 x 1.667/40.5 = 2.881
    # month: 46 $/h x 720 = 33,120 vs 60,000 budget: 100 - 60 x (33,120-18,000)/42,000 = 78.4
    # ops: provisioned 85
    view = make_view(
        "pt",
        p99=1400,
        pattern=Pattern.BEDROCK_PROVISIONED,
        pricing=Pricing(hourly_usd=46.0),
        capacity=Capacity(tokens_per_minute=80_000),
    )
    expected = (
        0.35 * (100 - 50 * 650 / 750)
        + 0.25 * (70 * (80_000 / 800 / 60) / 40.5)
        + 0.25 * (100 - 60 * (33_120 - 18_000) / 42_000)
        + 0.15 * 85
    )
    assert WeightedScore().score(view) == pytest.approx(expected)


def test_best_picker_falls_back_in_rank_order() -> None:
    views = [make_view("a"), make_view("b"), make_view("c")]
    plan = Best().plan(views, None)
    assert plan.cumulative is None
    assert [t.name for t in plan.fallbacks[0]] == ["b", "c"]


def test_primary_share_is_the_seeds_80_5_split() -> None:
    views = [make_view("a"), make_view("p"), make_view("c"), make_view("d")]
    plan = PrimaryShare(0.80, 0.05).plan(views, "p")
    assert plan.targets[0].name == "p" and plan.reasons[0] == "primary"
    assert plan.reasons[1:] == ("canary", "canary", "canary")
    observed = shares(plan)
    assert observed["p"] == pytest.approx(0.80 / 0.95, abs=0.01)
    assert observed["a"] == pytest.approx(0.05 / 0.95, abs=0.01)
    assert [t.name for t in plan.fallbacks[2]] == ["p", "a", "d"]


def test_primary_share_gives_the_top_ranked_target_the_share_when_primary_is_absent() -> None:
    plan = PrimaryShare().plan([make_view("x"), make_view("y")], "gone")
    assert plan.targets[0].name == "x" and plan.reasons[0] == "best"


def test_weighted_picker_splits_and_keeps_unweighted_targets_as_fallbacks() -> None:
    views = [make_view("a"), make_view("b"), make_view("c")]
    plan = Weighted({"a": 9, "b": 1}).plan(views, None)
    assert [t.name for t in plan.targets] == ["a", "b", "c"]
    observed = shares(plan)
    assert set(observed) == {"a", "b"}
    assert observed["b"] == pytest.approx(0.1, abs=0.01)


def test_policy_route_reports_exclusions_and_panics_when_nothing_is_left() -> None:
    policy = Policy("p", ConfigOrder(), Best(), (Healthy(), Headroom()))
    views = [
        make_view("a", breaker=BreakerState.OPEN),
        make_view("b", utilization=2.0),
        make_view("c"),
    ]
    route = policy.route("chat", views, None, ())
    assert [v.name for v in route.candidates] == ["c"]
    assert dict(route.excluded) == {"a": "breaker_open", "b": "at_capacity(2.00)"}
    views[2] = make_view("c", breaker=BreakerState.HALF_OPEN)
    route = policy.route("chat", views, None, ("c",))
    assert route.candidates == ()
    assert [t.name for t in route.plan.targets] == ["b", "c", "a"]  # closed, half-open, open
    assert set(route.plan.reasons) == {"panic"}


@given(
    st.lists(st.floats(min_value=0.0, max_value=10.0), min_size=1, max_size=6),
    st.floats(min_value=0.0, max_value=0.999999),
)
def test_every_draw_lands_on_a_weighted_slot(weights: list[float], draw: float) -> None:
    assume(any(weights))  # all zero is rejected (tests/test_limits.py)
    views = [make_view(f"t{i}") for i in range(len(weights))]
    plan = Weighted({f"t{i}": w for i, w in enumerate(weights)}).plan(views, None)
    assert plan.cumulative is not None
    slot = min(bisect_right(plan.cumulative, draw * plan.total), len(plan.cumulative) - 1)
    assert weights[int(plan.targets[slot].name[1:])] > 0
