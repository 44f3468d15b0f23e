"""The new parts from TOML: every key, and errors that name the field."""

from __future__ import annotations

import pytest

from mangaroute import ConfigError, parse_config
from mangaroute.core.policy import (
    BudgetGuard,
    Canary,
    CostUnderSlo,
    PredictedLatency,
    Reliable,
    Schedule,
    Spillover,
    TierOrder,
)

BASE = """
[targets.pt]
pattern = "bedrock_provisioned"
model_id = "arn:pt"
region = "ap-northeast-1"
tier = "sonnet"
model_units = 1
tokens_per_minute_per_unit = 40000
hourly_usd_per_unit = 23.0

[targets.haiku]
pattern = "bedrock_on_demand"
model_id = "haiku"
region = "ap-northeast-1"
tier = "haiku"

[classes.chat]
targets = ["pt", "haiku"]
policy = "p"

[policies.p]
"""


def policy(body: str):  # type: ignore[no-untyped-def]
    return parse_config(BASE + body, source="p.toml").policies["p"]


def error(body: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE + body, source="p.toml")
    return str(caught.value)


def test_every_new_part_builds_from_its_table() -> None:
    p = policy(
        """
filters = ["healthy", "reliable", "schedule"]
ranker = "tier"
picker = "budget_guard"
deadline = true
last_resort = true
[policies.p.prediction]
ttft_share = 0.4
avg_output_tokens = 250
load_knee = 0.6
load_weight = 2.0
max_error_rate = 0.9
[policies.p.reliable]
max_error_rate = 0.3
min_requests = 5
[policies.p.schedule]
utc_offset_hours = 0
[policies.p.schedule.hours]
pt = [[18, 24], [0, 1]]
haiku = [22, 6]
[policies.p.tier]
order = ["sonnet", "haiku"]
within = "cost_under_slo"
[policies.p.cost_under_slo]
slo_p99_ms = 1200
paid_headroom = 0.8
[policies.p.budget_guard]
daily_usd = 2500
picker = "canary"
tolerance = 0.1
slack = 0.02
utc_offset_hours = 9
slo_p99_ms = 1400
[policies.p.canary]
candidate = "haiku"
share = 0.1
sticky = false
"""
    )
    assert p.deadline is not None and p.deadline.ttft_share == 0.4 and p.last_resort
    assert p.deadline.avg_output_tokens == 250 and p.deadline.load_weight == 2.0
    assert p.filters[1] == Reliable(max_error_rate=0.3, min_requests=5)
    schedule = p.filters[2]
    assert isinstance(schedule, Schedule)
    assert schedule.hours == {"pt": ((18.0, 24.0), (0.0, 1.0)), "haiku": ((22.0, 6.0),)}
    assert schedule.utc_offset_hours == 0
    assert isinstance(p.ranker, TierOrder) and p.ranker.tiers == ("sonnet", "haiku")
    inner = p.ranker.within
    assert isinstance(inner, CostUnderSlo) and inner.slo_p99_ms == 1200
    assert inner.paid_headroom == 0.8 and inner.avg_output_tokens == 250
    guard = p.picker
    assert isinstance(guard, BudgetGuard) and guard.daily_usd == 2500
    assert guard.tolerance == 0.1 and guard.slack == 0.02 and guard.cheaper.slo_p99_ms == 1400
    assert guard.inner == Canary("haiku", share=0.1, sticky=False)


def test_defaults_for_the_simple_forms() -> None:
    p = policy('ranker = "predicted"\npicker = "spillover"\n')
    assert isinstance(p.ranker, PredictedLatency)
    assert p.picker == Spillover()
    assert p.deadline is None and not p.last_resort
    p = policy(
        'ranker = "cost_under_slo"\npicker = "spillover"\n'
        "[policies.p.spillover]\ntarget_utilization = 1.2\nthrottle_backoff = true\n"
    )
    assert p.picker == Spillover(target_utilization=1.2, throttle_backoff=True)
    assert p.ranker == CostUnderSlo()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            'filters = ["fresh"]',
            "p.toml: [policies.p.filters] names unknown filter 'fresh' (known: healthy, "
            "headroom, latency_ceiling, reliable, schedule)",
        ),
        (
            'ranker = "vibes"',
            "p.toml: [policies.p.ranker] names unknown ranker 'vibes' (known: order, score, "
            "latency, cost, predicted, cost_under_slo, tier, litellm_latency)",
        ),
        (
            'picker = "dice"',
            "p.toml: [policies.p.picker] names unknown picker 'dice' (known: best, weighted, "
            "primary, spillover, canary, random, round_robin, budget_guard)",
        ),
        (
            'filters = ["schedule"]\n[policies.p.schedule.hours]\npt = [18, 25]',
            "p.toml: [policies.p.schedule.hours.pt] expected [start, end] local hours",
        ),
        (
            'filters = ["schedule"]\n[policies.p.schedule.hours]\nnope = [1, 2]',
            "p.toml: [policies.p.schedule.hours.nope] is not a known target",
        ),
        (
            'ranker = "tier"\n[policies.p.tier]\norder = ["sonnet"]\nwithin = "tier"',
            "p.toml: [policies.p.tier.within] cannot be 'tier' itself",
        ),
        (
            'ranker = "tier"',
            "p.toml: [policies.p.tier.order] is required",
        ),
        (
            'picker = "canary"\n[policies.p.canary]\ncandidate = "ghost"',
            "p.toml: [policies.p.canary.candidate] names unknown target 'ghost'",
        ),
        (
            'picker = "canary"\n[policies.p.canary]\ncandidate = "haiku"\nshare = 1.5',
            "p.toml: [policies.p.canary.share] expected a number < 1, got 1.5",
        ),
        (
            'picker = "budget_guard"',
            "p.toml: [policies.p.budget_guard.daily_usd] is required",
        ),
        (
            'picker = "budget_guard"\n[policies.p.budget_guard]\ndaily_usd = 5\npace = [1, 2]',
            "p.toml: [policies.p.budget_guard.pace] expected 24 hourly weights",
        ),
        (
            'picker = "budget_guard"\n[policies.p.budget_guard]\ndaily_usd = 5\n'
            'picker = "budget_guard"',
            "p.toml: [policies.p.budget_guard.picker] cannot be 'budget_guard' itself",
        ),
        (
            "deadline = true\n[policies.p.prediction]\nttft_share = 1.5",
            "p.toml: [policies.p.prediction.ttft_share] expected a number <= 1, got 1.5",
        ),
        (
            "[policies.p.prediction]\ncolour = 1",
            "p.toml: [policies.p.prediction.colour] is not a known key",
        ),
        (
            'picker = "spillover"\n[policies.p.spillover]\ntarget_utilization = 0',
            "p.toml: [policies.p.spillover.target_utilization] expected a number > 0, got 0",
        ),
        (
            'deadline = "yes"',
            "p.toml: [policies.p.deadline] expected true or false, got 'yes'",
        ),
    ],
)
def test_bad_keys_are_named(body: str, message: str) -> None:
    assert error(body).startswith(message)
