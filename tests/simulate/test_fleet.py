"""The simulated targets: latency fitted to the seed's profiles, capacity, faults, scaling,
prices."""

from __future__ import annotations

from pathlib import Path

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
    PUBLISHED_DEFAULTS,
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


def test_seed_profiles_an_answer_of_the_reference_length_takes_the_profiles_latency() -> None:
    sim = SimTarget(target(), 0, TargetModel(physics="seed-profiles", ttft_share=0.35), [])
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
    pattern=st.sampled_from(
        [Pattern.BEDROCK_ON_DEMAND, Pattern.SAGEMAKER_SERVERLESS, Pattern.SAGEMAKER_REALTIME]
    ),
    physics=st.sampled_from(["published", "seed-profiles"]),
    busy=st.integers(0, 3),
)
def test_earliest_answer_never_exceeds_a_real_attempt_on_an_idle_target(
    draw: float,
    start_s: float,
    offset_ms: float,
    nth: int,
    tout: int,
    pattern: Pattern,
    physics: str,
    busy: int,
) -> None:
    prior = BUILTIN_PROFILES[pattern.value]
    now = round(start_s * NS_PER_S)
    endpoint = target(pattern=pattern, prior=prior, capacity=Capacity(requests_per_second=8))
    model = TargetModel(physics=physics, error_rate=0.01, slots_per_instance=1)
    sim = SimTarget(endpoint, 0, model, _FAULTS, 1)
    for k in range(busy):  # load (a queue, a used bucket) only makes a real attempt later
        sim.attempt(now, (draw + 0.1 * (k + 1)) % 1.0, 0, 500, 300, True)
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


def median_of(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


DRAWS = [(k + 0.5) / 4000 for k in range(4000)]


def test_published_first_token_grows_with_input_and_output_takes_tokens_per_second() -> None:
    haiku = SimTarget(target(tier="haiku"), 0, TargetModel(error_rate=0.0), [])
    assert (haiku.ttft_ms, haiku.tpot_ms) == (750.0, pytest.approx(1000 / 65))
    short = [haiku.attempt(0, d, 0, 0, 260, False) for d in DRAWS]
    long = [haiku.attempt(0, d, 0, 2_000, 260, False) for d in DRAWS]
    assert median_of([r[2] for r in short]) == pytest.approx(750, rel=0.01)
    assert median_of([r[2] for r in long]) == pytest.approx(750 + 200, rel=0.01)
    # 260 tokens at 65 tokens/s: 4 s after the first token (medians add up to within 2 %)
    assert median_of([r[1] - r[2] for r in short]) == pytest.approx(4000, rel=0.02)
    # the first token's tail has the prior's shape: p99 / p50 = 1200 / 500
    assert sorted(r[2] for r in short)[3960] / 750 == pytest.approx(1200 / 500, rel=0.03)


def test_cached_input_tokens_skip_prefill_and_bill_at_the_cache_read_price() -> None:
    sim = SimTarget(target(pricing=Pricing(3.0, 15.0)), 0, TargetModel(error_rate=0.0), [])
    cold = sim.attempt(0, 0.5, 0, 3_000, 100, False)
    cached = sim.attempt(0, 0.5, 0, 3_000, 100, False, cached_tokens=2_500)
    assert cold[2] - cached[2] == pytest.approx(250 * sim.mult[int(0.5 * TABLE_SIZE)], rel=0.05)
    assert sim.bill(3_000, 100, cached_tokens=2_500) == pytest.approx(
        (500 * 3 + 2_500 * 0.3 + 100 * 15) / 1e6
    )


def test_bedrock_reserves_input_plus_max_tokens_and_settles_at_the_end() -> None:
    sim = SimTarget(target(capacity=Capacity(tokens_per_minute=60_000)), 0, TargetModel(), [])
    assert sim.tok_level == 15_000  # 15 s of the minute's quota at once
    # each call reserves 500 + 4,000: three fit, the fourth is throttled
    codes = [sim.attempt(0, 0.5, 0, 500, 300, True, max_tokens=4_000)[0] for _ in range(4)]
    assert codes == [OK, OK, OK, THROTTLED]
    assert sim.tok_level == pytest.approx(15_000 - 3 * 4_500)
    sim.finished(0, 500, 300, 4_000, OK)  # settles to 500 + 300
    assert sim.tok_level == pytest.approx(15_000 - 2 * 4_500 - 800)
    assert sim.attempt(0, 0.5, 0, 500, 300, True, max_tokens=4_000)[0] == OK


def test_claude_4_output_burns_the_quota_five_times_and_the_daily_quota_binds() -> None:
    sonnet4 = Target(
        "s4",
        Pattern.BEDROCK_ON_DEMAND,
        "anthropic.claude-sonnet-4-20250514-v1:0",
        "ap-northeast-1",
        LatencyProfile(500, 800, 1200),
        capacity=Capacity(tokens_per_minute=60_000),
    )
    sim = SimTarget(sonnet4, 0, TargetModel(daily_tokens=9_000), [])
    assert sim.burndown == 5.0
    assert sim.attempt(0, 0.5, 0, 500, 1_000, True)[0] == OK  # 500 + 5 x 1,000
    assert sim.tok_level == pytest.approx(15_000 - 5_500)
    assert sim.daily_left == pytest.approx(3_500)
    # a minute later the bucket is full again, but the day's quota is not
    assert sim.attempt(60 * NS_PER_S, 0.5, 0, 500, 1_000, True)[0] == THROTTLED


def test_requests_per_minute_throttle_too() -> None:
    model = TargetModel(requests_per_minute=60, error_rate=0.0)
    sim = SimTarget(target(), 0, model, [])
    codes = [sim.attempt(0, 0.5, 0, 100, 10, True)[0] for _ in range(16)]
    assert codes == [OK] * 15 + [THROTTLED]  # 15 s of the minute's requests at once
    assert sim.attempt(NS_PER_S, 0.5, 0, 100, 10, True)[0] == OK  # one more a second


def test_sagemaker_realtime_queues_for_a_slot_and_times_out_instead_of_throttling() -> None:
    endpoint = target("sm", Pattern.SAGEMAKER_REALTIME, capacity=Capacity(requests_per_second=8))
    sim = SimTarget(endpoint, 0, TargetModel(slots_per_instance=2, error_rate=0.0), [], 1)
    assert len(sim.slots) == 2
    first = sim.attempt(0, 0.5, 0, 500, 300, True)
    second = sim.attempt(0, 0.5, 0, 500, 300, True)
    third = sim.attempt(0, 0.5, 0, 500, 300, True)
    assert first == second and first[0] == OK
    assert third[0] == OK  # waits for the first free slot, is not rejected
    assert third[1] == pytest.approx(2 * first[1], rel=1e-6)
    assert third[2] == pytest.approx(first[1] + first[2], rel=1e-6)
    # a long queue: once the wait passes the 60 s invocation timeout, ModelError
    outcomes = [sim.attempt(0, 0.5, 0, 500, 300, True) for _ in range(40)]
    timed_out = [r for r in outcomes if r[0] == ERROR]
    assert timed_out and all(r[1] == 60_000 and r[3] == "ModelError" for r in timed_out)
    assert all(r[1] <= 60_000 for r in outcomes)
    # abandoning a call does not free its slot: the container still works on it
    busy = sorted(sim.slots)
    sim.finished(1, 500, 300, None, OK)
    assert sorted(sim.slots) == busy


def test_a_baseline_error_rate_fails_a_few_calls_independently_per_target() -> None:
    a = SimTarget(target("a"), 0, TargetModel(error_rate=0.01), [])
    b = SimTarget(target("b"), 1, TargetModel(error_rate=0.01), [])
    draws = [(k + 0.5) / 20_000 for k in range(20_000)]
    fail_a = {d for d in draws if a.attempt(0, d, 0, 500, 300, False)[0] == ERROR}
    fail_b = {d for d in draws if b.attempt(0, d, 0, 500, 300, False)[0] == ERROR}
    assert len(fail_a) / 20_000 == pytest.approx(0.01, rel=0.15)
    assert len(fail_a & fail_b) < 0.1 * len(fail_a)  # another target is another chance
    again = {d for d in fail_a if a.attempt(0, d, 1, 500, 300, False)[0] == ERROR}
    assert len(again) < 0.1 * len(fail_a)  # and so is another attempt


def test_a_cross_region_profile_adds_latency_and_has_its_own_quota() -> None:
    local = SimTarget(target(tier="sonnet"), 0, TargetModel(error_rate=0.0), [])
    profile = Target(
        "xr",
        Pattern.BEDROCK_ON_DEMAND,
        "apac.anthropic.claude-3-sonnet-20240229-v1:0",
        "ap-northeast-1",
        LatencyProfile(500, 800, 1200),
        tier="sonnet",
        capacity=Capacity(tokens_per_minute=4_000),
    )
    remote = SimTarget(profile, 0, TargetModel(error_rate=0.0), [])
    near = local.attempt(0, 0.5, 0, 500, 300, False)
    far = remote.attempt(0, 0.5, 0, 500, 300, True)
    assert far[2] - near[2] == pytest.approx(60.0)
    assert far[1] - near[1] == pytest.approx(60.0)
    assert remote.attempt(0, 0.5, 0, 500, 300, True)[0] == THROTTLED  # 1,000 tokens at once


def test_a_quota_cut_lowers_capacity_without_random_throttles() -> None:
    cut = Fault("quota_cut", "t", 0.0, 3600.0, factor=0.25)
    sim = SimTarget(target(capacity=Capacity(tokens_per_minute=60_000)), 0, TargetModel(), [cut])
    codes = [sim.attempt(NS_PER_S, 0.5, 0, 500, 250, True)[0] for _ in range(6)]
    assert codes == [OK] * 5 + [THROTTLED]  # 15,000 x 0.25 = 3,750 tokens at once
    after = [sim.attempt(3601 * NS_PER_S, 0.5, 0, 500, 250, True)[0] for _ in range(6)]
    assert after == [OK] * 6


def test_the_docs_state_the_defaults_the_model_uses() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "simulate.md"
    text = docs.read_text("utf-8")
    table = text[text.index("### Defaults and where they come from") : text.index("## Faults")]
    for tier, physics in PUBLISHED_DEFAULTS.items():
        row = f"| `ttft_ms`, `tokens_per_s`, tier `{tier}` | {physics.ttft_ms:g} ms, "
        assert row + f"{physics.tokens_per_s:g} tokens/s |" in table
    d = TargetModel()
    assert f"| `ttft_per_1k_input_ms` | {d.ttft_per_1k_input_ms:g} ms |" in table
    assert f"| `tps_sigma` | {d.tps_sigma:g} |" in table
    assert f"| `error_rate` | {d.error_rate * 100:g} % |" in table
    assert f"| `cache_read_price` | {d.cache_read_price:g} |" in table
    assert f"{d.throttle_latency_ms:g} ms, {d.error_latency_ms:g} ms" in table
    assert f"| `cross_region_ms` | {SimTarget(xr_target(), 0, d, []).cross_region_ms:g} ms" in table


def xr_target() -> Target:
    return Target("xr", Pattern.BEDROCK_ON_DEMAND, "apac.x", "r", LatencyProfile(1, 2, 3))
