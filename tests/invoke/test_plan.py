"""The failover plan alone: a FakeClock, a router's snapshot, no I/O."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

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
    router: Router,
    clock: FakeClock,
    budget_ms: float | None,
    request_class: str = "chat",
    **kwargs: object,
) -> FailoverPlan:
    deadline = None if budget_ms is None else Deadline.after(budget_ms, clock)
    decision = router.choose(request_class)
    return FailoverPlan(
        decision,
        now_ns=clock(),
        deadline=deadline,
        snapshot=router.snapshot,
        **kwargs,  # type: ignore[arg-type]
    )


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
    with pytest.raises(ValueError, match=r"^per_class.manga expected a number < 1, got 1.2"):
        HedgePolicy(per_class={"manga": 1.2})
    with pytest.raises(ValueError, match=r"^per_class.chat expected a number > 0, got 0"):
        HedgePolicy(per_class={"chat": 0.0})
    with pytest.raises(ValueError, match=r"hedge\.per_class: class names must be text, got ''"):
        HedgePolicy(per_class={"": 0.5})


PER_CLASS = HedgePolicy(
    after_fraction=None, max_ratio=1.0, per_class={"chat": 0.25, "manga": 0.6, "solo": None}
)


@pytest.mark.parametrize(
    ("request_class", "after_ms"),
    [("chat", 250), ("manga", 600), ("solo", None), ("profile", None)],
)
def test_each_class_hedges_at_its_own_delay(
    clock: FakeClock, request_class: str, after_ms: int | None
) -> None:
    """chat at 25 % of the budget, manga at 60 %; solo is off and profile, not listed, takes
    the general ``after_fraction`` - None here: no hedge."""
    router = make_router(clock)
    budget = HedgeBudget(PER_CLASS)
    plan = plan_for(router, clock, 1000, request_class, hedge=PER_CLASS, hedge_budget=budget)
    if after_ms is None:
        assert plan.hedge_at_ns is None
        return
    assert plan.hedge_at_ns == clock() + after_ms * 1_000_000
    plan.start()
    clock.advance(ms=after_ms)
    hedge = plan.hedge(clock())
    assert hedge is not None and hedge.kind is AttemptKind.HEDGE
    assert hedge.started_ns == clock() and budget.hedges == 1


def test_a_class_not_listed_takes_the_general_delay(clock: FakeClock) -> None:
    policy = HedgePolicy(after_fraction=0.5, per_class={"chat": 0.25})
    router = make_router(clock)
    budget = HedgeBudget(policy)
    assert policy.after_fraction_for("profile") == 0.5
    plan = plan_for(router, clock, 800, "profile", hedge=policy, hedge_budget=budget)
    assert plan.hedge_at_ns == clock() + 400_000_000
    assert HedgePolicy(after_fraction=None).hedges_any is False
    assert HedgePolicy(after_fraction=None, per_class={"chat": None}).hedges_any is False
    assert policy.hedges_any is True


@given(
    fraction=st.floats(min_value=0.001, max_value=0.999),
    budget_ms=st.integers(min_value=1, max_value=60_000),
)
def test_the_hedge_time_is_the_class_fraction_of_the_budget(
    fraction: float, budget_ms: int
) -> None:
    clock = FakeClock(10**12)
    router = make_router(clock)
    policy = HedgePolicy(after_fraction=0.5, per_class={"chat": fraction})
    plan = plan_for(router, clock, budget_ms, hedge=policy, hedge_budget=HedgeBudget(policy))
    assert plan.hedge_at_ns == clock() + round(fraction * budget_ms * 1_000_000)


def test_a_full_outage_hedges_at_most_max_ratio_of_calls(clock: FakeClock) -> None:
    """Every primary hangs and every call wants a hedge: the budget grants 5 % of the calls
    in its window, at every moment, and no more over the whole run."""
    router = make_router(clock)
    policy = HedgePolicy(after_fraction=None, per_class={"chat": 0.2}, max_ratio=0.05, window=200)
    budget = HedgeBudget(policy)
    hedges = 0
    for call in range(1, 1001):
        plan = plan_for(router, clock, 1000, hedge=policy, hedge_budget=budget)
        plan.start()
        clock.advance(ms=200)
        hedges += plan.hedge(clock()) is not None
        assert budget.hedges <= 0.05 * budget.calls
        assert hedges <= 0.05 * call + 1
        plan.abandon_running(clock(), "timeout")
        clock.advance(ms=800)
    assert hedges == 50
