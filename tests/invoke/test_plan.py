"""The failover plan alone: a FakeClock, a router's snapshot, no I/O."""

from __future__ import annotations

import pytest

from mangaroute import FakeClock, Outcome, Router
from mangaroute.invoke import (
    AttemptKind,
    Deadline,
    DeadlineExceeded,
    FailoverExhausted,
    Failure,
    HedgeBudget,
    HedgePolicy,
    Verdict,
)
from mangaroute.invoke.plan import FailoverPlan
from tests.invoke.support import make_router

UNAVAILABLE = Failure(Verdict.FAILOVER, Outcome.ERROR, "ServiceUnavailableException")
MODEL_ERROR = Failure(Verdict.MODEL_ERROR, Outcome.ERROR, "ModelErrorException")


def plan_for(
    router: Router, clock: FakeClock, budget_ms: float | None, **kwargs: object
) -> FailoverPlan:
    deadline = None if budget_ms is None else Deadline.after(budget_ms, clock)
    decision = router.choose("chat")
    return FailoverPlan(
        decision, now_ns=clock(), deadline=deadline, snapshot=router.snapshot, **kwargs
    )  # type: ignore[arg-type]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(10**12)


def test_fails_over_in_the_decisions_order(clock: FakeClock) -> None:
    router = make_router(clock)
    plan = plan_for(router, clock, None)
    first = plan.start()
    assert (first.target.name, first.kind) == ("primary", AttemptKind.PRIMARY)
    clock.advance(ms=20)
    second = plan.failed(first, UNAVAILABLE, RuntimeError("x"), clock())
    assert second is not None and second.target.name == "haiku"
    assert second.kind is AttemptKind.FAILOVER
    clock.advance(ms=30)
    result = plan.succeeded(second, clock(), losers="abandoned")
    assert result.target == "haiku" and result.failovers == 1
    assert [(a.target, a.outcome, a.latency_ms) for a in result.attempts] == [
        ("primary", "error", 20.0),
        ("haiku", "ok", 30.0),
    ]
    assert result.attempts[1].started_ms == 20.0


def test_a_fallback_must_fit_the_remaining_budget(clock: FakeClock) -> None:
    router = make_router(clock)
    plan = plan_for(router, clock, 1000)
    first = plan.start()
    clock.advance(ms=650)  # 350 ms left: haiku (p50 300) fits, profile (p50 600) does not
    second = plan.failed(first, UNAVAILABLE, RuntimeError("x"), clock())
    assert second is not None and second.target.name == "haiku"
    clock.advance(ms=100)  # 250 ms left: profile does not fit
    cause = RuntimeError("haiku down")
    with pytest.raises(DeadlineExceeded) as caught:
        plan.failed(second, UNAVAILABLE, cause, clock())
    error = caught.value
    assert "250 ms left fits no fallback's predicted p50 (profile)" in str(error)
    assert error.__cause__ is cause
    assert [a.target for a in error.attempts] == ["primary", "haiku"]
    assert isinstance(error, TimeoutError) and isinstance(error, FailoverExhausted)


def test_p99_fit_is_stricter(clock: FakeClock) -> None:
    router = make_router(clock)
    plan = plan_for(router, clock, 1000, fit="p99")
    first = plan.start()
    clock.advance(ms=100)  # 900 ms left: haiku p99 800 fits; at 850 ms it would not
    assert plan.failed(first, UNAVAILABLE, RuntimeError(), clock()).target.name == "haiku"  # type: ignore[union-attr]
    plan = plan_for(router, clock, 1000, fit="p99")
    first = plan.start()
    clock.advance(ms=250)
    with pytest.raises(DeadlineExceeded):
        plan.failed(first, UNAVAILABLE, RuntimeError(), clock())


def test_an_expired_deadline_stops_before_the_first_attempt(clock: FakeClock) -> None:
    router = make_router(clock)
    plan = plan_for(router, clock, 0)
    with pytest.raises(DeadlineExceeded) as caught:
        plan.start()
    assert caught.value.attempts == ()


def test_no_fallback_left_is_not_a_deadline_error(clock: FakeClock) -> None:
    router = make_router(clock)
    plan = FailoverPlan(
        router.choose("solo"), now_ns=clock(), deadline=None, snapshot=router.snapshot
    )
    first = plan.start()
    with pytest.raises(FailoverExhausted) as caught:
        plan.failed(first, UNAVAILABLE, RuntimeError(), clock())
    assert type(caught.value) is FailoverExhausted
    assert "no fallback left" in str(caught.value)


def test_a_model_error_fails_over_once(clock: FakeClock) -> None:
    router = make_router(clock)
    plan = plan_for(router, clock, None)
    first = plan.start()
    second = plan.failed(first, MODEL_ERROR, RuntimeError(), clock())
    assert second is not None
    with pytest.raises(FailoverExhausted, match="second model error"):
        plan.failed(second, MODEL_ERROR, RuntimeError(), clock())


def test_raise_gives_back_the_same_exception(clock: FakeClock) -> None:
    router = make_router(clock)
    plan = plan_for(router, clock, None)
    first = plan.start()
    error = ValueError("bad request")
    with pytest.raises(ValueError) as caught:
        plan.failed(first, Failure(Verdict.RAISE, Outcome.ERROR, "ValidationException"), error, 0)
    assert caught.value is error


def test_targets_whose_breaker_opened_are_tried_last(clock: FakeClock) -> None:
    router = make_router(clock)
    plan = plan_for(router, clock, None)
    first = plan.start()
    router.eject("haiku", "test")
    second = plan.failed(first, UNAVAILABLE, RuntimeError(), clock())
    assert second is not None and second.target.name == "profile"
    third = plan.failed(second, UNAVAILABLE, RuntimeError(), clock())
    assert third is not None and third.target.name == "haiku"


def test_hedge_waits_for_its_time_and_spends_the_budget(clock: FakeClock) -> None:
    router = make_router(clock)
    policy = HedgePolicy(after_fraction=0.25, max_ratio=1.0, window=10)
    budget = HedgeBudget(policy)
    plan = plan_for(router, clock, 1000, hedge=policy, hedge_budget=budget)
    assert plan.hedge_at_ns == clock() + 250_000_000
    primary = plan.start()
    clock.advance(ms=250)
    hedge = plan.hedge(clock())
    assert hedge is not None and (hedge.target.name, hedge.kind) == ("haiku", AttemptKind.HEDGE)
    assert plan.hedge_at_ns is None and budget.hedges == 1
    assert plan.failed(primary, UNAVAILABLE, RuntimeError(), clock()) is None  # hedge running
    result = plan.succeeded(hedge, clock(), losers="cancelled")
    assert result.hedged and result.target == "haiku"


def test_the_hedge_budget_holds_its_ratio_over_the_window() -> None:
    budget = HedgeBudget(HedgePolicy(max_ratio=0.05, window=200))
    granted = 0
    for _ in range(1000):
        budget.count_call()
        granted += budget.try_spend()
        assert budget.hedges <= 0.05 * budget.calls
    assert granted == pytest.approx(50, abs=10)
    assert not HedgeBudget(HedgePolicy(max_ratio=0.0)).try_spend()


def test_hedge_policy_is_validated() -> None:
    with pytest.raises(ValueError, match="after_fraction"):
        HedgePolicy(after_fraction=1.5)
    with pytest.raises(ValueError, match="window"):
        HedgePolicy(window=0)
