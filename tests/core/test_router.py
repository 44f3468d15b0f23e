"""The router as a user drives it: choose, record, call, snapshot, events."""

from __future__ import annotations

import asyncio
import math
import random
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mangaroute import (
    BreakerState,
    Decision,
    FakeClock,
    InvalidObservation,
    InvalidRequest,
    Outcome,
    Router,
    UnknownRequestClass,
    UnknownTarget,
    parse_config,
)
from mangaroute.core.errors import echo
from mangaroute.core.snapshot import BreakerEvent, SwitchEvent

from ..conftest import SMALL_CONFIG, RouterFactory


def feed(
    router: Router,
    clock: FakeClock,
    target: str,
    latencies: list[float],
    outcome: str = "ok",
    step_ms: float = 100.0,
    **kw: Any,
) -> None:
    for latency in latencies:
        clock.advance(ms=step_ms)
        router.record(target, outcome, latency_ms=latency, **kw)


def test_choose_returns_a_complete_decision(router: Router) -> None:
    decision = router.choose("chat")
    assert isinstance(decision, Decision)
    assert decision.target.name == "fast"
    assert decision.target.model_id == "anthropic.claude-3-haiku-20240307-v1:0"
    assert decision.target.region == "ap-northeast-1"
    assert decision.target.pattern.value == "bedrock_on_demand"
    assert [t.name for t in decision.fallbacks] == ["slow", "steady"]
    assert decision.reason == "best"
    assert decision.request_class == "chat" and decision.policy == "ordered"
    assert router.choose().request_class == "chat"  # the default class
    assert router.choose("chat").decision_id == decision.decision_id + 2


def test_unknown_class_and_bad_requests_are_rejected_precisely(router: Router) -> None:
    with pytest.raises(UnknownRequestClass, match=r"'nope'.*chat, pinned"):
        router.choose("nope")
    with pytest.raises(InvalidRequest, match="budget_ms"):
        router.choose("chat", budget_ms=-1)
    with pytest.raises(InvalidRequest, match="budget_ms"):
        router.choose("chat", budget_ms=math.nan)
    with pytest.raises(InvalidRequest, match="input_tokens=-5"):
        router.choose("chat", input_tokens=-5)


def test_prior_stands_in_until_enough_samples(router: Router, clock: FakeClock) -> None:
    view = router.snapshot().target("fast")
    assert view.latency_source == "prior" and view.p99_ms == 900
    feed(router, clock, "fast", [100.0] * 4)
    assert router.snapshot().target("fast").latency_source == "prior"
    feed(router, clock, "fast", [100.0])
    view = router.snapshot().target("fast")
    assert view.latency_source == "observed"
    assert view.p99_ms == pytest.approx(100.0, rel=0.01)
    assert view.samples == 5


def test_snapshot_statistics_over_the_window(router: Router, clock: FakeClock) -> None:
    feed(
        router,
        clock,
        "fast",
        [float(v) for v in range(1, 101)],
        step_ms=100,
        input_tokens=600,
        output_tokens=200,
        ttft_ms=0.5,
    )
    feed(router, clock, "fast", [5.0] * 10, outcome="error", step_ms=100)
    feed(router, clock, "fast", [5.0] * 10, outcome="throttled", step_ms=100)
    view = router.snapshot().target("fast")
    assert (view.p50_ms, view.p90_ms, view.p99_ms) == pytest.approx((50, 90, 99), rel=0.01)
    assert view.ttft_p50_ms == pytest.approx(0.5, rel=0.01)
    assert view.requests == 120 and view.ok == 100
    assert view.error_rate == pytest.approx(10 / 120)
    assert view.throttle_rate == pytest.approx(10 / 120)
    # 80,000 tokens over the 12 s that have passed = 400,000 tokens/min vs 100,000 capacity
    assert view.tokens_per_minute == pytest.approx(80_000 / 12 * 60, rel=0.01)
    assert view.utilization == pytest.approx(4.0, rel=0.01)


def test_old_samples_age_out(router: Router, clock: FakeClock) -> None:
    feed(router, clock, "fast", [3000.0] * 50)
    assert router.snapshot().target("fast").p99_ms == pytest.approx(3000, rel=0.01)
    clock.advance(seconds=65)
    view = router.snapshot().target("fast")
    assert view.requests == 0 and view.latency_source == "prior" and view.p99_ms == 900


def test_invalid_observations_raise_and_change_nothing(router: Router, clock: FakeClock) -> None:
    feed(router, clock, "fast", [200.0] * 10)
    before = router.snapshot().to_dict()
    bad_calls: list[dict[str, Any]] = [
        {"latency_ms": math.nan},
        {"latency_ms": math.inf},
        {"latency_ms": -1.0},
        {"latency_ms": True},
        {"latency_ms": "12"},
        {"latency_ms": 10.0, "ttft_ms": 20.0},
        {"latency_ms": 10.0, "ttft_ms": math.nan},
        {"latency_ms": 10.0, "input_tokens": -1},
        {"latency_ms": 10.0, "output_tokens": 2.5},
        {"latency_ms": 10.0, "error_code": 42},
    ]
    for kwargs in bad_calls:
        with pytest.raises(InvalidObservation):
            router.record("fast", "ok", **kwargs)
    with pytest.raises(InvalidObservation, match="outcome must be one of"):
        router.record("fast", "great", latency_ms=1.0)
    with pytest.raises(UnknownTarget, match="'nope'; known targets: fast, slow, steady"):
        router.record("nope", latency_ms=1.0)
    with pytest.raises(InvalidObservation, match="Decision or a target name"):
        router.record(42, latency_ms=1.0)  # type: ignore[arg-type]
    assert router.snapshot().to_dict() == before
    router.record("fast", Outcome.OK, latency_ms=200.0)  # and it keeps serving
    assert router.snapshot().target("fast").requests == 11


_COUNT = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    st.floats(allow_nan=True),
    st.none(),
    st.text(max_size=3),
)
_TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


@settings(max_examples=150, deadline=None)
@given(counts=st.tuples(_COUNT, _COUNT, _COUNT, _COUNT))
def test_record_takes_token_counts_only_as_integers_at_least_zero(
    counts: tuple[object, object, object, object],
) -> None:
    router = Router(parse_config(SMALL_CONFIG), clock=FakeClock(), rng=random.Random(1))
    given_counts: dict[str, Any] = dict(zip(_TOKEN_FIELDS, counts, strict=True))
    valid = [type(c) is int and c >= 0 for c in given_counts.values()]
    if all(valid):
        router.record("fast", "ok", latency_ms=5.0, **given_counts)
        assert router.snapshot().target("fast").requests == 1
        return
    with pytest.raises(InvalidObservation) as raised:
        router.record("fast", "ok", latency_ms=5.0, **given_counts)
    # the message names the group at fault (input/output first), every count of it quoted
    group, what = (
        (_TOKEN_FIELDS[:2], "token counts")
        if not all(valid[:2])
        else (_TOKEN_FIELDS[2:], "cache token counts")
    )
    quoted = ", ".join(f"{name}={echo(given_counts[name])}" for name in group)
    assert str(raised.value) == f"{what} must be integers >= 0, got {quoted}"
    assert router.snapshot().target("fast").requests == 0  # nothing recorded


def test_a_decision_from_another_router_is_rejected(make_router: RouterFactory) -> None:
    other = make_router(_renamed_config())
    decision = other.choose()
    with pytest.raises(UnknownTarget):
        make_router().record(decision, latency_ms=5.0)


def _renamed_config() -> str:
    return SMALL_CONFIG.replace('"fast"', '"quick"').replace("targets.fast", "targets.quick")


def test_in_flight_counts_decisions_until_recorded_or_released(
    router: Router, clock: FakeClock
) -> None:
    decisions = [router.choose("chat") for _ in range(3)]
    assert router.snapshot().target("fast").in_flight == 3
    router.record(decisions[0], latency_ms=100.0)
    router.record(decisions[0], latency_ms=100.0)  # recording twice does not go negative
    router.release(decisions[1])
    assert router.snapshot().target("fast").in_flight == 1
    clock.advance(seconds=301)  # never recorded: dropped after the decision TTL
    assert router.snapshot().target("fast").in_flight == 0


def test_outstanding_decisions_are_capped(make_router: RouterFactory) -> None:
    router = make_router(
        SMALL_CONFIG.replace("refresh_ms = 5", "refresh_ms = 5\nmax_outstanding = 100")
    )
    for _ in range(1000):
        router.choose("chat")
    assert router.snapshot().target("fast").in_flight == 100


def test_budget_drops_slow_targets_but_keeps_them_as_last_resort(router: Router) -> None:
    # priors: fast p99 900, steady 1400 (the seed's provisioned profile), slow 2000
    decision = router.choose("chat", budget_ms=1500)
    assert decision.target.name == "fast"
    assert [t.name for t in decision.fallbacks] == ["steady", "slow"]
    assert decision.reason == "best+budget"
    decision = router.choose("chat", budget_ms=100)
    assert decision.reason == "best+over_budget"
    assert router.choose("chat", budget_ms=5000).reason == "best"


def test_consecutive_failures_eject_and_probes_restore(router: Router, clock: FakeClock) -> None:
    events: list[Any] = []
    router.subscribe(events.append)
    for _ in range(3):
        router.record(
            router.choose("chat"), "error", latency_ms=20.0, error_code="InternalServerException"
        )
    assert [(e.target, e.to_state) for e in events] == [("fast", BreakerState.OPEN)]
    decision = router.choose("chat")
    assert decision.target.name == "slow"
    snapshot = router.snapshot()
    assert dict(snapshot.routes["chat"].excluded) == {"fast": "breaker_open"}
    clock.advance(seconds=10)
    probe = router.choose("chat")
    assert (probe.target.name, probe.reason) == ("fast", "probe")
    assert router.choose("chat").target.name == "slow"  # one probe at a time
    router.record(probe, latency_ms=300.0)
    probe = router.choose("chat")
    assert probe.reason == "probe"
    router.record(probe, latency_ms=300.0)
    assert router.choose("chat").target.name == "fast"
    assert [e.to_state for e in events] == [
        BreakerState.OPEN,
        BreakerState.HALF_OPEN,
        BreakerState.CLOSED,
    ]
    assert all(isinstance(e, BreakerEvent) for e in events)


def test_late_results_do_not_count_as_probe_results(router: Router, clock: FakeClock) -> None:
    early = router.choose("chat")
    for _ in range(3):
        router.record("fast", "error", latency_ms=20.0)
    clock.advance(seconds=10)
    router.snapshot()
    router.record(early, "error", latency_ms=20.0)  # issued before the ejection
    assert router.snapshot().target("fast").breaker is BreakerState.HALF_OPEN


def test_throttles_and_client_faults_never_eject(router: Router, clock: FakeClock) -> None:
    feed(router, clock, "fast", [5.0] * 20, outcome="throttled")
    feed(router, clock, "fast", [5.0] * 20, outcome="error", error_code="ValidationException")
    view = router.snapshot().target("fast")
    assert view.breaker is BreakerState.CLOSED
    assert dict(router.snapshot().routes["chat"].excluded) == {"fast": "throttling(0.50)"}


def test_eject_opens_for_the_given_cooldown(router: Router, clock: FakeClock) -> None:
    router.eject("steady", "access_denied", cooldown_s=3600)
    assert router.snapshot().target("steady").breaker is BreakerState.OPEN
    clock.advance(seconds=3599)
    assert router.snapshot().target("steady").breaker is BreakerState.OPEN
    with pytest.raises(UnknownTarget):
        router.eject("nope", "x")


def test_context_manager_records_success_with_tokens_and_ttft(
    router: Router, clock: FakeClock
) -> None:
    with router.call("chat", budget_ms=1500) as call:
        assert call.target.name == "fast"
        clock.advance(ms=120)
        call.first_token()
        clock.advance(ms=380)
        call.tokens(500, 300)
    view = router.snapshot().target("fast")
    assert view.ok == 1 and view.in_flight == 0
    assert router.snapshot().target("fast").tokens_per_minute > 0


class FakeClientError(Exception):
    """Shaped like botocore's ClientError (the core reads the shape, not the class)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.response = {"Error": {"Code": code, "Message": "x"}}


@pytest.mark.parametrize(
    ("exc", "field"),
    [
        (FakeClientError("ThrottlingException"), "throttled"),
        (FakeClientError("ModelTimeoutException"), "timeouts"),
        (TimeoutError(), "timeouts"),
        (FakeClientError("ServiceUnavailableException"), "errors"),
        (RuntimeError("boom"), "errors"),
    ],
)
def test_context_manager_maps_exceptions_to_outcomes(
    router: Router, exc: Exception, field: str
) -> None:
    with pytest.raises(type(exc)), router.call("chat"):
        raise exc
    view = router.snapshot().target("fast")
    assert getattr(view, field) == 1 and view.requests == 1 and view.in_flight == 0


def test_cancellation_releases_instead_of_recording(router: Router) -> None:
    with pytest.raises(KeyboardInterrupt), router.call("chat"):
        raise KeyboardInterrupt
    view = router.snapshot().target("fast")
    assert view.requests == 0 and view.in_flight == 0


def test_async_context_manager(router: Router, clock: FakeClock) -> None:
    async def one() -> str:
        async with router.call("chat") as call:
            await asyncio.sleep(0)
            clock.advance(ms=10)
            return call.target.name

    async def many() -> list[str]:
        return await asyncio.gather(*(one() for _ in range(50)))

    assert Counter(asyncio.run(many())) == {"fast": 50}
    assert router.snapshot().target("fast").ok == 50


def test_switch_events_reach_subscribers_and_history(clock: FakeClock) -> None:
    router = Router.default(clock=clock, rng=random.Random(5))
    seen: list[Any] = []
    router.subscribe(seen.append)

    broken_calls: list[Any] = []

    def broken(event: Any) -> None:
        broken_calls.append(event)
        raise RuntimeError("a listener bug must not reach the router")

    unsubscribe = router.subscribe(broken)
    router.eject("provisioned-sonnet", "test")
    decision = router.choose("simple")
    assert decision.target.name == "ondemand-haiku" and decision.reason == "primary"
    switches = [e for e in seen if isinstance(e, SwitchEvent)]
    assert [(e.from_target, e.to_target, e.reason) for e in switches] == [
        ("provisioned-sonnet", "ondemand-haiku", "unavailable")
    ]
    assert router.switch_history() == tuple(switches)
    assert router.primary == "ondemand-haiku"
    heard = len(broken_calls)
    assert heard >= 2  # the breaker opening and the switch
    unsubscribe()
    router.eject("ondemand-haiku", "test")
    router.choose("simple")
    assert len(broken_calls) == heard  # unsubscribed: hears nothing more
    assert len(seen) > heard  # while the other listener still does


def test_default_config_routes_by_the_seeds_split() -> None:
    router = Router.default(rng=random.Random(11), clock=FakeClock(10**12))
    counts = Counter(router.choose("simple", budget_ms=2000).target.name for _ in range(20_000))
    # primary 0.80, two canaries 0.05 each: 0.889 / 0.056 / 0.056 after normalising
    assert counts["provisioned-sonnet"] / 20_000 == pytest.approx(0.80 / 0.90, abs=0.01)
    assert counts["ondemand-haiku"] / 20_000 == pytest.approx(0.05 / 0.90, abs=0.01)
    manga = router.choose("manga")
    assert manga.target.name == "sagemaker-manga" and manga.reason == "best"


def test_sticky_sessions_stay_on_one_target(make_router: RouterFactory) -> None:
    text = SMALL_CONFIG.replace('picker = "best"', 'picker = "weighted"') + (
        "[policies.ordered.weighted]\nsticky = true\nweights = { fast = 1, slow = 1 }\n"
    )
    router = make_router(text)
    for session in ("alice", "bob", "carol", "dave"):
        first = router.choose("chat", session_id=session).target.name
        assert {router.choose("chat", session_id=session).target.name for _ in range(20)} == {first}
    chosen = {router.choose("chat", session_id=f"s{i}").target.name for i in range(200)}
    assert chosen == {"fast", "slow"}


def test_a_target_down_for_days_is_probed_every_max_cooldown_without_errors(
    make_router: RouterFactory, clock: FakeClock
) -> None:
    # float cool-downs, as a config with `cooldown_s = 10.0` gives: 10.0 * 2 ** 1024 overflowed
    router = make_router(
        SMALL_CONFIG.replace("max_cooldown_s = 80", "max_cooldown_s = 80.0").replace(
            "cooldown_s = 10\n", "cooldown_s = 10.0\n"
        )
    )
    for _ in range(3):
        router.record("fast", "error", latency_ms=5.0)
    for _ in range(1100):  # 1,100 failed probes: a day of outage at 80 s
        clock.advance(seconds=80)
        probe = router.choose("chat")
        assert (probe.target.name, probe.reason) == ("fast", "probe")
        router.record(probe, "error", latency_ms=5.0)
    assert router.snapshot().target("fast").ejections == 1101
    clock.advance(seconds=79.9)
    assert router.choose("chat").target.name == "slow"  # still open: the full 80 s
    clock.advance(seconds=0.1)
    assert router.choose("chat").reason == "probe"


@pytest.mark.parametrize(
    ("cooldown_s", "problem"),
    [
        (math.nan, "expected a finite number, got nan"),
        (math.inf, "expected a finite number, got inf"),
        (-5.0, "expected a number >= 0.001, got -5.0"),
        (0, "expected a number >= 0.001, got 0"),
        (604_800.5, "expected a number <= 604,800, got 604800.5"),
        (1e300, "expected a number <= 604,800, got 1e+300"),
        ("60", "expected a number, got '60'"),
        (True, "expected a number, got True"),
    ],
)
def test_eject_rejects_a_cooldown_outside_its_range(
    router: Router, cooldown_s: Any, problem: str
) -> None:
    before = router.snapshot().to_dict()
    with pytest.raises(InvalidRequest) as raised:
        router.eject("steady", "access_denied", cooldown_s=cooldown_s)
    assert str(raised.value) == (f"cooldown_s {problem}: must be between 0.001 and 604,800 seconds")
    assert router.snapshot().to_dict() == before


def test_eject_accepts_the_ends_of_its_range(router: Router, clock: FakeClock) -> None:
    router.eject("steady", "access_denied", cooldown_s=604_800)
    router.eject("fast", "access_denied", cooldown_s=0.001)
    clock.advance(seconds=604_799)
    views = router.snapshot()
    assert views.target("steady").breaker is BreakerState.OPEN
    assert views.target("fast").breaker is BreakerState.HALF_OPEN
    with pytest.raises(InvalidRequest, match="reason must be a string, got 42"):
        router.eject("fast", 42, cooldown_s=1.0)  # type: ignore[arg-type]


@settings(max_examples=5, deadline=None)
@given(
    st.floats(0.5, 100.0),
    st.floats(1.0, 50.0),
    st.integers(0, 2**32),
)
def test_over_a_thousand_failed_probes_never_raise_and_keep_the_cooldown_in_range(
    cooldown_s: float, stretch: float, seed: int
) -> None:
    """Virtual time, float cool-downs of any size: every choose() and record() of an outage
    longer than 1,024 ejections works, and every cool-down lies in [cooldown_s, max]."""
    max_s = cooldown_s * stretch
    text = SMALL_CONFIG.replace("max_cooldown_s = 80", f"max_cooldown_s = {max_s!r}").replace(
        "cooldown_s = 10\n", f"cooldown_s = {cooldown_s!r}\n"
    )
    clock = FakeClock(10**12)
    router = Router(parse_config(text), clock=clock, rng=random.Random(1))
    rng = random.Random(seed)
    for _ in range(3):
        router.record("fast", "error", latency_ms=5.0)
    for _ in range(1100):  # probes come in up to 3 s after each cool-down ends
        late = rng.uniform(0.0, 3.0)
        (breaker,) = router.local_sample().breakers
        assert cooldown_s - 1e-6 <= breaker.reopen_in_s <= max_s + 1e-6
        clock.advance(seconds=breaker.reopen_in_s + late)
        probe = router.choose("chat")
        assert (probe.target.name, probe.reason) == ("fast", "probe")
        router.record(probe, "error", latency_ms=5.0)
    (breaker,) = router.local_sample().breakers
    assert breaker.reopen_in_s == pytest.approx(max_s)
    assert router.snapshot().target("fast").ejections == 1101
