"""The per-target breaker: closed -> open -> half-open, with growing cool-downs."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mangaroute.core.breaker import Breaker, BreakerPolicy, BreakerState

S = 1_000_000_000
T0 = 10**12
POLICY = BreakerPolicy(
    consecutive_failures=3,
    error_rate=0.5,
    min_requests=10,
    interval_s=10,
    cooldown_s=10,
    max_cooldown_s=80,
    half_open_probes=1,
    successes_to_close=2,
    probe_timeout_s=5,
)


def opened(now: int = T0) -> Breaker:
    breaker = Breaker(POLICY, T0)
    for _ in range(3):
        breaker.on_result(now, failure=True)
    assert breaker.state is BreakerState.OPEN
    return breaker


def test_consecutive_failures_open_the_breaker() -> None:
    breaker = Breaker(POLICY, T0)
    assert breaker.on_result(T0, True) is False
    assert breaker.on_result(T0, True) is False
    assert breaker.on_result(T0, True) is True
    assert breaker.state is BreakerState.OPEN
    assert breaker.reason == "consecutive_failures(3)"
    assert breaker.reopen_ns == T0 + 10 * S


def test_a_success_resets_the_consecutive_count() -> None:
    breaker = Breaker(POLICY, T0)
    for _ in range(10):
        breaker.on_result(T0, True)
        breaker.on_result(T0, True)
        breaker.on_result(T0, False)
        breaker.on_result(T0, False)
        breaker.on_result(T0, False)
        breaker.on_result(T0, False)
    # never 3 in a row, and never half the calls so far
    assert breaker.state is BreakerState.CLOSED


def test_error_rate_over_minimum_volume_opens_the_breaker() -> None:
    breaker = Breaker(POLICY, T0)
    for _ in range(4):
        breaker.on_result(T0, False)
        breaker.on_result(T0, True)
    assert breaker.state is BreakerState.CLOSED  # 4/8: below the minimum volume
    breaker.on_result(T0, False)
    changed = breaker.on_result(T0, True)  # 5 failures in 10 calls
    assert changed and breaker.state is BreakerState.OPEN
    assert breaker.reason == "error_rate(5/10)"


def test_the_error_rate_counts_restart_every_interval() -> None:
    breaker = Breaker(POLICY, T0)
    for _ in range(9):
        breaker.on_result(T0, False)
    breaker.on_result(T0 + 11 * S, True)  # new interval: 1 failure in 1 call
    breaker.on_result(T0 + 11 * S, False)
    assert breaker.state is BreakerState.CLOSED


def test_open_becomes_half_open_after_the_cooldown_only() -> None:
    breaker = opened()
    assert breaker.tick(T0 + 10 * S - 1) is False
    assert breaker.state is BreakerState.OPEN
    assert breaker.tick(T0 + 10 * S) is True
    assert breaker.state is BreakerState.HALF_OPEN


def test_half_open_allows_limited_probes_and_closes_after_successes() -> None:
    breaker = opened()
    breaker.tick(T0 + 10 * S)
    assert breaker.try_probe(T0 + 10 * S) is True
    assert breaker.try_probe(T0 + 10 * S) is False  # one probe at a time
    breaker.on_result(T0 + 11 * S, False)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.try_probe(T0 + 11 * S) is True
    assert breaker.on_result(T0 + 12 * S, False) is True
    assert breaker.state is BreakerState.CLOSED


def test_a_probe_that_never_reports_frees_its_slot_after_the_timeout() -> None:
    breaker = opened()
    breaker.tick(T0 + 10 * S)
    assert breaker.try_probe(T0 + 10 * S)
    assert not breaker.try_probe(T0 + 14 * S)
    assert breaker.try_probe(T0 + 15 * S)


def test_a_failed_probe_reopens_with_a_doubled_cooldown_capped_at_the_maximum() -> None:
    breaker = opened()
    now = T0
    expected = [20, 40, 80, 80]
    for cooldown in expected:
        now = breaker.reopen_ns
        breaker.tick(now)
        assert breaker.try_probe(now)
        breaker.on_result(now, True)
        assert breaker.state is BreakerState.OPEN
        assert breaker.reopen_ns - now == cooldown * S


def test_ejections_are_forgotten_after_a_healthy_stretch() -> None:
    breaker = opened()
    breaker.tick(T0 + 10 * S)
    breaker.on_result(T0 + 10 * S, False)
    breaker.on_result(T0 + 10 * S, False)
    assert breaker.state is BreakerState.CLOSED and breaker.ejections == 1
    breaker.on_result(T0 + 100 * S, False)  # healthy for longer than max_cooldown_s
    assert breaker.ejections == 0
    for _ in range(3):
        breaker.on_result(T0 + 100 * S, True)
    assert breaker.reopen_ns - T0 - 100 * S == 10 * S  # back to the base cool-down


def test_results_arriving_while_open_change_nothing() -> None:
    breaker = opened()
    assert breaker.on_result(T0 + S, False) is False
    assert breaker.state is BreakerState.OPEN


def test_force_open_uses_the_given_cooldown() -> None:
    breaker = Breaker(POLICY, T0)
    assert breaker.force_open(T0, "access_denied", cooldown_s=3600) is True
    assert breaker.reopen_ns == T0 + 3600 * S
    assert breaker.force_open(T0, "again") is False


def test_forcing_an_open_breaker_open_extends_it_without_a_new_ejection() -> None:
    breaker = opened()
    assert breaker.ejections == 1
    assert breaker.force_open(T0 + S, "access_denied", cooldown_s=3600) is False
    assert breaker.ejections == 1
    assert breaker.reopen_ns == T0 + S + 3600 * S
    assert breaker.reason == "access_denied"
    breaker.force_open(T0 + 2 * S, "shorter", cooldown_s=1)
    assert breaker.reopen_ns == T0 + S + 3600 * S


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("consecutive_failures", 0),
        ("error_rate", 0.0),
        ("error_rate", 1.5),
        ("cooldown_s", -1),
        ("max_cooldown_s", 5.0),
    ],
)
def test_invalid_policies_are_rejected(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        BreakerPolicy(**{field: value})  # type: ignore[arg-type]


@given(st.lists(st.tuples(st.integers(0, 20 * S), st.booleans(), st.booleans()), max_size=200))
def test_state_machine_invariants(steps: list[tuple[int, bool, bool]]) -> None:
    breaker = Breaker(POLICY, T0)
    now = T0
    for step, failure, probe in steps:
        now += step
        state_before = breaker.state
        breaker.tick(now)
        if probe:
            breaker.try_probe(now)
        breaker.on_result(now, failure)
        if breaker.state is BreakerState.OPEN:
            assert now < breaker.reopen_ns <= now + POLICY.max_cooldown_s * S
        if state_before is BreakerState.CLOSED and not failure:
            assert breaker.state is BreakerState.CLOSED  # a success never opens
        assert breaker.ejections >= (0 if breaker.state is BreakerState.CLOSED else 1)


def fail_probe(breaker: Breaker, now: int) -> int:
    """Let the cool-down end, take the probe and fail it; returns the new cool-down in ns."""
    now = max(now, breaker.reopen_ns)
    breaker.tick(now)
    assert breaker.try_probe(now)
    assert breaker.on_result(now, True) is True
    assert breaker.state is BreakerState.OPEN
    return breaker.reopen_ns - now


def test_a_target_down_for_thousands_of_ejections_keeps_the_maximum_cooldown() -> None:
    # 10.0 * 2 ** 1024 leaves the float range: an uncapped exponent raised OverflowError here
    breaker = Breaker(replace(POLICY, cooldown_s=10.0, max_cooldown_s=80.0), T0)
    breaker.force_open(T0, "down")
    now = T0
    for _ in range(1100):
        cooldown = fail_probe(breaker, now)
        now = breaker.reopen_ns
    assert cooldown == 80 * S
    assert breaker.ejections == 1101


def test_a_million_ejections_in_virtual_time() -> None:
    shipped = BreakerPolicy()  # 30 s doubling up to 300 s: about 10 years of outage here
    breaker = Breaker(shipped, T0)
    for _ in range(5):
        breaker.on_result(T0, True)
    cooldowns = set()
    for _ in range(1_100_000):
        now = breaker.reopen_ns
        breaker.tick(now)
        breaker.try_probe(now)
        breaker.on_result(now, True)
        cooldowns.add(breaker.reopen_ns - now)
    assert breaker.ejections == 1_100_001
    assert breaker.state is BreakerState.OPEN
    assert sorted(cooldowns) == [60 * S, 120 * S, 240 * S, 300 * S]


durations = st.floats(0.001, 86_400.0, allow_nan=False, allow_infinity=False)


@given(
    durations,
    st.floats(1.0, 10_000.0),
    st.integers(0, 10**12),
    st.lists(st.tuples(st.integers(0, 10**6 * S), st.booleans()), min_size=1, max_size=60),
)
def test_cooldown_stays_within_its_bounds_after_any_number_of_ejections(
    cooldown_s: float, stretch: float, ejections: int, steps: list[tuple[int, bool]]
) -> None:
    """A breaker that has already been ejected ``ejections`` times (up to 10**12, a
    millennium of outage at 30 s) keeps failing probes at random moments: every cool-down
    stays within [cooldown_s, max_cooldown_s] and nothing raises."""
    policy = BreakerPolicy(cooldown_s=cooldown_s, max_cooldown_s=min(cooldown_s * stretch, 604_800))
    breaker = Breaker(policy, T0)
    breaker.force_open(T0, "down")
    breaker.ejections = ejections + 1
    now = T0
    low = round(policy.cooldown_s * S)
    high = round(policy.max_cooldown_s * S)
    for late_ns, probe_fails in steps:
        now = max(now, breaker.reopen_ns) + late_ns
        breaker.tick(now)
        assert breaker.state is BreakerState.HALF_OPEN
        assert breaker.try_probe(now)
        breaker.on_result(now, probe_fails)
        if probe_fails:
            assert breaker.state is BreakerState.OPEN
            assert low <= breaker.reopen_ns - now <= high
            if ejections >= 64:
                assert breaker.reopen_ns - now == high
        else:
            breaker.force_open(now, "down")  # still down: the next ejection by hand
