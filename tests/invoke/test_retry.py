"""Retries of fast failures: the plan's rules with a FakeClock, and the retry budget's bound
under any sequence of calls and retries, from any number of threads."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mangaroute import FakeClock, Outcome, Router
from mangaroute.core.limits import RangeError
from mangaroute.invoke import (
    AttemptKind,
    Deadline,
    FailoverExhausted,
    Failure,
    HedgeBudget,
    HedgePolicy,
    InvokeSettings,
    RetryBudget,
    RetryPolicy,
    Verdict,
)
from mangaroute.invoke.plan import FailoverPlan
from mangaroute.testing import StandIn
from tests.invoke.conftest import ClientFactory
from tests.invoke.support import (
    HAIKU,
    MESSAGES,
    PROVISIONED,
    ROOMY_MS,
    SCALE,
    Recorder,
    make_router,
)

UNAVAILABLE = Failure(Verdict.FAILOVER, Outcome.ERROR, "ServiceUnavailableException")
THROTTLED = Failure(Verdict.FAILOVER, Outcome.THROTTLED, "ThrottlingException")
TIMEOUT = Failure(Verdict.FAILOVER, Outcome.TIMEOUT, "ReadTimeout")
MODEL_ERROR = Failure(Verdict.MODEL_ERROR, Outcome.ERROR, "ModelErrorException")


def plan_for(
    router: Router,
    clock: FakeClock,
    budget_ms: float | None,
    policy: RetryPolicy | None = None,
    budget: RetryBudget | None = None,
    jitter: float = 0.5,
) -> FailoverPlan:
    policy = policy or RetryPolicy()
    return FailoverPlan(
        router.choose("chat"),
        now_ns=clock(),
        deadline=None if budget_ms is None else Deadline.after(budget_ms, clock),
        snapshot=router.snapshot,
        retry=policy,
        retry_budget=budget or RetryBudget(policy),
        jitter=lambda: jitter,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(10**12)


def test_a_fast_random_error_is_retried_on_the_same_target_after_a_jittered_backoff(
    clock: FakeClock,
) -> None:
    router = make_router(clock)
    plan = plan_for(router, clock, 2500, RetryPolicy(backoff_ms=40), jitter=0.25)
    first = plan.start()
    clock.advance(ms=15)
    again = plan.failed(first, UNAVAILABLE, RuntimeError("5xx"), clock())
    assert again is not None
    assert (again.target.name, again.kind, again.nth) == ("primary", AttemptKind.RETRY, 1)
    assert again.started_ns == clock() + 10_000_000  # 0.25 x 40 ms
    clock.advance(ms=10 + 400)
    result = plan.succeeded(again, clock(), losers="abandoned")
    assert result.target == "primary" and result.retries == 1 and result.failovers == 0
    assert [(a.target, a.kind.value, a.outcome) for a in result.attempts] == [
        ("primary", "primary", "error"),
        ("primary", "retry", "ok"),
    ]
    assert result.to_dict()["retries"] == 1


def test_a_second_failure_moves_on_when_the_call_has_used_its_retries(clock: FakeClock) -> None:
    router = make_router(clock)
    plan = plan_for(router, clock, 2500)
    first = plan.start()
    again = plan.failed(first, UNAVAILABLE, RuntimeError("5xx"), clock())
    assert again is not None and again.kind is AttemptKind.RETRY
    clock.advance(ms=30)
    following = plan.failed(again, UNAVAILABLE, RuntimeError("5xx"), clock())
    assert following is not None
    assert (following.target.name, following.kind) == ("haiku", AttemptKind.FAILOVER)
    assert plan.retries == 1


def test_a_throttle_tries_the_next_target_first_and_the_same_one_only_as_a_last_resort(
    clock: FakeClock,
) -> None:
    router = make_router(clock)
    plan = plan_for(router, clock, 2500, RetryPolicy(max_per_call=3))
    launch = plan.start()
    seen = []
    for _ in range(4):
        clock.advance(ms=10)
        launch = plan.failed(launch, THROTTLED, RuntimeError("429"), clock())
        assert launch is not None
        seen.append((launch.target.name, launch.kind.value))
    # primary -> haiku -> profile (fallbacks first), then the last target again, twice more
    assert seen == [
        ("haiku", "failover"),
        ("profile", "failover"),
        ("profile", "retry"),
        ("profile", "retry"),
    ]


def test_slow_failures_timeouts_and_model_errors_are_not_retried(clock: FakeClock) -> None:
    router = make_router(clock)
    plan = plan_for(router, clock, 1000, RetryPolicy(fast_fraction=0.5))
    first = plan.start()
    clock.advance(ms=600)  # past half the budget: not fast
    nxt = plan.failed(first, UNAVAILABLE, RuntimeError("5xx"), clock())
    assert nxt is not None and nxt.kind is AttemptKind.FAILOVER
    plan = plan_for(router, clock, 2500)
    first = plan.start()
    nxt = plan.failed(first, TIMEOUT, RuntimeError("read timeout"), clock())
    assert nxt is not None and nxt.kind is AttemptKind.FAILOVER
    plan = plan_for(router, clock, 2500)
    first = plan.start()
    nxt = plan.failed(first, MODEL_ERROR, RuntimeError("model"), clock())
    assert nxt is not None and nxt.kind is AttemptKind.FAILOVER


def test_a_target_whose_errors_are_not_random_is_left(clock: FakeClock) -> None:
    router = make_router(clock)
    # primary fails 4 of 6 calls (never 3 in a row, so its breaker stays closed): errors
    # that look systematic
    for outcome in (Outcome.ERROR, Outcome.ERROR, Outcome.OK) * 2:
        router.record(router.choose("chat"), outcome, latency_ms=10)
    clock.advance(ms=10)
    plan = plan_for(router, clock, 2500, RetryPolicy(same_target_below=0.5, evidence_calls=6))
    first = plan.start()
    assert first.target.name == "primary"
    nxt = plan.failed(first, UNAVAILABLE, RuntimeError("5xx"), clock())
    assert nxt is not None and (nxt.target.name, nxt.kind) == ("haiku", AttemptKind.FAILOVER)


def test_a_retry_must_fit_the_budget_left_after_its_backoff(clock: FakeClock) -> None:
    router = make_router(clock)  # profile's p50 is 600 ms
    plan = plan_for(router, clock, 1300, RetryPolicy(max_per_call=2, backoff_ms=200), jitter=1.0)
    launch = plan.start()
    clock.advance(ms=10)
    launch = plan.failed(launch, THROTTLED, RuntimeError("429"), clock())
    clock.advance(ms=10)
    launch = plan.failed(launch, THROTTLED, RuntimeError("429"), clock())
    assert launch is not None and launch.target.name == "profile"
    clock.advance(ms=400)  # 880 ms left; a 200 ms backoff leaves 680 >= 600: a retry fits
    launch = plan.failed(launch, THROTTLED, RuntimeError("429"), clock())
    assert launch is not None and launch.kind is AttemptKind.RETRY
    clock.advance(ms=250)  # 430 ms left, less than 400 ms backoff + 600: no second retry
    with pytest.raises(FailoverExhausted, match="no fallback left"):
        plan.failed(launch, THROTTLED, RuntimeError("429"), clock())
    assert plan.retries == 1  # of the 2 allowed: the second did not fit


def test_an_empty_retry_budget_refuses_and_the_call_fails_over(clock: FakeClock) -> None:
    router = make_router(clock)
    policy = RetryPolicy(max_ratio=0.0, reserve=0)
    plan = plan_for(router, clock, 2500, policy)
    first = plan.start()
    nxt = plan.failed(first, UNAVAILABLE, RuntimeError("5xx"), clock())
    assert nxt is not None and nxt.kind is AttemptKind.FAILOVER


def test_a_full_outage_spends_no_more_than_the_budget(clock: FakeClock) -> None:
    """Every target fails every call fast: 1,000 calls, each allowed 3 retries; the retries
    stay within reserve + 20 % of the calls."""
    router = make_router(clock)
    policy = RetryPolicy(max_per_call=3, max_ratio=0.2, reserve=10, window=10_000)
    budget = RetryBudget(policy)
    retries = calls = 0
    for _ in range(1000):
        plan = plan_for(router, clock, None, policy, budget)
        launch = plan.start()
        calls += 1
        while True:
            try:
                launch = plan.failed(launch, UNAVAILABLE, RuntimeError("down"), clock())
            except FailoverExhausted:
                break
            assert launch is not None
            retries += launch.kind is AttemptKind.RETRY
        clock.advance(ms=5)
    assert retries == budget.retries <= 10 + 0.2 * calls
    assert retries >= 0.2 * calls  # and it did retry: the budget is the limit
    assert budget.calls == calls


def test_per_class_retries_and_invalid_settings() -> None:
    policy = RetryPolicy(max_per_call=2, per_class={"chat": 0})
    assert policy.retries_for("chat") == 0 and policy.retries_for("other") == 2
    assert policy.backoff_bound_ms(1) == 25.0 and policy.backoff_bound_ms(3) == 100.0
    with pytest.raises(RangeError, match="max_ratio"):
        RetryPolicy(max_ratio=1.5)
    with pytest.raises(RangeError, match="max_per_call"):
        RetryPolicy(per_class={"chat": -1})


def test_a_class_without_retries_fails_over_at_once(clock: FakeClock) -> None:
    router = make_router(clock)
    plan = plan_for(router, clock, 2500, RetryPolicy(per_class={"chat": 0}))
    first = plan.start()
    nxt = plan.failed(first, UNAVAILABLE, RuntimeError("5xx"), clock())
    assert nxt is not None and nxt.kind is AttemptKind.FAILOVER


@given(
    st.floats(0.0, 1.0),
    st.integers(0, 20),
    st.integers(1, 200),
    st.lists(st.booleans(), max_size=600),
)
def test_extras_never_exceed_reserve_plus_ratio_of_the_calls_in_the_window(
    ratio: float, reserve: int, window: int, steps: list[bool]
) -> None:
    budget = RetryBudget(RetryPolicy(max_ratio=ratio, reserve=reserve, window=window))
    for retry in steps:
        if retry:
            granted = budget.try_spend()
            if not granted:
                calls = budget.calls
                assert calls == 0 or budget.retries + 1 > reserve + ratio * calls
        else:
            budget.count_call()
        # at every moment, not only when granted: evicting a call evicts its retries too
        assert budget.retries <= reserve + ratio * budget.calls + 1e-9
        assert budget.calls <= window


def test_hedges_use_the_same_budget_without_a_reserve() -> None:
    budget = HedgeBudget(HedgePolicy(max_ratio=0.5, window=10))
    assert not budget.try_spend()  # no calls yet
    budget.count_call()
    budget.count_call()
    assert budget.try_spend() and not budget.try_spend()
    assert budget.hedges == 1 and budget.calls == 2


def test_the_budget_holds_across_threads() -> None:
    budget = RetryBudget(RetryPolicy(max_ratio=0.1, reserve=0, window=100_000))
    granted = [0] * 8

    def work(k: int) -> None:
        for _ in range(2000):
            budget.count_call()
            if budget.try_spend():
                granted[k] += 1

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert budget.calls == 16_000
    assert sum(granted) == budget.retries <= 0.1 * 16_000
    assert sum(granted) >= 0.1 * 16_000 - 8  # each thread's last refusal at most


# -- end to end: RoutedClient, real boto3, the stand-in ---------------------------------------


def test_a_routed_call_retries_a_fast_5xx_on_the_same_target(
    standin: StandIn, router: Router, recorder: Recorder, make_client: ClientFactory
) -> None:
    standin.target(PROVISIONED).fail_next("ServiceUnavailableException")
    settings = InvokeSettings(time_scale=SCALE, retry=RetryPolicy(backoff_ms=10))
    client = make_client(router, settings=settings)
    reply = client.converse(
        messages=MESSAGES, budget_ms=ROOMY_MS, inferenceConfig={"maxTokens": 50}
    )
    routing = reply.routing
    assert routing.target == "primary" and routing.retries == 1 and routing.failovers == 0
    assert [(a.target, a.kind.value, a.outcome) for a in routing.attempts] == [
        ("primary", "primary", "error"),
        ("primary", "retry", "ok"),
    ]
    assert routing.attempts[1].started_ms >= routing.attempts[0].latency_ms
    assert [(o[0], o[1].value) for o in recorder.outcomes] == [
        ("primary", "error"),
        ("primary", "ok"),
    ]
    assert standin.target(PROVISIONED).stats().calls == 2
    assert standin.target(HAIKU).stats().calls == 0


def test_without_a_retry_policy_the_same_failure_fails_over(
    standin: StandIn, router: Router, make_client: ClientFactory
) -> None:
    standin.target(PROVISIONED).fail_next("ServiceUnavailableException")
    client = make_client(router)
    routing = client.converse(messages=MESSAGES, budget_ms=ROOMY_MS).routing
    assert (routing.target, routing.retries, routing.failovers) == ("haiku", 0, 1)
