"""The simulated orchestrator: ``mangaroute.invoke``'s failover plan, driven in virtual time.

Production runs a routed call as a :class:`~mangaroute.invoke.plan.FailoverPlan` (which
target each attempt goes to, the failover rules, the deadline, hedging) and a driver that
runs the attempts with boto3 (:mod:`mangaroute.invoke.drivers`). Here the same plan is driven
by events on the simulation's heap instead of threads and sockets:

* a message arrives: ``Router.choose`` with the budget left and what production knows of the
  answer's length (``max_tokens`` where the traffic has it, else the class's estimate - never
  the realised length), then ``FailoverPlan(...).start()``;
* an attempt starts: the simulated target (:meth:`SimTarget.attempt`) says how it would end;
  its end is an event. An attempt whose answer (or error) would come after the call's
  deadline ends *at* the deadline as a read timeout (production's socket read timeout is
  the time left, ``Launch.deadline_ns``), classified like botocore's ``ReadTimeoutError``;
* an attempt ends: its outcome goes to ``Router.record`` as ``AttemptRunner`` records it (the
  decision for the primary, the target's name for fallbacks and hedges; a failure the rules
  mark unrecorded is released), an ejecting error ejects the target, and the plan decides
  what the call does next (:meth:`FailoverPlan.failed`, :meth:`FailoverPlan.answered`);
  a simulated error code is classified by the same rules table as a real one
  (:func:`~mangaroute.invoke.rules.failure_of_code`);
* ``hedge_at_ns`` arrives while the primary runs: :meth:`FailoverPlan.hedge` may start a
  fallback beside it; the first answer wins, the loser is abandoned - it keeps running, is
  recorded and billed when it lands, as a blocking boto3 call is.

Every attempt the target admitted is told to the target when it ends
(:meth:`SimTarget.finished`) and billed (the model generated the tokens whether or not
anyone still waited for them).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Sequence
from typing import Any

from botocore.exceptions import ReadTimeoutError

from mangaroute.config import Table
from mangaroute.core.clock import NS_PER_MS
from mangaroute.core.decision import Decision
from mangaroute.core.outcome import OK, TIMEOUT, Outcome
from mangaroute.core.router import Router
from mangaroute.core.snapshot import Snapshot
from mangaroute.invoke.client import InvokeSettings
from mangaroute.invoke.deadline import Deadline
from mangaroute.invoke.errors import FailoverExhausted
from mangaroute.invoke.hedging import HedgeBudget, HedgePolicy
from mangaroute.invoke.plan import FailoverPlan, Launch
from mangaroute.invoke.result import AttemptKind
from mangaroute.invoke.retry import RetryBudget, RetryPolicy
from mangaroute.invoke.rules import Failure, Verdict, classify_failure, failure_of_code
from mangaroute.simulate.fleet import Fleet, SimTarget
from mangaroute.simulate.traffic import Traffic

__all__ = [
    "DEFAULT_OUTPUT_ESTIMATE",
    "Orchestrator",
    "SimulatedError",
    "due_snapshot",
    "invoke_settings",
    "output_estimates",
    "read_output_estimate",
]

DEFAULT_OUTPUT_ESTIMATE = 300
"""Output tokens the router is told to expect when a class has no estimate: the seed's
"about 300 output tokens a message" (section 2.1)."""

READ_TIMEOUT: Failure = classify_failure(ReadTimeoutError(endpoint_url="simulated"))
"""What the rules make of an attempt still running at the call's deadline."""

_PRIMARY = AttemptKind.PRIMARY
_EJECT = Verdict.EJECT
_OK_OUTCOME = Outcome.OK
MINUTE_NS = 60_000_000_000


class SimulatedError(Exception):
    """A simulated target's error, as the plan re-raises it when the rules say "raise"."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def output_estimates(classes: Sequence[str], estimates: dict[str, int] | None) -> tuple[int, ...]:
    """Per class (by index), the output tokens the router is told to expect."""
    estimates = estimates or {}
    values = tuple(int(estimates.get(name, DEFAULT_OUTPUT_ESTIMATE)) for name in classes)
    bad = [name for name, value in zip(classes, values, strict=True) if value < 0]
    if bad:
        raise ValueError(f"output estimate of class {bad[0]!r} must be >= 0")
    return values


def due_snapshot(router: Router) -> Callable[[], Snapshot]:
    """The snapshot a plan looks its fallbacks up in: the one ``choose()`` reads, rebuilt
    first when it is due (``refresh_ms`` old), as ``choose()`` itself does; a breaker that
    changed state has rebuilt it already. ``RoutedClient`` hands the plan ``Router.snapshot``
    (a rebuild at every failover): with production's ``refresh_ms`` of 5 ms the two views
    differ by at most 5 ms of records; at the simulator's 2 s of virtual time, a rebuild per
    failover took more than half the run time of a policy that fails over often (a throttled
    day's ``seed-hybrid``: 22,839 rebuilds in half an hour of peak)."""
    refresh_ns = round(router.config.window.refresh_ms * NS_PER_MS)
    clock = router.clock

    def snapshot() -> Snapshot:
        current = router.current_snapshot
        if clock() - current.built_ns < refresh_ns:
            return current
        return router.snapshot()

    return snapshot


def invoke_settings(table: Table) -> InvokeSettings:
    """A contender's ``[contenders.NAME.invoke]``: its routed calls' settings, as
    ``RoutedClient`` takes them (``InvokeSettings``) - ``fit``, ``eject_cooldown_s``, hedging
    and retries. The ranges are the settings' own (docs/limits.md).

    Hedging: without a ``hedge`` key, ``InvokeSettings()``'s default (off today);
    ``hedge = "off"`` says off whatever the default; a
    ``[...invoke.hedge]`` table is a :class:`HedgePolicy` (``after_fraction`` - a fraction or
    ``"off"`` -, ``max_ratio``, ``window``) with ``[...hedge.per_class]`` delays per request
    class (a fraction or ``"off"``). Retries: a ``[...invoke.retry]`` table
    (:class:`RetryPolicy`'s fields, with ``[...retry.per_class]`` retries per request class;
    off without one)."""
    default = InvokeSettings()
    fit = table.text("fit", default.fit)
    eject = table.number(
        "eject_cooldown_s", default.eject_cooldown_s, limit="invoke.eject_cooldown_s"
    )
    hedge = _hedge(table, default.hedge)
    retry: RetryPolicy | None = None
    if "retry" in table.data:
        retrying = table.table("retry", limits="retry")
        counts = retrying.numbers(RetryPolicy())
        per_class = retrying.table("per_class")
        classes = {name: per_class.integer(name) for name in list(per_class.data)}
        retrying.finish()
        retry = retrying.build("", lambda: RetryPolicy(**counts, per_class=classes))
    return table.finish_with(
        lambda: InvokeSettings(fit=fit, eject_cooldown_s=eject, hedge=hedge, retry=retry),
        name="fit",
    )


OFF = "off"
"""What turns hedging (or one class's hedge) off in a scenario file."""


def _hedge(table: Table, default: HedgePolicy | None) -> HedgePolicy | None:
    """``[...invoke] hedge``: absent (``default``), ``"off"``, or a table (see above)."""
    if "hedge" not in table.data:
        return default
    if not isinstance(table.data["hedge"], dict):
        value = table.data["hedge"]
        if value != OFF:
            raise table.error("hedge", f'expected "{OFF}" or a table, got {value!r}')
        table.text("hedge")
        return None
    hedging = table.table("hedge", limits="hedge")
    base = HedgePolicy()
    after = _fraction_or_off(hedging, "after_fraction", base.after_fraction)
    ratio = hedging.number("max_ratio", base.max_ratio)
    window = hedging.integer("window", base.window)
    per_class = hedging.table("per_class")
    fractions = {
        name: _fraction_or_off(per_class, name, None, "hedge.after_fraction")
        for name in list(per_class.data)
    }
    per_class.finish()
    hedging.finish()
    return hedging.build(
        "",
        lambda: HedgePolicy(
            after_fraction=after, max_ratio=ratio, window=window, per_class=fractions
        ),
    )


def _fraction_or_off(
    table: Table, name: str, default: float | None, limit: str | None = None
) -> float | None:
    """A hedge delay: a fraction of the budget (checked against ``limit``), or ``"off"``."""
    if table.data.get(name) == OFF:
        table.text(name)
        return None
    value: float | None = table.number(name, default, limit=limit)
    return value


def read_output_estimate(table: Table, classes: Sequence[str]) -> dict[str, int]:
    """A scenario's ``[output_estimate]``: per request class, the output tokens the router is
    told to expect (what production passes as ``output_tokens`` when a request has no
    ``max_tokens``); classes not named get :data:`DEFAULT_OUTPUT_ESTIMATE`."""
    estimates = {}
    for name in list(table.data):
        if name not in classes:
            raise table.error(name, f"is not a traffic class ({', '.join(classes)})")
        estimates[name] = int(table.integer(name))
    table.finish()
    return estimates


class _Call:
    """One message's routed call while it runs; ``plan`` is None once the call is over."""

    __slots__ = ("arrival", "decision", "i", "plan", "router")

    def __init__(self, i: int, arrival: int, router: Router, decision: Decision) -> None:
        self.i = i
        self.arrival = arrival
        self.router = router
        self.decision = decision
        self.plan: FailoverPlan | None = None


Event = tuple[Any, ...]
"""``(at_ns, key, call, launch, sim, code, latency_ms, ttft_ms, error, admitted, stage)``; a
hedge timer has ``launch`` None. ``key`` orders events at the same instant: by message, then
by attempt (``message * _KEYS + attempt``; a stream's full answer ``+ _FULL_KEY``; a hedge
timer ``message * _KEYS + _HEDGE_KEY``). ``stage`` is :data:`_ENDS` for an attempt's end (a
stream's: its first token), :data:`_FULL` for a stream's whole answer."""
_KEYS = 128
_FULL_KEY = 64
_HEDGE_KEY = 127
"""A call has at most one attempt per target; a router has far fewer than 63 targets."""
_ENDS, _FULL = 0, 1


class Orchestrator:
    """Runs every message of a day as a routed call; see the module docstring.

    ``arrive`` starts a message's call; ``settle`` handles the next event of :attr:`heap`
    (the engine interleaves the two in time order and moves the clock). ``answered`` and
    ``failed`` are called with the message index and, for an answer, the winning target, the
    inference time and the time to its first token (both in ms after arrival); what each
    attempt costs is added to ``usd`` in the ``bucket_ns`` bucket of its message's arrival.
    """

    def __init__(
        self,
        routers: Sequence[Router],
        owner: Sequence[int],
        fleet: Fleet,
        traffic: Traffic,
        *,
        budget_ms: float,
        settings: InvokeSettings,
        estimates: Sequence[int],
        answered: Callable[[int, SimTarget, float, float], None],
        failed: Callable[[int], None],
        usd: list[float],
        bucket_ns: int,
        start_ns: int,
        minutes: int,
        streaming: bool = False,
        jitter_seed: int = 0,
    ) -> None:
        self.routers = routers
        self.owner = owner
        self.by_name = fleet.by_name
        self.traffic = traffic
        self.budget_ms = budget_ms
        self.budget_ns = round(budget_ms * NS_PER_MS)
        self.settings = settings
        self.hedge = settings.hedge
        self.budgets = [
            HedgeBudget(settings.hedge) if settings.hedge is not None else None for _ in routers
        ]
        self.retry = settings.retry
        self.retry_budgets = [
            RetryBudget(settings.retry) if settings.retry is not None else None for _ in routers
        ]
        self.jitter = random.Random(jitter_seed).random
        """Backoff jitter: its own seeded stream, so retries never shift the day's draws."""
        self.max_tokens = traffic.max_tokens
        self.cached_tokens = traffic.cached_tokens
        self.estimates = estimates
        self.session_ids = [f"s{k}" for k in range(max(traffic.session, default=0) + 1)]
        self.on_answered = answered
        self.on_failed = failed
        self.usd = usd
        self.bucket_ns = bucket_ns
        self.time_ns = traffic.time_ns
        self.input_tokens = traffic.input_tokens
        self.output_tokens = traffic.output_tokens
        self.draw = traffic.draw
        self.heap: list[Event] = []
        self.fit = settings.fit
        self.classes = traffic.classes
        self.klass = traffic.klass
        self.session = traffic.session
        self.plain = traffic.max_tokens is None and traffic.cached_tokens is None
        """No per-message ``max_tokens`` or cached tokens: the targets' defaults apply."""
        self.streaming = streaming
        self.cancelled: set[int] = set()
        """Keys of stream attempts cancelled when another attempt's first token won."""
        """No per-message ``max_tokens`` or cached tokens: the targets' defaults apply."""
        self.counts = [0] * (4 * len(fleet.targets))
        """Attempts per (target, outcome code)."""
        self.failovers = 0
        self.fallback_attempts = 0
        self.start_ns = start_ns
        self.offered = [[0] * (minutes + 1) if sim.tok_rate else [] for sim in fleet.targets]
        self.failures: dict[str, Failure] = {}
        self.snapshots = [due_snapshot(router) for router in routers]

    # -- a message arrives ----------------------------------------------------------------

    def arrive(self, i: int, now: int) -> None:
        r = self.owner[i]
        router = self.routers[r]
        klass = self.klass[i]
        max_tokens = self.max_tokens
        expected = self.estimates[klass]
        if max_tokens is not None and max_tokens[i]:
            expected = max_tokens[i]
        decision = router.choose(
            self.classes[klass],
            session_id=self.session_ids[self.session[i]],
            budget_ms=self.budget_ms,
            input_tokens=self.input_tokens[i],
            output_tokens=expected,
            first_token=self.streaming,
        )
        call = _Call(i, now, router, decision)
        plan = call.plan = FailoverPlan(
            decision,
            now_ns=now,
            deadline=Deadline(now + self.budget_ns),
            snapshot=self.snapshots[r],
            fit=self.fit,
            streaming=self.streaming,
            hedge=self.hedge,
            hedge_budget=self.budgets[r],
            retry=self.retry,
            retry_budget=self.retry_budgets[r],
            jitter=self.jitter,
        )
        launch = plan.start()
        hedge_at = plan.hedge_at_ns
        if hedge_at is not None:
            key = i * _KEYS + _HEDGE_KEY
            hedge = (hedge_at, key, call, None, None, 0, 0.0, 0.0, None, False, _ENDS)
            heapq.heappush(self.heap, hedge)
        self._start(call, launch, now)

    def _start(self, call: _Call, launch: Launch, now: int) -> None:
        target = launch.target
        sim: SimTarget = self.by_name[target.name]
        i = call.i
        tin = self.input_tokens[i]
        tout = self.output_tokens[i]
        nth = launch.nth  # earlier attempts of this call on this target (a retry's > 0)
        now = max(now, launch.started_ns)  # a retry starts after its backoff
        if sim.tok_rate:
            self.offered[sim.index][(now - self.start_ns) // MINUTE_NS] += tin + tout
        if self.plain:
            code, latency, ttft, error = sim.attempt(now, self.draw[i], nth, tin, tout, True)
        else:
            max_tokens, cached = self._extra(i)
            code, latency, ttft, error = sim.attempt(
                now, self.draw[i], nth, tin, tout, True, max_tokens=max_tokens, cached_tokens=cached
            )
        admitted = code == OK
        end = now + int((ttft if admitted and self.streaming else latency) * NS_PER_MS)
        deadline = launch.deadline_ns
        if deadline is not None and end > deadline:
            end = deadline
            latency = (deadline - now) / NS_PER_MS
            code = TIMEOUT
        key = i * _KEYS + launch.index
        heapq.heappush(
            self.heap, (end, key, call, launch, sim, code, latency, ttft, error, admitted, _ENDS)
        )

    # -- an event ---------------------------------------------------------------------------

    def settle(self, event: Event) -> None:
        now, _, call, launch, sim, code, latency, ttft, error, admitted, stage = event
        if launch is None:
            self._hedge(call, now)
            return
        if stage == _FULL or (self.streaming and code != OK):
            self._stream(event)
            return
        if self.streaming:
            self._first_token(event)
            return
        self.counts[sim.index * 4 + code] += 1
        i = call.i
        tin = self.input_tokens[i]
        tout = self.output_tokens[i]
        if admitted:
            if self.plain:
                sim.finished(now, tin, tout, None, code)
                cost = sim.bill(tin, tout)
            else:
                max_tokens, cached = self._extra(i)
                sim.finished(now, tin, tout, max_tokens, code, cached_tokens=cached)
                cost = sim.bill(tin, tout, cached)
            self.usd[self.time_ns[i] // self.bucket_ns] += cost
        if code == OK:
            self._record_answer(call, launch, sim, latency, ttft, tin, tout)
            plan = call.plan
            if plan is None:
                return  # a losing attempt landed after the call was over
            plan.answered(launch, now, ttft, losers="abandoned")
            self._over(plan)
            call.plan = None
            self._score(call, launch, sim, now, ttft)
            return
        self._failed(call, launch, sim, now, latency, code, error)

    def _record_answer(
        self,
        call: _Call,
        launch: Launch,
        sim: SimTarget,
        latency: float,
        ttft: float,
        tin: int,
        tout: int,
    ) -> None:
        """An answer, recorded as ``AttemptRunner`` records it (the decision for the primary,
        the target's name for failovers and hedges)."""
        call.router.record(
            call.decision if launch.kind is _PRIMARY else sim.name,
            _OK_OUTCOME,
            latency_ms=latency,
            ttft_ms=ttft,
            input_tokens=tin,
            output_tokens=tout,
        )

    def _score(self, call: _Call, launch: Launch, sim: SimTarget, now: int, ttft: float) -> None:
        arrival = call.arrival
        first = (launch.started_ns - arrival) / NS_PER_MS + ttft
        self.on_answered(call.i, sim, (now - arrival) / NS_PER_MS, first)

    def _failed(
        self,
        call: _Call,
        launch: Launch,
        sim: SimTarget,
        now: int,
        latency: float,
        code: int,
        error: str | None,
    ) -> None:
        """An attempt failed: record it as ``AttemptRunner`` does, eject where the rules say,
        and let the plan decide what the call does next."""
        router = call.router
        subject = call.decision if launch.kind is _PRIMARY else sim.name
        failure = READ_TIMEOUT if code == TIMEOUT else self._failure(error)
        if failure.recorded:
            router.record(
                subject, failure.outcome, latency_ms=latency, error_code=failure.error_code
            )
        elif launch.kind is _PRIMARY:
            router.release(call.decision)
        if failure.verdict is _EJECT:
            reason = f"{failure.error_code} (ejected by invoke)"
            router.eject(sim.name, reason, cooldown_s=self.settings.eject_cooldown_s)
        plan = call.plan
        if plan is None:
            return
        try:
            following = plan.failed(launch, failure, SimulatedError(failure.error_code), now)
        except (SimulatedError, FailoverExhausted):
            self._over(plan)
            call.plan = None
            self.on_failed(call.i)
            return
        if following is not None:
            self._start(call, following, now)

    # -- streams (``[budget] streaming``): ConverseStream, answered at the first token ------

    def _first_token(self, event: Event) -> None:
        """A stream attempt's first token: the call's answer, unless another attempt's came
        first (then this one was cancelled - its stream closed, its decision released)."""
        now, key, call, launch, sim, _, latency, ttft, _, _, _ = event
        plan = call.plan
        if plan is None or key in self.cancelled:
            self.cancelled.discard(key)
            self._closed(call, launch, sim, now)
            return
        for loser in plan.running:
            if loser is not launch:
                self.cancelled.add(call.i * _KEYS + loser.index)
        plan.answered(launch, now, ttft, losers="cancelled")
        self._over(plan)
        call.plan = None
        full = launch.started_ns + int(latency * NS_PER_MS)
        done = (full, key + _FULL_KEY, call, launch, sim, OK, latency, ttft, None, True, _FULL)
        heapq.heappush(self.heap, done)

    def _stream(self, event: Event) -> None:
        """A stream's whole answer arrived, or a stream attempt failed before its first
        token (a read timeout included: then only its input tokens are billed)."""
        now, key, call, launch, sim, code, latency, ttft, error, admitted, _ = event
        i = call.i
        tin = self.input_tokens[i]
        tout = self.output_tokens[i] if code == OK else 0
        self.counts[sim.index * 4 + code] += 1
        if admitted:
            self._settle_target(sim, i, now, tin, tout, code)
        if code == OK:
            self._record_answer(call, launch, sim, latency, ttft, tin, tout)
            self._score(call, launch, sim, now, ttft)
            return
        self.cancelled.discard(key)  # an error ends a cancelled attempt as any other
        self._failed(call, launch, sim, now, latency, code, error)

    def _closed(self, call: _Call, launch: Launch, sim: SimTarget, now: int) -> None:
        """A cancelled stream reached its first token: closed unread, not recorded."""
        i = call.i
        self._settle_target(sim, i, now, self.input_tokens[i], 0, OK)
        if launch.kind is _PRIMARY:
            call.router.release(call.decision)

    def _settle_target(
        self, sim: SimTarget, i: int, now: int, tin: int, tout: int, code: int
    ) -> None:
        """Tell the target the admitted attempt is over, and bill it."""
        max_tokens, cached = self._extra(i)
        sim.finished(now, tin, tout, max_tokens, code, cached_tokens=cached)
        self.usd[self.time_ns[i] // self.bucket_ns] += sim.bill(tin, tout, cached)

    def _hedge(self, call: _Call, now: int) -> None:
        plan = call.plan
        if plan is None or plan.hedge_at_ns != now:
            return  # the call is over, or its primary failed first (no hedge then)
        launch = plan.hedge(now)
        if launch is not None:
            self._start(call, launch, now)

    def _over(self, plan: FailoverPlan) -> None:
        launches = plan.launches
        if launches > 1:
            self.failovers += 1
            self.fallback_attempts += launches - 1

    def _extra(self, i: int) -> tuple[int | None, int]:
        """The message's ``max_tokens`` (None: not recorded) and cached input tokens."""
        recorded, cached = self.max_tokens, self.cached_tokens
        return (recorded[i] or None) if recorded is not None else None, (
            cached[i] if cached is not None else 0
        )

    def _failure(self, code: str | None) -> Failure:
        key = code or "InternalFailure"
        failure = self.failures.get(key)
        if failure is None:
            failure = self.failures[key] = failure_of_code(key)
        return failure

    def usage_counts(self, sim: SimTarget) -> list[int]:
        """Attempts of ``sim`` by outcome code (ok, throttled, error, timeout)."""
        base = sim.index * 4
        return self.counts[base : base + 4]
