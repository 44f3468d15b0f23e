"""Request-class routing by tier, and the canary / A-B picker with per-arm statistics."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from mangaroute import FakeClock, Router, parse_config
from mangaroute.core.policy import Canary, CostUnderSlo, TierOrder
from mangaroute.core.targets import Pricing

from .test_policies import shares
from .views import make_target, make_view

START_NS = 1_000_000_000_000


def tiered(name: str, tier: str, **fields: object) -> object:
    view = make_view(name, **fields)
    target = make_target(name, view.target.pattern, tier=tier, pricing=view.target.pricing)
    return type(view)(**{**{f: getattr(view, f) for f in view.__slots__}, "target": target})


def test_tiers_order_classes_of_targets_and_an_inner_ranker_orders_each_tier() -> None:
    sonnet_od = tiered("sonnet-od", "sonnet", pricing=Pricing(3, 15), latency_source="prior")
    sonnet_pt = tiered("sonnet-pt", "sonnet", latency_source="prior")
    custom = tiered("manga-ft", "custom", latency_source="prior")
    other = tiered("other", "llama", latency_source="prior")
    ranked, scores = TierOrder(("custom", "sonnet"), CostUnderSlo()).rank(
        [other, sonnet_od, sonnet_pt, custom]
    )
    assert [v.name for v in ranked] == ["manga-ft", "sonnet-pt", "sonnet-od", "other"]
    assert scores == {"manga-ft": 0.0, "sonnet-pt": 1.0, "sonnet-od": 1.0, "other": 2.0}


def test_a_canary_gets_its_share_and_each_arm_falls_back_to_the_other() -> None:
    views = [make_view("control"), make_view("new"), make_view("spare")]
    plan = Canary("new", share=0.1).plan(views, None)
    assert [t.name for t in plan.targets] == ["control", "new", "spare"]
    assert plan.reasons == ("control", "candidate", "best")
    assert plan.sticky
    observed = shares(plan)
    assert observed["new"] == pytest.approx(0.1, abs=0.01) and "spare" not in observed
    assert [t.name for t in plan.fallbacks[1]] == ["control", "spare"]


def test_without_its_candidate_the_canary_is_plain_best() -> None:
    plan = Canary("gone").plan([make_view("a"), make_view("b")], None)
    assert plan.cumulative is None and plan.reasons == ("best", "best")
    with pytest.raises(ValueError, match="share"):
        Canary("x", share=1.0)


CONFIG = """
[router]
refresh_ms = 5

[targets.haiku]
pattern = "bedrock_on_demand"
model_id = "haiku"
region = "ap-northeast-1"

[targets.haiku-v2]
pattern = "bedrock_on_demand"
model_id = "haiku-v2"
region = "ap-northeast-1"

[classes.chat]
targets = ["haiku", "haiku-v2"]
policy = "ab"

[policies.ab]
filters = ["healthy"]
ranker = "order"
picker = "canary"

[policies.ab.canary]
candidate = "haiku-v2"
share = 0.2
"""


def test_sessions_stick_to_an_arm_and_the_snapshot_reports_each_arms_statistics() -> None:
    clock = FakeClock(START_NS)
    router = Router(parse_config(CONFIG), clock=clock, rng=random.Random(3))
    arms = {}
    for session in range(400):
        first = router.choose("chat", session_id=f"user-{session}")
        for _ in range(3):
            again = router.choose("chat", session_id=f"user-{session}")
            assert again.target == first.target and again.reason == first.reason
        arms[session] = first.reason
    split = Counter(arms.values())
    assert split["candidate"] / 400 == pytest.approx(0.2, abs=0.06)
    for index in range(30):
        clock.advance(ms=100)
        router.record("haiku-v2", "throttled" if index % 3 == 0 else "ok", latency_ms=300.0)
        router.record("haiku", "ok", latency_ms=500.0)
    report = router.snapshot().routes["chat"].to_dict()["arms"]
    by_arm = {arm["arm"]: arm for arm in report}
    assert by_arm["candidate"]["target"] == "haiku-v2"
    assert by_arm["candidate"]["share"] == pytest.approx(0.2)
    assert by_arm["candidate"]["throttle_rate"] == pytest.approx(1 / 3)
    assert by_arm["candidate"]["p50_ms"] == pytest.approx(300.0, rel=0.01)
    assert by_arm["control"]["requests"] == 30 and by_arm["control"]["error_rate"] == 0.0
