"""Traffic → capacity: the MangaAssist numbers by hand, the seed's decision rule, validation."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mangaroute.planning import CapacityAssumptions, PlanningInputError, TrafficProfile
from mangaroute.planning.traffic import compute_load, size_capacity

MANGA = TrafficProfile()


def test_mangaassist_rates_match_hand_computation() -> None:
    load = compute_load(MANGA)
    # 1,000,000 messages / 86,400 s
    assert load.avg_rps == pytest.approx(1_000_000 / 86_400)
    assert round(load.avg_rps, 2) == 11.57
    # × 3.5 peak multiplier, × 2 burst factor
    assert round(load.peak_rps, 2) == 40.51
    assert round(load.burst_rps, 2) == 81.02
    # 40.509 req/s × 60 s × (500 + 300) tokens, truncated like the seed
    assert load.peak_tokens_per_minute == int(1_000_000 / 86_400 * 3.5 * 60 * 800) == 1_944_444
    assert load.peak_hour_tokens == 116_666_666
    # 3.5 × 6 h / 24 h: the peak window alone carries 87.5 % of the day
    assert load.peak_window_share == pytest.approx(0.875)


def test_mangaassist_sizing_per_pattern() -> None:
    plan = size_capacity(MANGA)
    lam, prov, sm = plan.lambda_on_demand, plan.bedrock_provisioned, plan.sagemaker_realtime
    # Lambda: 1000 concurrency / 2 s = 500 req/s; limit 0.7 × 500 = 350 req/s
    assert (lam.capacity_rps, lam.burst_limit_rps, lam.fits) == (500.0, 350.0, True)
    # reserved = ceil(81.02 × 2 s × 1.2) = ceil(194.44); provisioned = ceil(40.51 × 2)
    assert lam.reserved_concurrency == math.ceil(81.0185 * 2 * 1.2) == 195
    assert lam.provisioned_concurrency == 82
    # ceil(1,944,444 / 40,000) and ceil(1,944,444 / 80,000)
    assert (prov.sonnet_mus, prov.haiku_mus) == (49, 25)
    assert prov.sonnet_hourly_usd == 49 * 23.0
    assert prov.haiku_hourly_usd == 25 * 5.0
    assert prov.commitment == "OneMonth"  # peak 40.5 > 20 req/s
    assert prov.within_seed_threshold is False  # 49 > 10
    # ml.g5.2xlarge at 8 req/s: ceil(40.51 / 8) = 6, ceil(81.02 / 8) + 2 = 13
    assert (sm.instance_type, sm.min_instances, sm.max_instances) == ("ml.g5.2xlarge", 6, 13)
    assert (sm.target_rps_per_instance, sm.target_invocations_per_minute) == (8.0, 480.0)
    options = {o.instance_type: (o.min_instances, o.max_instances) for o in plan.sagemaker_options}
    assert options == {
        "ml.g5.xlarge": (9, 19),
        "ml.g5.2xlarge": (6, 13),
        "ml.g5.12xlarge": (2, 6),
        "ml.p4d.24xlarge": (1, 4),
    }


def test_seed_rule_picks_lambda_for_mangaassist_not_two_sonnet_mus() -> None:
    plan = size_capacity(MANGA)
    assert [(c.pattern, c.passed) for c in plan.seed_checks] == [
        ("lambda_on_demand", True),
        ("bedrock_provisioned", False),
        ("sagemaker_realtime", True),
    ]
    assert plan.seed_pattern == "lambda_on_demand"
    assert "81.02 req/s < 350.00 req/s" in plan.seed_checks[0].detail
    assert "49 Sonnet MUs > the seed's threshold of 10" in plan.seed_checks[1].detail


def test_seed_rule_falls_to_sagemaker_when_lambda_cannot_take_the_burst() -> None:
    small_lambda = CapacityAssumptions(lambda_max_concurrency=100)  # 50 req/s, limit 35
    plan = size_capacity(MANGA, small_lambda)
    assert plan.seed_pattern == "sagemaker_realtime"


def test_seed_rule_picks_provisioned_for_small_traffic() -> None:
    traffic = TrafficProfile(daily_messages=100_000)
    plan = size_capacity(traffic, CapacityAssumptions(lambda_max_concurrency=10))
    # peak 4.05 req/s → 194,444 tokens/min → ceil(4.86) = 5 Sonnet MUs ≤ 10
    assert plan.bedrock_provisioned.sonnet_mus == 5
    assert plan.seed_pattern == "bedrock_provisioned"
    assert plan.bedrock_provisioned.commitment == "NoCommitment"


def test_reserved_concurrency_is_capped_by_the_quota() -> None:
    plan = size_capacity(TrafficProfile(daily_messages=50_000_000))
    assert plan.lambda_on_demand.reserved_concurrency == 1000
    assert plan.lambda_on_demand.fits is False


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("daily_messages", 0, "must be > 0"),
        ("daily_messages", -5, "must be > 0"),
        ("daily_messages", True, "must be an integer"),
        ("peak_multiplier", 0.99, "must be ≥ 1"),
        ("peak_multiplier", float("nan"), "finite"),
        ("peak_hours", 0, "must be > 0"),
        ("peak_hours", 25, "must be ≤ 24"),
        ("burst_factor", 0.5, "must be ≥ 1"),
        ("avg_input_tokens", -1, "must be ≥ 0"),
    ],
)
def test_invalid_traffic_names_the_field(field: str, value: object, fragment: str) -> None:
    with pytest.raises(PlanningInputError) as info:
        TrafficProfile(**{field: value})  # type: ignore[arg-type]
    assert info.value.field == field
    assert fragment in str(info.value)


def test_zero_tokens_rejected() -> None:
    with pytest.raises(PlanningInputError, match="input \\+ output tokens"):
        TrafficProfile(avg_input_tokens=0, avg_output_tokens=0)


def test_unknown_default_instance_type_rejected() -> None:
    with pytest.raises(PlanningInputError) as info:
        CapacityAssumptions(sagemaker_instance_type="ml.g6.xlarge")
    assert info.value.field == "sagemaker_instance_type"


traffic_profiles = st.builds(
    TrafficProfile,
    daily_messages=st.integers(1, 10**9),
    peak_multiplier=st.floats(1, 10),
    peak_hours=st.integers(1, 24),
    burst_factor=st.floats(1, 10),
    avg_input_tokens=st.integers(1, 10_000),
    avg_output_tokens=st.integers(0, 10_000),
)


@given(traffic_profiles)
def test_rates_are_ordered_and_sizing_covers_them(traffic: TrafficProfile) -> None:
    plan = size_capacity(traffic)
    load = plan.load
    assert load.avg_rps <= load.peak_rps <= load.burst_rps
    mu = plan.bedrock_provisioned
    assert mu.sonnet_mus * 40_000 >= load.peak_tokens_per_minute
    assert mu.haiku_mus <= mu.sonnet_mus
    sm = plan.sagemaker_realtime
    assert sm.min_instances * sm.instance_rps >= load.peak_rps
    assert sm.max_instances >= sm.min_instances + 2


@given(traffic_profiles, st.integers(1, 10**6))
def test_more_messages_never_need_fewer_units(traffic: TrafficProfile, extra: int) -> None:
    more = TrafficProfile(
        daily_messages=traffic.daily_messages + extra,
        peak_multiplier=traffic.peak_multiplier,
        peak_hours=traffic.peak_hours,
        burst_factor=traffic.burst_factor,
        avg_input_tokens=traffic.avg_input_tokens,
        avg_output_tokens=traffic.avg_output_tokens,
    )
    a, b = size_capacity(traffic), size_capacity(more)
    assert b.bedrock_provisioned.sonnet_mus >= a.bedrock_provisioned.sonnet_mus
    assert b.sagemaker_realtime.max_instances >= a.sagemaker_realtime.max_instances
    assert b.lambda_on_demand.reserved_concurrency >= a.lambda_on_demand.reserved_concurrency
