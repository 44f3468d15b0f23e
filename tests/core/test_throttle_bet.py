"""Cheap 429s are a resource: the headroom filter's throttle bet (``throttle_round_trip_ms``)
keeps a cheap, throttling target first while trying it pays in expectation."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mangaroute import FakeClock, Router, parse_config
from mangaroute.core.errors import ConfigError
from mangaroute.core.policy import Best, CostUnderSlo, Headroom, Healthy, Policy
from mangaroute.core.policy.throttle import ThrottleBet, throttle_bet
from mangaroute.core.targets import Pricing

from .views import make_view

START_NS = 1_000_000_000_000
HAIKU = Pricing(0.8, 4.0)
SONNET = Pricing(3.0, 15.0)

probability = st.floats(0.0, 1.0)
ms = st.floats(1.0, 10_000.0)
usd = st.floats(0.0, 1.0)


@given(probability, probability, usd, ms, usd, ms, st.floats(1.0, 1000.0), ms)
def test_expected_cost_and_latency_grow_with_the_throttle_probability(
    p: float,
    q: float,
    cost: float,
    latency: float,
    fallback_cost: float,
    fallback_latency: float,
    round_trip: float,
    slo: float,
) -> None:
    """A cheaper target: the more it throttles, the dearer and slower it is in expectation,
    and once it stops paying it never starts again at a higher throttle probability."""
    low, high = sorted((p, q))
    args = (cost, latency, fallback_cost, fallback_latency, round_trip, slo)
    a, b = throttle_bet(low, *args), throttle_bet(high, *args)
    if cost <= fallback_cost:
        assert a.cost_usd <= b.cost_usd + 1e-12
    if latency <= round_trip + fallback_latency:
        assert a.latency_ms <= b.latency_ms + 1e-9
        assert a.keeps or not b.keeps


@given(probability, usd, ms, usd, ms, st.floats(1.0, 1000.0), ms)
def test_a_kept_target_fits_the_budget_and_beats_the_fallback(
    p: float,
    cost: float,
    latency: float,
    fallback_cost: float,
    fallback_latency: float,
    round_trip: float,
    slo: float,
) -> None:
    bet = throttle_bet(p, cost, latency, fallback_cost, fallback_latency, round_trip, slo)
    expected_ms = (1 - p) * latency + p * (round_trip + fallback_latency)
    assert bet.latency_ms == pytest.approx(expected_ms)
    assert bet.cost_usd == pytest.approx((1 - p) * cost + p * fallback_cost)
    if bet.keeps:
        assert expected_ms <= slo * (1 + 1e-9)
        assert bet.cost_usd < fallback_cost
        assert p < 1.0


def test_the_figures_of_a_throttle_storm() -> None:
    """Haiku throttling 40 % at 40 ms a 429, Sonnet behind it: 0.6 x 600 + 0.4 x (40 + 1000)
    = 776 ms in expectation, at 0.6 x 0.0016 + 0.4 x 0.006 = $0.00336 a call."""
    bet = throttle_bet(0.4, 0.0016, 600.0, 0.006, 1000.0, 40.0, 1500.0)
    assert bet.latency_ms == pytest.approx(776.0)
    assert bet.cost_usd == pytest.approx(0.00336)
    assert bet.keeps
    assert not throttle_bet(0.4, 0.0016, 600.0, 0.006, 1000.0, 40.0, 700.0).keeps  # over SLO
    assert not throttle_bet(0.4, 0.0070, 600.0, 0.006, 1000.0, 40.0, 1500.0).keeps  # dearer


def bet_filter(slo: float = 1500.0, round_trip: float = 40.0) -> ThrottleBet:
    return ThrottleBet(Headroom(max_throttle_rate=0.25), round_trip, CostUnderSlo(slo_p99_ms=slo))


@given(
    st.floats(0.0, 1.0),
    st.floats(0.0, 1.5),
    st.integers(0, 200),
    st.floats(100.0, 3000.0),
    st.floats(100.0, 3000.0),
)
def test_the_bet_only_ever_keeps_what_the_cut_drops_for_throttling(
    rate: float, utilization: float, requests: int, haiku_p99: float, sonnet_p99: float
) -> None:
    """Below the cut (P = 0 included) and at P = 1 the filter says what ``headroom`` says;
    a full target (utilization) is cut either way; a kept target fits the SLO in
    expectation."""
    haiku = make_view(
        "haiku",
        p99=haiku_p99,
        pricing=HAIKU,
        throttle_rate=rate,
        utilization=utilization,
        requests=requests,
    )
    sonnet = make_view("sonnet", p99=sonnet_p99, pricing=SONNET)
    headroom = Headroom(max_throttle_rate=0.25)
    bound = bet_filter().among([haiku, sonnet])
    today = headroom.exclude(haiku)
    decided = bound.exclude(haiku)
    if today is None or rate >= 1.0 or headroom.at_capacity(haiku) is not None:
        assert decided == today
    elif decided is None:
        ((name, bet),) = bound.bets
        assert name == "haiku" and bet.keeps and bet.latency_ms <= 1500.0
    else:
        assert decided == today
    assert bound.exclude(sonnet) == headroom.exclude(sonnet)


def test_without_a_fallback_with_room_the_cut_stands() -> None:
    haiku = make_view("haiku", p99=600, pricing=HAIKU, throttle_rate=0.4)
    full_sonnet = make_view("sonnet", p99=1000, pricing=SONNET, utilization=0.99)
    bound = bet_filter().among([haiku, full_sonnet])
    assert bound.exclude(haiku) == "throttling(0.40)"
    assert bound.bets == ()


def test_a_policy_keeps_the_cheap_throttling_target_first_and_the_fallback_behind_it() -> None:
    haiku = make_view("haiku", p99=600, pricing=HAIKU, throttle_rate=0.4)
    sonnet = make_view("sonnet", p99=1000, pricing=SONNET)
    cut = Policy("cut", CostUnderSlo(), Best(), (Healthy(), Headroom()))
    route = cut.route("simple", [haiku, sonnet], None, ())
    assert [v.name for v in route.candidates] == ["sonnet"]
    assert route.excluded == (("haiku", "throttling(0.40)"),)
    bet = Policy("bet", CostUnderSlo(), Best(), (Healthy(), bet_filter()))
    route = bet.route("simple", [haiku, sonnet], None, ())
    assert route.plan.targets[0].name == "haiku"
    assert [t.name for t in route.plan.fallbacks[0]] == ["sonnet"]
    tight = Policy("tight", CostUnderSlo(), Best(), (Healthy(), bet_filter(slo=700)))
    assert tight.route("simple", [haiku, sonnet], None, ()).excluded == (
        ("haiku", "throttling(0.40)"),
    )


CONFIG = """
[router]
refresh_ms = 5
window_s = 60
min_samples = 5

[targets.haiku]
pattern = "bedrock_on_demand"
model_id = "haiku"
region = "ap-northeast-1"
input_per_million_usd = 0.8
output_per_million_usd = 4.0
[targets.haiku.prior]
p50_ms = 300
p90_ms = 450
p99_ms = 600

[targets.sonnet]
pattern = "bedrock_on_demand"
model_id = "sonnet"
region = "ap-northeast-1"
input_per_million_usd = 3.0
output_per_million_usd = 15.0
[targets.sonnet.prior]
p50_ms = 500
p90_ms = 800
p99_ms = 1000

[classes.simple]
targets = ["haiku", "sonnet"]
policy = "cheap"

[policies.cheap]
filters = ["healthy", "headroom"]
ranker = "cost_under_slo"
picker = "best"
deadline = true
last_resort = true
"""

BET = """
[policies.cheap.headroom]
throttle_round_trip_ms = 40
"""


def storm(config: str, throttle_every: int) -> list[str]:
    """Haiku throttles one call in ``throttle_every`` (fast, 40 ms); where do 200 simple
    questions go first? Virtual time: 50 ms between calls."""
    clock = FakeClock(START_NS)
    router = Router(parse_config(config), clock=clock, rng=random.Random(5))
    firsts = []
    for i in range(200):
        decision = router.choose("simple", budget_ms=3000, first_token=True)
        firsts.append(decision.target.name)
        if decision.target.name == "haiku" and i % throttle_every == 0:
            router.record(decision, "throttled", latency_ms=40)
            fallback = decision.fallbacks[0].name  # the failover plan's next target
            router.record(fallback, latency_ms=900, input_tokens=500, output_tokens=300)
        else:
            router.record(decision, latency_ms=500, input_tokens=500, output_tokens=300)
        clock.advance(ms=50)
    return firsts


def test_the_router_keeps_asking_a_cheap_target_that_throttles_fast() -> None:
    """Haiku throttles a third of its calls: the hard cut (25 %) sends most questions to
    Sonnet, the bet keeps Haiku first; at every call Haiku's 429s are what it costs."""
    cut = storm(CONFIG, throttle_every=3)
    assert cut[:10] == ["haiku"] * 10  # headroom needs min_requests = 10 calls to judge
    assert cut[10:] == ["sonnet"] * 190  # then the 25 % cut drops Haiku for good
    assert storm(CONFIG + BET, throttle_every=3) == ["haiku"] * 200
    # throttling every call (P = 1): the bet gives Haiku up exactly as the cut does
    assert storm(CONFIG + BET, throttle_every=1) == storm(CONFIG, throttle_every=1)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            'throttle_round_trip_ms = "fast"',
            "[policies.cheap.headroom.throttle_round_trip_ms] expected a number, got 'fast': "
            "must be between 0 (exclusive) and 60,000 ms",
        ),
        (
            "throttle_round_trip_ms = 0",
            "[policies.cheap.headroom.throttle_round_trip_ms] expected a number > 0, got 0: "
            "must be between 0 (exclusive) and 60,000 ms",
        ),
        (
            "slo_p99_ms = 1200",
            "[policies.cheap.headroom.slo_p99_ms] only applies with throttle_round_trip_ms "
            "(the throttle bet's latency budget)",
        ),
        (
            "throttle_round_trip_ms = 40\nslo_p99_ms = -5",
            "[policies.cheap.headroom.slo_p99_ms] expected a number > 0, got -5: "
            "must be between 0 (exclusive) and 3,600,000 ms",
        ),
    ],
)
def test_config_errors_name_the_key(table: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(CONFIG + "[policies.cheap.headroom]\n" + table + "\n", source="m.toml")
    assert str(caught.value) == "m.toml: " + message


def test_config_builds_the_bet_with_the_policys_predictor_and_slo() -> None:
    config = parse_config(CONFIG + BET + "slo_p99_ms = 1200\n")
    bet = config.policies["cheap"].filters[1]
    assert isinstance(bet, ThrottleBet)
    assert bet.throttle_round_trip_ms == 40
    assert bet.judge.slo_p99_ms == 1200
    assert bet.headroom == Headroom()
    assert isinstance(parse_config(CONFIG).policies["cheap"].filters[1], Headroom)


def test_the_bet_is_judged_by_the_rankers_slo_unless_it_has_its_own() -> None:
    ranker_slo = "[policies.cheap.cost_under_slo]\nslo_p99_ms = 2500\n"
    inherited = parse_config(CONFIG + ranker_slo + BET).policies["cheap"].filters[1]
    assert isinstance(inherited, ThrottleBet)
    assert inherited.judge.slo_p99_ms == 2500
    own = parse_config(CONFIG + ranker_slo + BET + "slo_p99_ms = 1800\n").policies["cheap"]
    assert isinstance(own.filters[1], ThrottleBet)
    assert own.filters[1].judge.slo_p99_ms == 1800
    default = parse_config(CONFIG + BET).policies["cheap"].filters[1]
    assert isinstance(default, ThrottleBet)
    assert default.judge.slo_p99_ms == CostUnderSlo().slo_p99_ms == 1500
