"""The router: ``choose()`` where a call goes, ``record()`` how it went.

``choose()`` reads an immutable :class:`~mangaroute.core.snapshot.Snapshot` and returns a
:class:`~mangaroute.core.decision.Decision`; no I/O, no logging, no sorting, no lock held across
work. ``record()`` validates its input before touching anything, then bumps counters in the
current time bucket of one target under that target's lock: O(1).

:class:`Router` is a facade. This module is its data plane (``choose``, ``record``,
``release``, a half-open target's probe, and ``call`` around them), which reads the router's
own attributes with no hop into a part. The rest is inherited: the control plane
(:class:`~mangaroute.core.control.ControlPlane`: reloads, operators' actions, events, the
shared-state link, reading state, each over the part that owns it) and the rebuild scheduling
(:class:`~mangaroute.core.schedule.RebuildSchedule`: when the snapshot is rebuilt, by whom).
"""

from __future__ import annotations

import itertools
import math
import random
import time
import zlib
from bisect import bisect_right
from collections.abc import Callable

from mangaroute.core.breaker import BreakerState
from mangaroute.core.builder import IDLE_REBUILD_NS
from mangaroute.core.call import RoutedCall
from mangaroute.core.clock import Clock, monotonic_clock
from mangaroute.core.control import ControlPlane
from mangaroute.core.decision import Decision
from mangaroute.core.errors import (
    InvalidObservation,
    InvalidRequest,
    MangarouteError,
    UnknownRequestClass,
    UnknownTarget,
    counts_error,
    echo,
)
from mangaroute.core.observation import Observation
from mangaroute.core.observer import Observer
from mangaroute.core.outcome import (
    CLIENT_FAULT_CODES,
    ERROR,
    OUTCOME_CODES,
    OUTCOMES_BY_CODE,
    THROTTLED,
    TIMEOUT,
    Outcome,
    classify_exception,
)
from mangaroute.core.settings import RouterConfig
from mangaroute.core.snapshot import Route

__all__ = ["IDLE_REBUILD_NS", "Router", "set_default_config"]

_INF = math.inf
_NUMBER = (int, float)
_HASH_SCALE = 1.0 / 2**32
_new_tuple = tuple.__new__  # builds a Decision without NamedTuple's Python-level __new__
_default_config: list[Callable[[], RouterConfig]] = []


def set_default_config(loader: Callable[[], RouterConfig]) -> None:
    """Make ``loader`` what :meth:`Router.default` builds from. ``import mangaroute`` (which
    runs before any ``mangaroute.core`` module) registers the shipped MangaAssist config
    (:func:`mangaroute.load_default_config`), so core itself never imports the config layer;
    an application may register its own."""
    _default_config[:] = [loader]


class Router(ControlPlane):
    """Routes foundation-model calls across deployment targets.

    Build one from a config (:func:`mangaroute.load_config`, or :meth:`Router.default` for the
    shipped MangaAssist config) and share it across threads and asyncio tasks: every method
    is thread-safe and none blocks for longer than a few microseconds.
    """

    def __init__(
        self,
        config: RouterConfig,
        *,
        clock: Clock = monotonic_clock,
        rng: random.Random | None = None,
        observer: Observer | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """``wall_clock`` (epoch seconds) is read once, here: wall time is this reading plus
        the monotonic clock's progress since (so a simulator can start its virtual day at a
        chosen local time). Parts that need the time of day get it through the
        :class:`~mangaroute.core.policy.context.PolicyContext` of each rebuild."""
        self._random = (rng if rng is not None else random.Random()).random
        self._observer = observer
        self._ids = itertools.count(1)
        self._turns = itertools.count()  # round-robin pickers take slots in turn
        self._assemble(config, clock, observer, wall_clock)

    @classmethod
    def default(cls, *, clock: Clock = monotonic_clock, rng: random.Random | None = None) -> Router:
        """A router on the shipped MangaAssist configuration (or the one an application
        registered with :func:`set_default_config`)."""
        if not _default_config:
            raise MangarouteError("no default config registered: import mangaroute first")
        return cls(_default_config[0](), clock=clock, rng=rng)

    # -- the hot path -------------------------------------------------------------------

    def choose(
        self,
        request_class: str | None = None,
        *,
        session_id: str | None = None,
        budget_ms: float | None = None,
        input_tokens: int = 0,
        output_tokens: int = 0,
        first_token: bool = False,
    ) -> Decision:
        """Decide where one call goes.

        ``budget_ms`` is the latency budget left for this call; with a policy whose ``budget``
        flag is on, targets whose predicted p99 exceeds it are not picked and move to the end
        of the fallbacks (reason ``+budget``); if none fits, the pick is made as if there were
        no budget (reason ``+over_budget``). ``session_id`` keeps a session on one target
        under sticky pickers. While a half-open target of the class has a free probe slot,
        the call becomes its probe (reason ``probe``) with the normal pick order as fallbacks.
        Every decision counts as in flight on its target until it is recorded or released.
        ``first_token=True`` says the budget is for the first token only (a stream answered
        as it arrives): deadline-aware policies then check each target's predicted time to
        first token instead of the whole answer of ``output_tokens``.
        """
        now = self._clock()
        snapshot = self._snapshot
        if now >= self._stale_at_ns:
            snapshot = self._refresh(now)
        try:
            route = snapshot.routes.get(request_class or self._default_class)
        except TypeError:  # an unhashable "class" (a list, a dict): unknown, not a crash
            route = None
        if route is None:
            raise UnknownRequestClass(str(request_class), self._class_names)
        if (
            type(input_tokens) is not int
            or type(output_tokens) is not int
            or input_tokens | output_tokens < 0
        ):
            raise InvalidRequest(
                counts_error(
                    "estimated tokens", input_tokens=input_tokens, output_tokens=output_tokens
                )
            )
        if budget_ms is not None and (
            type(budget_ms) not in _NUMBER or not 0.0 <= budget_ms < _INF
        ):
            raise InvalidRequest(f"budget_ms must be a finite number >= 0, got {echo(budget_ms)}")
        if route.probes:
            probe = self._probe(route, now)
            if probe is not None:
                return probe
        plan = route.plan
        suffix = ""
        if budget_ms is not None:
            lines = route.deadline
            if lines is not None:
                tokens = 0 if first_token else output_tokens or route.deadline_tokens
                mask = 0
                bit = 1
                for a, b in lines:
                    if a + b * tokens <= budget_ms:
                        mask |= bit
                    bit += bit
                if mask != route.full_mask:
                    plan, suffix = route.masked_plan(mask)
            elif route.enforce_budget and budget_ms < route.max_p99_ms:
                plan, suffix = route.budget_plans[bisect_right(route.budget_steps, budget_ms)]
        cumulative = plan.cumulative
        if cumulative is None:
            slot = 0
        else:
            if plan.sticky and session_id:
                draw = zlib.crc32(session_id.encode()) * _HASH_SCALE
            elif plan.rotate:
                draw = (next(self._turns) % len(cumulative) + 0.5) / len(cumulative)
            else:
                draw = self._random()
            slot = bisect_right(cumulative, draw * cumulative[-1])
            if slot >= len(cumulative):
                slot = len(cumulative) - 1
        decision_id = next(self._ids)
        target = plan.targets[slot]
        self._opened[target.name]()  # counted before it is stored: see core/inflight.py
        decision = _new_tuple(
            Decision,
            (
                decision_id,
                target,
                plan.fallbacks[slot],
                plan.reasons[slot] + suffix if suffix else plan.reasons[slot],
                route.request_class,
                route.policy,
                now,
            ),
        )
        self._outstanding[decision_id] = decision
        if self._quiet:
            self._stir()
        if self._observer is not None:
            self._observer.on_decision(decision)
        return decision

    def record(
        self,
        decision: Decision | str,
        outcome: Outcome | str = Outcome.OK,
        *,
        latency_ms: float,
        ttft_ms: float | None = None,
        input_tokens: int = 0,
        output_tokens: int = 0,
        error_code: str | None = None,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> None:
        """Tell the router how a call went.

        ``decision`` is what ``choose()`` returned (or a target name, for calls the router did
        not choose). ``latency_ms`` is the total time; ``ttft_ms`` the time to the first token
        of a streamed answer. ``input_tokens`` are the uncached ones; ``cache_read_tokens`` /
        ``cache_write_tokens`` are Converse's ``usage.cacheReadInputTokens`` /
        ``cacheWriteInputTokens``: all are priced into spend, and capacity counts cache
        writes but not cache reads, as Bedrock's token quotas do (``docs/policies.md``).
        Invalid input raises :class:`InvalidObservation` or :class:`UnknownTarget` and
        changes nothing.
        """
        decision_id = 0
        if type(decision) is Decision:
            state = self._states.get(decision.target.name)
            if state is None or (
                state.target is not decision.target
                and state.target != decision.target
                and decision.decision_id not in self._outstanding  # not from before a reload
            ):
                if state is None and self._in_flight.settle(decision.decision_id) is not None:
                    return  # its target was removed by a reload while it was in flight
                raise UnknownTarget(decision.target.name, self._names)
            decision_id = decision.decision_id
        elif isinstance(decision, str):
            state = self._states.get(decision)
            if state is None:
                raise UnknownTarget(decision, self._names)
        else:
            raise InvalidObservation(
                f"record() takes a Decision or a target name, got {type(decision).__name__}"
            )
        code = OUTCOME_CODES.get(outcome)
        if code is None:
            raise InvalidObservation(
                f"outcome must be one of {', '.join(OUTCOME_CODES)}, got {echo(outcome)}"
            )
        if type(latency_ms) not in _NUMBER or not 0.0 <= latency_ms < _INF:
            raise InvalidObservation(
                f"latency_ms must be a finite number >= 0, got {echo(latency_ms)}"
            )
        if ttft_ms is not None and (
            type(ttft_ms) not in _NUMBER or not 0.0 <= ttft_ms <= latency_ms
        ):
            raise InvalidObservation(
                f"ttft_ms must be a finite number in [0, latency_ms={echo(latency_ms)}], "
                f"got {echo(ttft_ms)}"
            )
        if (
            type(input_tokens) is not int
            or type(output_tokens) is not int
            or type(cache_read_tokens) is not int
            or type(cache_write_tokens) is not int
            or input_tokens | output_tokens | cache_read_tokens | cache_write_tokens < 0
        ):  # one test on the hot path (a bitwise or of ints is negative iff one of them is)
            raise InvalidObservation(
                counts_error("token counts", input_tokens=input_tokens, output_tokens=output_tokens)
                or counts_error(
                    "cache token counts",
                    cache_read_tokens=cache_read_tokens,
                    cache_write_tokens=cache_write_tokens,
                )
            )
        if error_code is not None and not isinstance(error_code, str):
            raise InvalidObservation(f"error_code must be a string, got {echo(error_code)}")
        now = self._clock()
        counts_as_probe = True
        if decision_id:
            pending = self._in_flight.settle(decision_id)
            counts_as_probe = pending is not None and pending.reason == "probe"
        changed = None
        with state.lock:
            state.window.add(
                now, code, latency_ms, ttft_ms, input_tokens + cache_write_tokens, output_tokens
            )
            state.dirty = True
            state.input_total += input_tokens
            state.output_total += output_tokens
            if cache_read_tokens or cache_write_tokens:
                state.cache_read_total += cache_read_tokens
                state.cache_write_total += cache_write_tokens
            state.requests_total += 1
            if code != THROTTLED and error_code not in CLIENT_FAULT_CODES:
                breaker = state.breaker
                if breaker.state is not BreakerState.HALF_OPEN or counts_as_probe:
                    was = breaker.state
                    if breaker.on_result(now, code in (ERROR, TIMEOUT)):
                        changed = state.breaker_event(was, now, self._wall_offset)
        if self._quiet:
            self._stir()
        if self._observer is not None:
            self._observer.on_outcome(
                Observation(
                    state.target,
                    OUTCOMES_BY_CODE[code],
                    latency_ms,
                    ttft_ms,
                    input_tokens,
                    output_tokens,
                    error_code,
                    cache_read_tokens,
                    cache_write_tokens,
                )
            )
        if changed is not None:
            self._moved([changed])

    def release(self, decision: Decision) -> None:
        """Forget a decision that will never be recorded (the call was not made)."""
        pending = self._in_flight.settle(decision.decision_id)
        if self._quiet:
            self._stir()
        if pending is not None and pending.reason == "probe":
            state = self._states[pending.target.name]
            with state.lock:
                state.breaker.release_probe()

    def call(
        self,
        request_class: str | None = None,
        *,
        session_id: str | None = None,
        budget_ms: float | None = None,
        input_tokens: int = 0,
        output_tokens: int = 0,
        classify: Callable[[BaseException], tuple[Outcome, str]] = classify_exception,
    ) -> RoutedCall:
        """Choose, and record around the caller's own code::

            with router.call("simple", budget_ms=1500) as call:
                reply = bedrock.converse(modelId=call.target.model_id, ...)
                call.tokens(reply["usage"]["inputTokens"], reply["usage"]["outputTokens"])

        Leaving the block records ``ok`` with the elapsed time; an exception is classified
        (throttled / timeout / error, with its AWS error code) and recorded, then re-raised.
        Works with ``async with`` too.
        """
        decision = self.choose(
            request_class,
            session_id=session_id,
            budget_ms=budget_ms,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
        )
        return RoutedCall(self, decision, self._clock, classify)

    # -- the slow path of choose() ------------------------------------------------------

    def _probe(self, route: Route, now: int) -> Decision | None:
        for name in route.probes:
            state = self._states[name]
            with state.lock:
                claimed = state.breaker.try_probe(now)
            if claimed:
                target = state.target
                fallbacks = tuple(t for t in route.plan.targets if t is not target)
                decision = Decision(
                    next(self._ids),
                    target,
                    fallbacks,
                    "probe",
                    route.request_class,
                    route.policy,
                    now,
                )
                self._in_flight.open(decision)
                if self._observer is not None:
                    self._observer.on_decision(decision)
                return decision
        return None
