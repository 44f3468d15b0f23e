"""Time of day and spend for policy parts: the context, the ledger, schedules, the budget
guard - each on its own, then through a router whose wall clock is injected."""

from __future__ import annotations

import itertools
import random
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mangaroute import FakeClock, Router, parse_config
from mangaroute.core.policy import (
    Best,
    BudgetGuard,
    ConfigOrder,
    Policy,
    PolicyContext,
    Schedule,
    SpendLedger,
    Spillover,
)
from mangaroute.core.policy.budget import pace_fraction
from mangaroute.core.policy.pickers import Uniform
from mangaroute.core.policy.schedule import in_window
from mangaroute.core.targets import Pricing

from .views import make_view

JST = timezone(timedelta(hours=9))
START_NS = 1_000_000_000_000


def jst(hour: int, minute: int = 0) -> float:
    return datetime(2025, 1, 15, hour, minute, tzinfo=JST).timestamp()


def context(unix_s: float, ledger: SpendLedger | None = None) -> PolicyContext:
    return PolicyContext(0, unix_s, ledger or SpendLedger())


def test_local_time_follows_the_utc_offset() -> None:
    ctx = context(jst(18, 30))
    assert ctx.local_seconds(9) == 18.5 * 3600
    assert ctx.local_seconds(0) == 9.5 * 3600
    assert ctx.local_midnight_unix(9) == jst(0)


def test_the_ledger_answers_spend_since_a_quarter_hour() -> None:
    ledger = SpendLedger()
    ledger.observe(jst(0, 5), 10.0)  # started at 00:05 with $10 already spent
    ledger.observe(jst(0, 14), 12.0)
    ledger.observe(jst(0, 16), 15.0)  # crosses 00:15: checkpoint at $12
    ledger.observe(jst(1, 2), 30.0)  # crosses 00:30, 00:45, 01:00: checkpoint at $15
    assert ledger.total_usd == 30.0
    assert ledger.since(jst(0)) == 20.0  # before the start: everything since then
    assert ledger.since(jst(0, 15)) == 18.0
    assert ledger.since(jst(1)) == 15.0
    assert SpendLedger().since(0.0) == 0.0


@given(st.lists(st.floats(min_value=0, max_value=5000), min_size=1, max_size=40))
def test_spend_since_never_grows_with_a_later_start(steps: list[float]) -> None:
    ledger = SpendLedger()
    total = 0.0
    for index, step in enumerate(steps):
        total += step
        ledger.observe(jst(0) + index * 400.0, total)
    starts = [jst(0) + k * 900.0 for k in range(len(steps) // 2 + 2)]
    values = [ledger.since(s) for s in starts]
    assert all(a >= b for a, b in itertools.pairwise(values))
    assert all(0.0 <= v <= total for v in values)


def test_a_schedule_excludes_targets_outside_their_local_hours() -> None:
    schedule = Schedule({"pt": ((18.0, 24.0),), "night": ((22.0, 6.0),)})
    pt, night, other = make_view("pt"), make_view("night"), make_view("other")
    assert schedule.exclude(pt) is None  # unbound: no opinion
    evening = schedule.bind(context(jst(19, 45)))
    assert evening.exclude(pt) is None and evening.exclude(other) is None
    assert evening.exclude(night) == "off_schedule(19:45)"
    morning = schedule.bind(context(jst(5, 59)))
    assert morning.exclude(pt) == "off_schedule(05:59)"
    assert morning.exclude(night) is None
    with pytest.raises(ValueError, match="hour window"):
        Schedule({"pt": ((3.0, 3.0),)})


@given(st.floats(min_value=0, max_value=23.99), st.integers(0, 23), st.integers(1, 23))
def test_a_window_and_its_complement_cover_the_day(hour: float, start: int, length: int) -> None:
    end = (start + length) % 24
    if end == start:
        return
    assert in_window(hour, (start, end)) != in_window(hour, (end, start))


def test_the_pace_follows_the_hourly_weights() -> None:
    assert pace_fraction((), 43_200) == 0.5
    weights = tuple([1.0] * 12 + [3.0] * 12)
    assert pace_fraction(weights, 12 * 3600) == pytest.approx(12 / 48)
    assert pace_fraction(weights, 18 * 3600) == pytest.approx(30 / 48)
    assert pace_fraction(weights, 86_400) == 1.0


def test_the_budget_guard_prefers_cheaper_tiers_and_says_so_when_ahead_of_pace() -> None:
    sonnet = make_view("sonnet", p99=1400.0, pricing=Pricing(3, 15), latency_source="prior")
    haiku = make_view("haiku", p99=1200.0, pricing=Pricing(0.25, 1.25), latency_source="prior")
    guard = BudgetGuard(daily_usd=1000.0, tolerance=0.05, slack=0.01)
    ledger = SpendLedger()
    ledger.observe(jst(0), 0.0)
    ledger.observe(jst(12), 400.0)  # noon on a flat pace: $500 allowed, $400 spent
    on_pace = guard.bind(context(jst(12), ledger))
    assert on_pace.ahead == 0.0
    plan = on_pace.plan([sonnet, haiku], None)
    assert plan.targets[0].name == "sonnet" and plan.reasons == ("best", "best")
    ledger.observe(jst(12, 1), 600.0)
    ahead = guard.bind(context(jst(12, 1), ledger))
    assert ahead.ahead == pytest.approx(600.0 / (1000.0 * (12 * 60 + 1) / 1440) - 1.0)
    plan = ahead.plan([sonnet, haiku], None)
    assert [t.name for t in plan.targets] == ["haiku", "sonnet"]
    assert plan.reasons == ("best+spend_guard", "best+spend_guard")


def test_the_budget_guard_keeps_a_round_robin_taking_turns_when_ahead_of_pace() -> None:
    # it once rebuilt the inner plan without its rotation: round robin became random draws
    sonnet = make_view("sonnet", p99=1400.0, pricing=Pricing(3, 15), latency_source="prior")
    haiku = make_view("haiku", p99=1200.0, pricing=Pricing(0.25, 1.25), latency_source="prior")
    guard = BudgetGuard(inner=Uniform(rotate=True, name="round_robin"), daily_usd=1000.0)
    ledger = SpendLedger()
    ledger.observe(jst(0), 0.0)
    ledger.observe(jst(12), 900.0)  # noon, $900 of $1,000 spent
    ahead = guard.bind(context(jst(12), ledger))
    assert ahead.ahead > 0
    plan = ahead.plan([sonnet, haiku], None)
    assert plan.rotate and not plan.sticky
    assert [t.name for t in plan.targets] == ["haiku", "sonnet"]
    assert plan.reasons == ("round_robin+spend_guard", "round_robin+spend_guard")
    assert plan.cumulative == (1.0, 2.0)


def test_a_policy_binds_only_its_contextual_parts() -> None:
    schedule = Schedule({"b": ((0.0, 1.0),)})
    policy = Policy("p", ConfigOrder(), Best(), (schedule,))
    assert policy.contextual == (True, False, False)
    assert Policy("q", ConfigOrder(), Spillover()).contextual == ()
    views = [make_view("a"), make_view("b")]
    assert [v.name for v in policy.route("c", views, None, ()).candidates] == ["a", "b"]
    route = policy.route("c", views, None, (), context(jst(12)))
    assert dict(route.excluded) == {"b": "off_schedule(12:00)"}


CONFIG = """
[router]
refresh_ms = 5

[targets.pt]
pattern = "bedrock_provisioned"
model_id = "arn:pt"
region = "ap-northeast-1"
tier = "sonnet"
model_units = 1
tokens_per_minute_per_unit = 40000
hourly_usd_per_unit = 23.0

[targets.sonnet]
pattern = "bedrock_on_demand"
model_id = "sonnet"
region = "ap-northeast-1"
tier = "sonnet"
input_per_million_usd = 3.0
output_per_million_usd = 15.0

[targets.haiku]
pattern = "bedrock_on_demand"
model_id = "haiku"
region = "ap-northeast-1"
tier = "haiku"
input_per_million_usd = 0.25
output_per_million_usd = 1.25

[classes.chat]
targets = ["pt", "sonnet", "haiku"]
policy = "guarded"

[policies.guarded]
filters = ["healthy", "schedule"]
ranker = "order"
picker = "budget_guard"

[policies.guarded.schedule.hours]
pt = [18, 24]

[policies.guarded.budget_guard]
daily_usd = 10.0
slack = 0.0
tolerance = 0.0
"""


def test_a_router_with_an_injected_wall_clock_follows_the_schedule_and_the_budget() -> None:
    clock = FakeClock(START_NS)
    router = Router(
        parse_config(CONFIG, source="guard.toml"),
        clock=clock,
        rng=random.Random(1),
        wall_clock=lambda: jst(17, 59),
    )
    assert router.choose("chat").target.name == "sonnet"  # 17:59: pt is off schedule
    clock.advance(seconds=61)
    assert router.choose("chat").target.name == "pt"  # 18:00
    # $8 of Sonnet tokens by 18:01 against $10 x 18/24 = $7.50 of pace: ahead
    for _ in range(8):
        router.record("sonnet", "ok", latency_ms=900.0, input_tokens=0, output_tokens=66_667)
    clock.advance(ms=10)
    decision = router.choose("chat")
    assert decision.target.name == "pt"  # already paid: still the cheapest
    assert decision.reason == "best+spend_guard"
    assert [t.name for t in decision.fallbacks] == ["haiku", "sonnet"]
