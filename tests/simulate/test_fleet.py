"""The simulated targets: latency fitted to the seed's profiles, capacity, faults, scaling,
prices."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mangaroute.core.outcome import ERROR, OK, THROTTLED
from mangaroute.core.targets import (
    BUILTIN_PROFILES,
    SEED_PROFILES,
    Capacity,
    LatencyProfile,
    Pattern,
    Pricing,
    Target,
)
from mangaroute.simulate.fleet import (
    NS_PER_S,
    TICK_NS,
    Fault,
    Fleet,
    SimTarget,
    TargetModel,
    multiplier_table,
)
from mangaroute.simulate.traffic import TABLE_SIZE


def target(
    name: str = "t",
    pattern: Pattern = Pattern.BEDROCK_ON_DEMAND,
    prior: LatencyProfile | None = None,
    **kw: object,
) -> Target:
    return Target(
        name,
        pattern,
        f"model-{name}",
        "ap-northeast-1",
        prior or LatencyProfile(500, 800, 1200),
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("pattern", list(SEED_PROFILES))
def test_the_latency_tail_reproduces_the_seeds_profiles(pattern: str) -> None:
    profile = SEED_PROFILES[pattern]
    table = multiplier_table(profile)
    assert table == sorted(table)
    for q, expected in ((0.50, profile.p50_ms), (0.90, profile.p90_ms), (0.99, profile.p99_ms)):
        assert table[int(q * TABLE_SIZE)] * profile.p50_ms == pytest.approx(expected, rel=0.01)


def test_an_answer_of_the_reference_length_takes_the_profiles_latency() -> None:
    sim = SimTarget(target(), 0, TargetModel(ttft_share=0.35), [])
    latencies = sorted(sim.attempt(0, (k + 0.5) / 2000, 0, 500, 300, True)[1] for k in range(2000))
    assert latencies[1000] == pytest.approx(500, rel=0.02)
    assert latencies[1980] == pytest.approx(1200, rel=0.04)
    code, latency, ttft, error = sim.attempt(0, 0.3, 0, 500, 600, True)
    assert code == OK and error is None
    assert ttft == pytest.approx(latency * 0.35 / (0.35 + 0.65 * 2))


def test_the_same_message_meets_the_same_luck_and_another_attempt_new_luck() -> None:
    a = SimTarget(target(), 0, TargetModel(), [])
    b = SimTarget(target(), 0, TargetModel(), [])
    assert a.attempt(0, 0.123, 0, 500, 300, True) == b.attempt(0, 0.123, 0, 500, 300, True)
    assert a.attempt(0, 0.123, 1, 500, 300, True) != a.attempt(0, 0.123, 0, 500, 300, True)


def test_a_tokens_per_minute_limit_throttles_at_once_and_refills_over_time() -> None:
    sim = SimTarget(target(capacity=Capacity(tokens_per_minute=60_000)), 0, TargetModel(), [])
    # 15 s deep: 15,000 tokens at once, then 1,000 tokens a second
    results = [sim.attempt(0, 0.5, 0, 2_000, 1_000, True)[0] for _ in range(6)]
    assert results == [OK] * 5 + [THROTTLED]
    assert sim.attempt(3 * NS_PER_S, 0.5, 0, 2_000, 1_000, True)[0] == OK
    assert sim.attempt(3 * NS_PER_S, 0.5, 0, 2_000, 1_000, False)[0] == THROTTLED
    assert sim.attempt(3 * NS_PER_S, 0.5, 0, 2_000, 1_000, True)[1] < 100  # a fast 429


def test_faults_outage_fast_errors_slowdown_and_throttle_storm() -> None:
    hour = 3600.0
    faults = [
        Fault("outage", "t", 1 * hour, 2 * hour),
        Fault("fast_errors", "t", 2 * hour, 3 * hour, probability=0.3, latency_ms=10.0),
        Fault("slowdown", "t", 3 * hour, 4 * hour, factor=4.0),
        Fault("throttle_storm", "t", 4 * hour, 5 * hour, factor=0.5, probability=0.2),
    ]
    sim = SimTarget(target(), 0, TargetModel(), faults)

    def at(h: float, draw: float) -> tuple[int, float, float, str | None]:
        return sim.attempt(round(h * hour * NS_PER_S), draw, 0, 500, 300, False)

    assert at(1.5, 0.4)[0] == ERROR and at(1.5, 0.4)[3] == "ServiceUnavailable"
    outcomes = [at(2.5, (k + 0.5) / 1000)[0] for k in range(1000)]
    assert outcomes.count(ERROR) / 1000 == pytest.approx(0.3, abs=0.03)
    errors = [r for r in (at(2.5, (k + 0.5) / 1000) for k in range(1000)) if r[0] == ERROR]
    assert max(r[1] for r in errors) < 15
    assert at(3.5, 0.4)[1] == pytest.approx(4 * at(0.5, 0.4)[1])
    storm = [at(4.5, (k + 0.5) / 1000)[0] for k in range(1000)]
    assert storm.count(THROTTLED) / 1000 == pytest.approx(0.2, abs=0.03)
    with pytest.raises(ValueError, match="kind"):
        Fault("meltdown", "t", 0, 1)


def test_serverless_targets_start_cold_after_idling() -> None:
    lam = target("lam", Pattern.LAMBDA_ON_DEMAND, SEED_PROFILES["lambda_on_demand"])
    sim = SimTarget(lam, 0, TargetModel(idle_cold_s=600), [])
    first = sim.attempt(10 * NS_PER_S, 0.999, 0, 500, 300, True)
    warm = sim.attempt(11 * NS_PER_S, 0.999, 0, 500, 300, True)
    assert first[1] - warm[1] == pytest.approx(4500.0)  # the seed's Lambda cold start
    cold_again = sim.attempt(700 * NS_PER_S, 0.999, 0, 500, 300, True)
    assert cold_again[1] == pytest.approx(first[1])


def test_sagemaker_scales_out_after_its_lag_and_bills_instance_time() -> None:
    endpoint = target(
        "sm",
        Pattern.SAGEMAKER_REALTIME,
        capacity=Capacity(requests_per_second=16),
        pricing=Pricing(hourly_usd=3.78),
    )
    model = TargetModel(scale_out_lag_s=300, max_instances=8, target_utilization=0.5)
    fleet = Fleet.build((endpoint,), {"sm": model}, [], {"sm": 2})
    sim = fleet.by_name["sm"]
    assert (sim.current, sim.rps_per_instance, sim.instance_hourly) == (2, 8.0, 1.89)
    now = 0
    for minute in range(12):
        for _ in range(12 * 60):  # 12 req/s offered: 3 instances' worth at 50 %
            sim.attempt(now, 0.5, 0, 500, 300, True)
            now += NS_PER_S // 12
        fleet.tick((minute + 1) * TICK_NS)
    assert sim.current == 3 and not sim.pending  # launched at minute 1, in service at 6
    fleet.close(12 * 60.0)
    assert sim.usage.instance_seconds == pytest.approx(2 * 60 + 3 * 60 * 11)
    assert sim.usage.fixed_usd == pytest.approx(sim.usage.instance_seconds / 3600 * 1.89)


def test_tokens_are_billed_at_the_targets_prices() -> None:
    sim = SimTarget(target(pricing=Pricing(3.0, 15.0)), 0, TargetModel(), [])
    assert sim.bill(500, 300) == pytest.approx((500 * 3 + 300 * 15) / 1e6)
    assert sim.usage.input_tokens == 500 and sim.usage.output_tokens == 300
    provisioned = SimTarget(
        target(pattern=Pattern.BEDROCK_PROVISIONED, pricing=Pricing(hourly_usd=46.0)),
        0,
        TargetModel(),
        [],
    )
    provisioned.close(86_400.0)
    assert provisioned.usage.fixed_usd == pytest.approx(46.0 * 24)
    assert provisioned.committed and not sim.committed


_FAULTS = [
    Fault("outage", "t", 100.0, 160.0),
    Fault("slowdown", "t", 150.0, 400.0, factor=3.0),
    Fault("fast_errors", "t", 300.0, 500.0, probability=0.5),
    Fault("slowdown", "t", 450.0, 480.0, factor=0.5),
]


@settings(max_examples=300, deadline=None)
@given(
    draw=st.floats(0.0, 1.0, exclude_max=True),
    start_s=st.floats(0.0, 600.0),
    offset_ms=st.floats(0.0, 120_000.0),
    nth=st.integers(0, 3),
    tout=st.integers(1, 2_000),
    pattern=st.sampled_from([Pattern.BEDROCK_ON_DEMAND, Pattern.SAGEMAKER_SERVERLESS]),
)
def test_earliest_answer_never_exceeds_a_real_attempt_on_an_idle_target(
    draw: float, start_s: float, offset_ms: float, nth: int, tout: int, pattern: Pattern
) -> None:
    prior = BUILTIN_PROFILES[pattern.value]
    now = round(start_s * NS_PER_S)
    sim = SimTarget(target(pattern=pattern, prior=prior), 0, TargetModel(), _FAULTS)
    bound = sim.earliest_answer(now, draw, 500, tout, horizon_ms=offset_ms, attempts=nth + 1)
    before = (sim.tok_level, sim.last_call_ns, sim.in_flight)
    sim.earliest_answer(now, draw, 500, tout, horizon_ms=offset_ms, attempts=nth + 1)
    assert (sim.tok_level, sim.last_call_ns, sim.in_flight) == before  # pure
    start = now + round(offset_ms * 1e6)
    code, latency, ttft, _ = sim.attempt(start, draw, nth, 500, tout, True)
    if code != OK:
        return
    assert bound is not None
    assert bound[0] <= offset_ms + latency + 1e-6
    assert bound[1] <= offset_ms + ttft + 1e-6
    assert bound[1] <= bound[0]


def test_earliest_answer_is_exact_when_idle_and_none_through_an_outage() -> None:
    sim = SimTarget(target(), 0, TargetModel(), _FAULTS)
    code, latency, ttft, _ = sim.attempt(10 * NS_PER_S, 0.37, 0, 500, 300, False)
    assert code == OK
    assert sim.earliest_answer(10 * NS_PER_S, 0.37, 500, 300, horizon_ms=0) == pytest.approx(
        (latency, ttft)
    )
    # the outage 100-160 s covers the whole horizon: nothing can answer
    assert sim.earliest_answer(110 * NS_PER_S, 0.37, 500, 300, horizon_ms=40_000) is None
    # a horizon reaching past its end answers after it ends, at the slowdown's 3x
    late = sim.earliest_answer(110 * NS_PER_S, 0.37, 500, 300, horizon_ms=60_000)
    assert late is not None
    assert late[0] == pytest.approx(50_000 + 3 * latency)
    # more attempts can only help
    two = sim.earliest_answer(10 * NS_PER_S, 0.37, 500, 300, horizon_ms=0, attempts=2)
    assert two is not None and two[0] <= latency
