"""Cost under an SLO, and provisioned-first spill-over."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mangaroute.core.breaker import BreakerState
from mangaroute.core.policy import (
    Best,
    ConfigOrder,
    CostUnderSlo,
    Healthy,
    Policy,
    Reliable,
    Spillover,
)
from mangaroute.core.policy.cost import is_committed
from mangaroute.core.targets import Capacity, Pattern, Pricing

from .views import make_view

HAIKU = Pricing(0.25, 1.25)
SONNET = Pricing(3.0, 15.0)


def provisioned(**fields: object) -> object:
    return make_view(
        "pt",
        p99=1300.0,
        pattern=Pattern.BEDROCK_PROVISIONED,
        pricing=Pricing(hourly_usd=46.0),
        capacity=Capacity(tokens_per_minute=80_000),
        latency_source="prior",
        **fields,
    )


def test_paid_capacity_with_room_is_free_and_ranks_first() -> None:
    pt = provisioned(utilization=0.5)
    haiku = make_view("haiku", p99=1200.0, pricing=HAIKU, latency_source="prior")
    sonnet = make_view("sonnet", p99=1400.0, pricing=SONNET, latency_source="prior")
    ranked, prices = CostUnderSlo(slo_p99_ms=1500).rank([sonnet, haiku, pt])
    assert [v.name for v in ranked] == ["pt", "haiku", "sonnet"]
    assert prices["pt"] == 0.0
    assert prices["sonnet"] == pytest.approx((500 * 3.0 + 300 * 15.0) / 1e6)
    assert is_committed(pt) and not is_committed(haiku)


def test_full_paid_capacity_and_slow_targets_rank_after_those_within_the_slo() -> None:
    full = provisioned(utilization=1.0)
    haiku = make_view("haiku", p99=1200.0, pricing=HAIKU, latency_source="prior")
    slow_free = make_view("slow", p99=4000.0, latency_source="prior")
    ranked, _ = CostUnderSlo(slo_p99_ms=1500).rank([full, slow_free, haiku])
    # within: haiku; beyond, fastest first: the full provisioned target, then the slow one
    assert [v.name for v in ranked] == ["haiku", "pt", "slow"]


def test_a_target_failing_half_its_calls_is_judged_at_twice_its_latency() -> None:
    flaky = make_view("flaky", p99=1000.0, error_rate=0.5, latency_source="prior")
    sonnet = make_view("sonnet", p99=1400.0, pricing=SONNET, latency_source="prior")
    ranked, _ = CostUnderSlo(slo_p99_ms=1500).rank([flaky, sonnet])
    assert [v.name for v in ranked] == ["sonnet", "flaky"]


def test_spillover_leaves_unpaid_leaders_alone() -> None:
    haiku = make_view("haiku", pricing=HAIKU)
    plan = Spillover().plan([haiku, provisioned()], None)
    assert plan.cumulative is None and plan.reasons == ("best", "best")


def test_spillover_sizes_the_paid_share_to_the_load() -> None:
    # the class's two targets carry 800k tokens/min; 80k of capacity at 90 % takes 9 %
    pt = provisioned(tokens_per_minute=72_000.0, utilization=0.9)
    sonnet = make_view("sonnet", pricing=SONNET, tokens_per_minute=728_000.0)
    spill = Spillover(target_utilization=0.9)
    assert spill.share([pt, sonnet]) == pytest.approx(0.09)
    plan = spill.plan([pt, sonnet], None)
    assert [t.name for t in plan.targets] == ["pt", "sonnet"]
    assert plan.reasons == ("best", "spill")
    assert plan.cumulative == pytest.approx((0.09, 1.0))
    assert [t.name for t in plan.fallbacks[1]] == ["pt"]


def test_spillover_takes_everything_when_the_load_fits_and_backs_off_on_throttles() -> None:
    quiet = provisioned(tokens_per_minute=10_000.0)
    sonnet = make_view("sonnet", pricing=SONNET, tokens_per_minute=20_000.0)
    plan = Spillover().plan([quiet, sonnet], None)
    assert plan.cumulative is None and plan.targets[0].name == "pt"
    throttled = provisioned(tokens_per_minute=70_000.0, throttle_rate=0.5)
    busy = make_view("sonnet", pricing=SONNET, tokens_per_minute=730_000.0)
    assert Spillover(throttle_backoff=True).share([throttled, busy]) == pytest.approx(0.045)
    assert Spillover().share([throttled, busy]) == pytest.approx(0.09)


def test_spillover_with_no_share_left_puts_the_spill_target_first() -> None:
    pt = provisioned(tokens_per_minute=80_000.0, throttle_rate=1.0)
    sonnet = make_view("sonnet", pricing=SONNET, tokens_per_minute=1.0)
    plan = Spillover(throttle_backoff=True).plan([pt, sonnet], None)
    assert [t.name for t in plan.targets] == ["sonnet", "pt"]
    assert plan.reasons == ("spill", "spill") and plan.cumulative is None
    with pytest.raises(ValueError, match="target_utilization"):
        Spillover(target_utilization=0)


@given(
    st.floats(min_value=0, max_value=1e7),
    st.floats(min_value=0, max_value=1e7),
    st.floats(min_value=0, max_value=1e7),
)
def test_the_paid_share_is_a_fraction_that_falls_as_load_grows(
    own: float, other: float, more: float
) -> None:
    pt = provisioned(tokens_per_minute=own)
    share = Spillover().share([pt, make_view("s", tokens_per_minute=other)])
    heavier = Spillover().share([pt, make_view("s", tokens_per_minute=other + more)])
    assert 0.0 <= heavier <= share <= 1.0


def test_last_resort_keeps_filtered_and_ejected_targets_at_the_end_of_every_chain() -> None:
    views = [
        make_view("ok"),
        make_view("flaky", error_rate=0.5, requests=100),
        make_view("ejected", breaker=BreakerState.OPEN),
        make_view("fine"),
    ]
    filters = (Healthy(), Reliable())
    strict = Policy("strict", ConfigOrder(), Best(), filters).route("c", views, None, ())
    assert [[t.name for t in chain] for chain in strict.plan.fallbacks] == [["fine"], ["ok"]]
    lenient = Policy("lenient", ConfigOrder(), Best(), filters, last_resort=True)
    route = lenient.route("c", views, None, ())
    assert [v.name for v in route.candidates] == ["ok", "fine"]
    assert [[t.name for t in chain] for chain in route.plan.fallbacks] == [
        ["fine", "flaky", "ejected"],
        ["ok", "flaky", "ejected"],
    ]
    # the budget's plans keep them too, after the slow candidates
    slow = make_view("fine", p99=3000.0)
    route = lenient.route("c", [views[0], views[1], views[2], slow], None, ())
    plan, suffix = route.budget_plans[1]
    assert suffix == "+budget"
    assert [t.name for t in plan.fallbacks[0]] == ["fine", "flaky", "ejected"]
