"""Quality floors per request class: below the floor only when nothing at or above it can
answer in time; the cost rankers minimise cost among the targets that meet it."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mangaroute import FakeClock, Router, parse_config
from mangaroute.core.policy import Best, CostUnderSlo, Healthy, LatencyPredictor, Policy
from mangaroute.core.policy.quality import BELOW_FLOOR, QualityFloor
from mangaroute.core.policy.tiers import TierOrder
from mangaroute.core.settings import RequestClass, RouterConfig
from mangaroute.core.targets import Pricing

from .test_policy_tiers_canary import tiered

START_NS = 1_000_000_000_000
SONNET_UP = frozenset({"sonnet", "custom"})


def names(targets: object) -> list[str]:
    return [t.name for t in targets]  # type: ignore[attr-defined]


def test_the_floor_picks_among_the_targets_that_meet_it_and_keeps_the_rest_as_fallbacks() -> None:
    haiku = tiered("haiku", "haiku", pricing=Pricing(0.25, 1.25))
    sonnet_od = tiered("sonnet-od", "sonnet", pricing=Pricing(3, 15))
    sonnet_pt = tiered("sonnet-pt", "sonnet", pricing=Pricing(6, 30))
    ranked, _ = CostUnderSlo().rank([sonnet_pt, haiku, sonnet_od])
    assert names(v.target for v in ranked) == ["haiku", "sonnet-od", "sonnet-pt"]
    plan = QualityFloor(Best(), SONNET_UP).plan(ranked, None)
    assert names(plan.targets) == ["sonnet-od", "sonnet-pt"]
    assert plan.reasons == ("best", "best")
    assert names(plan.fallbacks[0]) == ["sonnet-pt", "haiku"]


def test_with_nothing_at_the_floor_the_pick_is_below_it_and_says_so() -> None:
    haiku = tiered("haiku", "haiku")
    plan = QualityFloor(Best(), SONNET_UP).plan([haiku], None)
    assert names(plan.targets) == ["haiku"]
    assert plan.reasons == ("best" + BELOW_FLOOR,)


def test_a_tier_preference_yields_to_the_general_model_past_the_slo() -> None:
    """The fine-tuned endpoint four times slower: over the SLO, so Sonnet ranks first."""
    predictor = LatencyPredictor(first_token=True)
    judge = CostUnderSlo(slo_p99_ms=1500, predictor=predictor)
    seen = {"p99": 5000.0, "ttft_p50_ms": 900.0, "output_tokens_per_call": 300.0}
    slow_custom = tiered("manga-ft", "custom", ttft_p99_ms=2400.0, **seen)
    sonnet_od = tiered("sonnet-od", "sonnet", pricing=Pricing(3, 15), ttft_p99_ms=1400.0, **seen)
    sonnet_slow = tiered("sonnet-slow", "sonnet", ttft_p99_ms=1900.0, **seen)
    views = [slow_custom, sonnet_od, sonnet_slow]
    ranked, scores = TierOrder(("custom", "sonnet"), judge, judge.fits).rank(views)
    assert names(v.target for v in ranked) == ["sonnet-od", "sonnet-slow", "manga-ft"]
    assert scores == {"sonnet-od": 1.0, "sonnet-slow": 3.0, "manga-ft": 3.0}
    # without the SLO the preference insists (the behaviour before, still there on request)
    insisting, _ = TierOrder(("custom", "sonnet"), judge).rank(views)
    assert names(v.target for v in insisting)[0] == "manga-ft"
    fast_custom = tiered(
        "manga-ft", "custom", **{**seen, "ttft_p50_ms": 200.0, "ttft_p99_ms": 400.0}
    )
    ranked, _ = TierOrder(("custom", "sonnet"), judge, judge.fits).rank([sonnet_od, fast_custom])
    assert names(v.target for v in ranked) == ["manga-ft", "sonnet-od"]


CONFIG = """
[router]
refresh_ms = 5
quality = ["haiku", "sonnet"]

[targets.haiku]
pattern = "bedrock_on_demand"
model_id = "haiku"
region = "ap-northeast-1"
tier = "haiku"
input_per_million_usd = 0.25
output_per_million_usd = 1.25
[targets.haiku.prior]
p50_ms = 300
p90_ms = 450
p99_ms = 700

[targets.sonnet]
pattern = "bedrock_on_demand"
model_id = "sonnet"
region = "ap-northeast-1"
tier = "sonnet"
input_per_million_usd = 3.0
output_per_million_usd = 15.0
[targets.sonnet.prior]
p50_ms = 600
p90_ms = 900
p99_ms = 1400

[classes.complex]
targets = ["haiku", "sonnet"]
policy = "cost"
quality_floor = "sonnet"

[classes.simple]
targets = ["haiku", "sonnet"]
policy = "cost"

[policies.cost]
filters = ["healthy"]
ranker = "cost_under_slo"
picker = "best"
deadline = true
last_resort = true
"""


def test_the_router_keeps_complex_questions_on_sonnet_until_sonnet_cannot_answer() -> None:
    clock = FakeClock(START_NS)
    router = Router(parse_config(CONFIG), clock=clock, rng=random.Random(1))
    simple = router.choose("simple", budget_ms=2500)
    assert (simple.target.name, simple.reason) == ("haiku", "best")  # no floor: cheapest
    complex_ = router.choose("complex", budget_ms=2500)
    assert (complex_.target.name, complex_.reason) == ("sonnet", "best")
    assert names(complex_.fallbacks) == ["haiku"]
    tight = router.choose("complex", budget_ms=1000)  # Sonnet's 1,400 ms p99 misses it
    assert (tight.target.name, tight.reason) == ("haiku", "best+below_floor+budget")
    assert names(tight.fallbacks) == ["sonnet"]
    hopeless = router.choose("complex", budget_ms=100)  # nothing fits: the floor still leads
    assert (hopeless.target.name, hopeless.reason) == ("sonnet", "best+over_budget")
    router.eject("sonnet", "test", cooldown_s=30)
    clock.advance(ms=10)
    ejected = router.choose("complex", budget_ms=2500)
    assert (ejected.target.name, ejected.reason) == ("haiku", "best+below_floor")
    assert names(ejected.fallbacks) == ["sonnet"]  # a last resort, even ejected


def test_a_config_built_in_code_gets_its_floors_too() -> None:
    parsed = parse_config(CONFIG)
    floored = RouterConfig(
        targets=parsed.targets,
        classes=(RequestClass("complex", ("haiku", "sonnet"), "plain", "sonnet"),),
        policies={"plain": Policy("plain", CostUnderSlo(), Best(), (Healthy(),))},
        default_class="complex",
        quality=("haiku", "sonnet"),
    )
    assert floored.policies["plain"].floors == (("complex", frozenset({"sonnet"})),)
    router = Router(floored, clock=FakeClock(START_NS))
    assert router.choose("complex").target.name == "sonnet"
    with pytest.raises(ValueError, match="'opus' is not a tier of \\[router\\] quality"):
        RouterConfig(
            targets=parsed.targets,
            classes=(RequestClass("complex", ("haiku", "sonnet"), "plain", "opus"),),
            policies={"plain": Policy("plain", CostUnderSlo(), Best())},
            default_class="complex",
            quality=("haiku", "sonnet"),
        )


def test_configs_without_a_floor_route_as_before() -> None:
    plain = parse_config(CONFIG.replace('quality_floor = "sonnet"\n', ""))
    assert all(not policy.floors for policy in plain.policies.values())
    router = Router(plain, clock=FakeClock(START_NS))
    assert router.choose("complex", budget_ms=2500).target.name == "haiku"


TIERS = ("haiku", "sonnet", "custom")


@st.composite
def fleets(draw: st.DrawFn) -> tuple[str, dict[str, str], set[str], list[float]]:
    """A config of 2-5 targets of random tiers, priors and prices (at least one meets the
    floor), with some ejected, and the budgets to try."""
    count = draw(st.integers(2, 5))
    tiers = [draw(st.sampled_from(TIERS)) for _ in range(count)]
    if "sonnet" not in tiers:  # the floor must be a tier some target has
        tiers[draw(st.integers(0, count - 1))] = "sonnet"
    deadline = draw(st.booleans())
    ranker = draw(st.sampled_from(["cost_under_slo", "cost", "order", "predicted"]))
    picker = draw(st.sampled_from(["best", "random", "round_robin", "spillover"]))
    blocks = []
    for index, tier in enumerate(tiers):
        p99 = draw(st.integers(300, 4000))
        price = draw(st.sampled_from([0.25, 0.8, 3.0, 15.0]))
        blocks.append(
            f"""
[targets.t{index}]
pattern = "bedrock_on_demand"
model_id = "t{index}"
region = "ap-northeast-1"
tier = "{tier}"
input_per_million_usd = {price}
output_per_million_usd = {price * 5}
[targets.t{index}.prior]
p50_ms = {p99 // 2}
p90_ms = {p99 * 3 // 4}
p99_ms = {p99}
"""
        )
    ladder = [tier for tier in TIERS if tier in tiers]
    members = ", ".join(f'"t{i}"' for i in range(count))
    text = f"""
[router]
refresh_ms = 5
quality = [{", ".join(f'"{t}"' for t in ladder)}]
{"".join(blocks)}
[classes.c]
targets = [{members}]
policy = "p"
quality_floor = "sonnet"

[policies.p]
filters = ["healthy"]
ranker = "{ranker}"
picker = "{picker}"
deadline = {str(deadline).lower()}
last_resort = true
"""
    ejected = set(draw(st.sets(st.sampled_from([f"t{i}" for i in range(count)]))))
    budgets = draw(st.lists(st.integers(100, 5000), min_size=1, max_size=6))
    return text, {f"t{i}": tier for i, tier in enumerate(tiers)}, ejected, budgets


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleets())
def test_no_pick_below_the_floor_while_a_target_at_it_is_eligible_and_in_time(
    fleet: tuple[str, dict[str, str], set[str], list[float]],
) -> None:
    text, tiers, ejected, budgets = fleet
    config = parse_config(text)
    clock = FakeClock(START_NS)
    router = Router(config, clock=clock, rng=random.Random(0))
    for name in sorted(ejected):
        router.eject(name, "test", cooldown_s=60)
    clock.advance(ms=10)
    p99 = {t.name: t.prior.effective_p99_ms for t in config.targets}
    for budget in budgets:
        for _ in range(3):
            decision = router.choose("c", budget_ms=budget, output_tokens=300)
            chain = [decision.target.name, *names(decision.fallbacks)]
            # the floor never makes the class unanswerable: every target stays reachable
            assert sorted(chain) == sorted(tiers)
            at_floor_in_time = [
                name
                for name, tier in tiers.items()
                if tier in SONNET_UP and name not in ejected and p99[name] <= budget - 1
            ]
            below = tiers[decision.target.name] not in SONNET_UP
            if at_floor_in_time:
                assert not below, (decision, at_floor_in_time)
            assert below == ("+below_floor" in decision.reason), decision
            router.release(decision)
