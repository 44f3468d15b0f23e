"""The failover plan of one routed call: which target each attempt goes to, decided without I/O.

The drivers (sync inline, thread-pool for hedging, asyncio) only run attempts and report how
they ended; every choice is made here, from the decision, the deadline, a fresh snapshot and
the failover rules - so the same plan serves every driver, and a test drives it with a fake
clock alone (tenacity's split between ``BaseRetrying.iter`` and its sync/async callers).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from mangaroute.core.breaker import BreakerState
from mangaroute.core.clock import NS_PER_MS
from mangaroute.core.decision import Decision
from mangaroute.core.outcome import Outcome
from mangaroute.core.snapshot import Snapshot
from mangaroute.core.targets import Target
from mangaroute.invoke.deadline import Deadline
from mangaroute.invoke.errors import DeadlineExceeded, FailoverExhausted
from mangaroute.invoke.hedging import HedgeBudget, HedgePolicy
from mangaroute.invoke.result import Attempt, AttemptKind, RoutingResult
from mangaroute.invoke.retry import RetryBudget, RetryPolicy
from mangaroute.invoke.rules import Failure, Verdict

__all__ = ["FIT_PERCENTILES", "FailoverPlan", "Launch"]

FIT_PERCENTILES = ("p50", "p90", "p99")
"""Which predicted percentile a fallback's latency must fit in the remaining budget."""


@dataclass(slots=True)
class Launch:
    """Start attempt ``index`` on ``target``, answering by ``deadline_ns`` (or whenever).

    Read-only by convention: not ``frozen``, because a frozen dataclass costs several
    times as much to build and the simulator builds one per attempt, millions a day."""

    index: int
    target: Target
    kind: AttemptKind
    started_ns: int
    """When the attempt may start: when the plan launched it, or after a retry's backoff
    (the attempt itself may start later still: a busy executor)."""
    deadline_ns: int | None
    nth: int = 0
    """Earlier attempts of this call on the same target (a retry's is 1 or more)."""


_Ended = tuple[str, str | None, int, int, float | None]
"""How an attempt ended, kept raw until a result is asked for: (outcome, error code, start
ns, end ns, ttft ms)."""


class FailoverPlan:
    """Decides the attempts of one routed call.

    * :meth:`start` - the decision's target (``DeadlineExceeded`` if no time is left);
    * :meth:`failed` - apply the failover rules to a failed attempt: re-raise it unchanged,
      or return the next fallback whose predicted latency fits the remaining budget, or
      ``None`` while another attempt is still running, or raise ``DeadlineExceeded`` /
      ``FailoverExhausted`` (caused by the failed attempt's exception);
    * :meth:`hedge` - at ``hedge_at_ns`` (the hedge policy's delay for the decision's request
      class; ``None`` when that class is not hedged), the first fitting fallback if the hedge
      budget allows one;
    * :meth:`succeeded` - the routing result, marking attempts still running as losers
      (:meth:`answered` does the same without building the result).

    With a :class:`~mangaroute.invoke.retry.RetryPolicy` and its budget, a fast failure (an
    error or a throttle within ``fast_fraction`` of the budget) may be retried: an error on
    the same target first when the target's observed error rate is below
    ``same_target_below`` (its errors look random), otherwise the next fallback first and the
    same target only when no fallback fits; after a jittered backoff, when the target's
    predicted latency still fits, and only while the retry budget has room.

    Fallbacks are tried in the decision's order, those whose breaker opened since the
    decision last; a fallback fits when its predicted latency (``fit`` percentile of the
    snapshot; time to first token for streams, once observed) is within the budget left.
    Not thread-safe: one plan belongs to one call and its driver. ``streaming`` says
    whether the call is a stream (its drivers read it: a stream's losers are cancelled).

    Most calls are one attempt that answers, so that path allocates little: the fallback
    queue is copied from the decision only when a fallback is looked for, and how attempts
    ended is kept as raw tuples (beside the launches, ``None`` while running) until
    :meth:`result` builds the :class:`Attempt` records.
    """

    __slots__ = (
        "_budget_ms",
        "_deadline",
        "_ended",
        "_fit",
        "_hedge_budget",
        "_jitter",
        "_launches",
        "_live",
        "_model_errors",
        "_queue",
        "_retries",
        "_retry",
        "_retry_budget",
        "_snapshot",
        "_start_ns",
        "decision",
        "hedge_at_ns",
        "streaming",
    )

    def __init__(
        self,
        decision: Decision,
        *,
        now_ns: int,
        deadline: Deadline | None,
        snapshot: Callable[[], Snapshot],
        fit: str = "p50",
        streaming: bool = False,
        hedge: HedgePolicy | None = None,
        hedge_budget: HedgeBudget | None = None,
        retry: RetryPolicy | None = None,
        retry_budget: RetryBudget | None = None,
        jitter: Callable[[], float] | None = None,
    ) -> None:
        if fit not in FIT_PERCENTILES:
            raise ValueError(f"fit must be one of {FIT_PERCENTILES}, got {fit!r}")
        self.decision = decision
        self._start_ns = now_ns
        self._deadline = deadline
        self._budget_ms = None if deadline is None else (deadline.at_ns - now_ns) / NS_PER_MS
        self._snapshot = snapshot
        self._fit = fit
        self.streaming = streaming
        self._queue: list[Target] | None = None
        self._launches: list[Launch] = []
        self._ended: list[_Ended | None] = []
        self._live = 0
        self._model_errors = 0
        self._hedge_budget = hedge_budget
        self._retry = retry if retry_budget is not None else None
        self._retry_budget = retry_budget
        self._jitter = jitter
        self._retries = 0
        self.hedge_at_ns: int | None = None
        if hedge is not None and hedge_budget is not None and self._budget_ms is not None:
            after = hedge.after_fraction_for(decision.request_class)
            if after is not None:
                self.hedge_at_ns = now_ns + round(after * self._budget_ms * NS_PER_MS)

    # -- the driver's calls ---------------------------------------------------------------

    def start(self) -> Launch:
        if self._budget_ms is not None and self._budget_ms <= 0:
            raise DeadlineExceeded(
                "the deadline had passed before the first attempt", self.result()
            )
        if self._hedge_budget is not None:
            self._hedge_budget.count_call()
        if self._retry_budget is not None:
            self._retry_budget.count_call()
        return self._launch(self.decision.target, AttemptKind.PRIMARY, self._start_ns)

    def failed(
        self,
        launch: Launch,
        failure: Failure,
        error: BaseException,
        now_ns: int,
        *,
        started_ns: int | None = None,
    ) -> Launch | None:
        outcome = "skipped" if failure.verdict is Verdict.SKIP else failure.outcome.value
        self._finish(launch, outcome, failure.error_code, now_ns, None, started_ns)
        if launch.kind is AttemptKind.PRIMARY:
            self.hedge_at_ns = None  # a hedge races a slow primary, not a failover
        if failure.verdict is Verdict.RAISE:
            self.abandon_running(now_ns)
            raise error
        if failure.verdict is Verdict.MODEL_ERROR:
            self._model_errors += 1
            if self._model_errors > 1:
                self.abandon_running(now_ns)
                why = "a second model error (a model error fails over once)"
                raise FailoverExhausted(why, self.result(now_ns=now_ns)) from error
        if self._live:
            return None
        retry = self._retry
        if retry is not None and failure.verdict is Verdict.FAILOVER:
            same = self._retry_launch(retry, launch, failure, now_ns, last_resort=False)
            if same is not None:
                return same
        try:
            return self._next(now_ns)
        except FailoverExhausted as stop:
            if retry is not None and failure.verdict is Verdict.FAILOVER:
                same = self._retry_launch(retry, launch, failure, now_ns, last_resort=True)
                if same is not None:
                    return same
            raise stop from error

    def hedge(self, now_ns: int) -> Launch | None:
        """Called at ``hedge_at_ns``: start the first fitting fallback beside the primary."""
        self.hedge_at_ns = None
        if not self._live or self._hedge_budget is None:
            return None
        target = self._fitting_fallback(now_ns)
        if target is None or not self._hedge_budget.try_spend():
            return None
        self._take(target)
        return self._launch(target, AttemptKind.HEDGE, now_ns)

    def succeeded(
        self,
        launch: Launch,
        now_ns: int,
        ttft_ms: float | None = None,
        *,
        losers: str,
        started_ns: int | None = None,
    ) -> RoutingResult:
        """The call's answer came from ``launch``; attempts still running become ``losers``
        (``"cancelled"`` or ``"abandoned"``)."""
        self.answered(launch, now_ns, ttft_ms, losers=losers, started_ns=started_ns)
        return self.result(launch.target.name, now_ns)

    def answered(
        self,
        launch: Launch,
        now_ns: int,
        ttft_ms: float | None = None,
        *,
        losers: str,
        started_ns: int | None = None,
    ) -> None:
        """:meth:`succeeded` without building the result (a driver that only needs the
        winner - the simulator - skips that cost)."""
        self._finish(launch, "ok", None, now_ns, ttft_ms, started_ns)
        if self._live:
            for loser in self.running:
                self._finish(loser, losers, None, now_ns, None)

    def abandon_running(self, now_ns: int, outcome: str = "abandoned") -> tuple[Launch, ...]:
        """Mark every running attempt as ``outcome`` (the call is ending without them)."""
        running = self.running
        for launch in running:
            self._finish(launch, outcome, None, now_ns, None)
        return running

    @property
    def running(self) -> tuple[Launch, ...]:
        """Attempts launched and not yet ended, in launch order."""
        ended = self._ended
        return tuple(launch for launch in self._launches if ended[launch.index] is None)

    @property
    def launches(self) -> int:
        """Attempts launched so far."""
        return len(self._launches)

    def result(self, target: str | None = None, now_ns: int | None = None) -> RoutingResult:
        end_ns = now_ns if now_ns is not None else self._last_ns()
        decision = self.decision
        return RoutingResult(
            decision_id=decision.decision_id,
            request_class=decision.request_class,
            reason=decision.reason,
            attempts=tuple(
                self._attempt(launch, ended)
                for launch, ended in zip(self._launches, self._ended, strict=True)
                if ended is not None
            ),
            target=target,
            latency_ms=(end_ns - self._start_ns) / NS_PER_MS,
            budget_ms=self._budget_ms,
        )

    # -- internals ------------------------------------------------------------------------

    def _launch(self, target: Target, kind: AttemptKind, now_ns: int, nth: int = 0) -> Launch:
        deadline = self._deadline
        launches = self._launches
        launch = Launch(
            len(launches), target, kind, now_ns, None if deadline is None else deadline.at_ns, nth
        )
        launches.append(launch)
        self._ended.append(None)
        self._live += 1
        return launch

    def _finish(
        self,
        launch: Launch,
        outcome: str,
        code: str | None,
        now_ns: int,
        ttft_ms: float | None,
        started_ns: int | None = None,
    ) -> None:
        ended = self._ended
        index = launch.index
        if ended[index] is None:
            self._live -= 1
        start = launch.started_ns if started_ns is None else started_ns
        ended[index] = (outcome, code, start, now_ns, ttft_ms)

    def _attempt(self, launch: Launch, ended: _Ended) -> Attempt:
        outcome, code, start, end, ttft_ms = ended
        target = launch.target
        return Attempt(
            target=target.name,
            model_id=target.model_id,
            pattern=target.pattern.value,
            kind=launch.kind,
            outcome=outcome,
            error_code=code,
            started_ms=(start - self._start_ns) / NS_PER_MS,
            latency_ms=max(0.0, (end - start) / NS_PER_MS),
            ttft_ms=ttft_ms,
        )

    def _last_ns(self) -> int:
        ends = [max(e[2], e[3]) for e in self._ended if e is not None]
        return max(ends) if ends else self._start_ns

    def _predicted_ms(self, snapshot: Snapshot, target: Target) -> tuple[float, bool]:
        """(predicted latency, breaker open) of a fallback, from a fresh snapshot."""
        try:
            view = snapshot.target(target.name)
        except KeyError:
            return target.prior.p50_ms, False
        if self.streaming and not math.isnan(view.ttft_p50_ms):
            predicted = view.ttft_p50_ms if self._fit == "p50" else view.ttft_p99_ms
        else:
            predicted = getattr(view, f"{self._fit}_ms")
        return predicted, view.breaker is BreakerState.OPEN

    def _fallbacks(self) -> list[Target]:
        queue = self._queue
        if queue is None:
            queue = self._queue = list(self.decision.fallbacks)
        return queue

    def _take(self, target: Target) -> None:
        self._fallbacks().remove(target)

    def _fitting_fallback(self, now_ns: int) -> Target | None:
        remaining = math.inf if self._deadline is None else self._deadline.remaining_ms(now_ns)
        queue = self._fallbacks()
        if remaining <= 0 or not queue:
            return None
        snapshot = self._snapshot()
        fitting: list[tuple[bool, int, Target]] = []
        for order, target in enumerate(queue):
            predicted, is_open = self._predicted_ms(snapshot, target)
            if predicted <= remaining:
                fitting.append((is_open, order, target))
        return min(fitting, key=lambda item: item[:2])[2] if fitting else None

    def _retry_launch(
        self,
        retry: RetryPolicy,
        failed: Launch,
        failure: Failure,
        now_ns: int,
        *,
        last_resort: bool,
    ) -> Launch | None:
        """A retry of ``failed``'s target, if the policy, the budget left and the retry
        budget allow one (see the class docstring)."""
        outcome = failure.outcome
        if outcome is not Outcome.ERROR and outcome is not Outcome.THROTTLED:
            return None  # a timeout is not fast; anything else is not retried
        if not last_resort and outcome is Outcome.THROTTLED:
            return None  # a throttle is capacity, not chance: the next fallback first
        if self._retries >= retry.retries_for(self.decision.request_class):
            return None
        budget_ms = self._budget_ms
        elapsed_ms = (now_ns - self._start_ns) / NS_PER_MS
        if budget_ms is not None and elapsed_ms > retry.fast_fraction * budget_ms:
            return None
        target = failed.target
        snapshot = self._snapshot()
        predicted, is_open = self._predicted_ms(snapshot, target)
        if is_open:
            return None
        if not last_resort and _error_rate(snapshot, target, retry) >= retry.same_target_below:
            return None
        jitter = self._jitter() if self._jitter is not None else 0.5
        backoff_ns = round(jitter * retry.backoff_bound_ms(self._retries + 1) * NS_PER_MS)
        at_ns = now_ns + backoff_ns
        if self._deadline is not None and predicted > self._deadline.remaining_ms(at_ns):
            return None
        assert self._retry_budget is not None
        if not self._retry_budget.try_spend():
            return None
        self._retries += 1
        nth = sum(1 for launch in self._launches if launch.target is target)
        return self._launch(target, AttemptKind.RETRY, at_ns, nth)

    @property
    def retries(self) -> int:
        """Retries this call has made."""
        return self._retries

    def _next(self, now_ns: int) -> Launch:
        target = self._fitting_fallback(now_ns)
        if target is None:
            raise self._stop(now_ns)
        self._take(target)
        return self._launch(target, AttemptKind.FAILOVER, now_ns)

    def _stop(self, now_ns: int) -> FailoverExhausted:
        queue = self._fallbacks()
        if not queue:
            return FailoverExhausted("no fallback left", self.result(now_ns=now_ns))
        assert self._deadline is not None  # without a deadline every fallback fits
        remaining = self._deadline.remaining_ms(now_ns)
        if remaining <= 0:
            why = f"the {self._budget_ms:.0f} ms budget ran out"
        else:
            names = ", ".join(t.name for t in queue)
            why = f"{remaining:.0f} ms left fits no fallback's predicted {self._fit} ({names})"
        return DeadlineExceeded(why, self.result(now_ns=now_ns))


def _error_rate(snapshot: Snapshot, target: Target, retry: RetryPolicy) -> float:
    """The target's observed error rate: 0 (errors look random) for a target the snapshot
    does not know or with fewer than ``retry.evidence_calls`` calls in its window."""
    try:
        view = snapshot.target(target.name)
    except KeyError:
        return 0.0
    return view.error_rate if view.requests >= retry.evidence_calls else 0.0
