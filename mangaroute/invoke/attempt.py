"""Running one attempt: call the target, time it, classify the outcome, tell the router.

This is the only place a routed call touches boto3. An attempt never raises (except for
``BaseException``s such as ``KeyboardInterrupt``); it returns an :class:`AttemptDone` for
the driver to hand to the plan. It records its own outcome, on whatever thread runs it, so
an attempt the call stopped waiting for (a losing hedge, a cancelled task) is still
recorded when it lands. A stream attempt reads up to the first token; the rest belongs to
:class:`~mangaroute.invoke.stream.RoutedStream`.

Each attempt that calls its target has a span under the call's ``route`` span
(:mod:`mangaroute.invoke.spans`), current while boto3 runs; ``cancel`` - set by the
driver once the call no longer waits for this attempt - marks a losing answer
``cancelled``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from mangaroute.core.clock import NS_PER_MS, Clock
from mangaroute.core.decision import Decision
from mangaroute.core.outcome import Outcome
from mangaroute.core.router import Router
from mangaroute.core.targets import Pattern, Target
from mangaroute.invoke.client_cache import ClientProvider
from mangaroute.invoke.invokers import EventSource, Invoker
from mangaroute.invoke.plan import Launch
from mangaroute.invoke.result import AttemptKind
from mangaroute.invoke.rules import Failure, Verdict, classify_failure
from mangaroute.invoke.spans import NO_ATTEMPT, NO_ROUTE, attempt_span, cancelled, current
from mangaroute.invoke.spans import failed as span_failed
from mangaroute.invoke.spans import succeeded as span_succeeded
from mangaroute.telemetry.tracing import AttemptSpan, RouteSpan

__all__ = ["AttemptDone", "AttemptRunner", "OpenStream"]

_LOG = logging.getLogger("mangaroute.invoke")


@dataclass(slots=True)
class OpenStream:
    """A stream that has delivered its first token (or ended) to the attempt."""

    source: EventSource
    events: Iterator[dict[str, Any]]
    buffered: list[dict[str, Any]]
    started_ns: int
    first_token_ns: int | None
    span: AttemptSpan = NO_ATTEMPT
    """The attempt's span, open until the stream ends."""


@dataclass(slots=True)
class AttemptDone:
    """How one attempt ended: an answer, an open stream, or an error with its failure."""

    launch: Launch
    started_ns: int
    """When the attempt really started (after any wait for an executor thread)."""
    end_ns: int
    response: dict[str, Any] | None = None
    stream: OpenStream | None = None
    error: BaseException | None = None
    failure: Failure | None = None
    ttft_ms: float | None = None
    cancelled: bool = False


_LATE = Failure(Verdict.FAILOVER, Outcome.TIMEOUT, "DeadlineExceeded", recorded=False)

_T = TypeVar("_T")
_Call = Callable[[Invoker, Any, Target, Mapping[str, Any], threading.Event | None], _T]
"""What an attempt does with its target's client: ``call(invoker, client, target, request,
cancel)``."""
_FirstToken = tuple[EventSource, Iterator[dict[str, Any]], list[dict[str, Any]], int | None]
"""An opened stream: the source, its events, those read so far, the first token's time."""


def _converse(
    invoker: Invoker,
    client: Any,
    target: Target,
    request: Mapping[str, Any],
    cancel: threading.Event | None,
) -> dict[str, Any]:
    return invoker.converse(client, target, request)


@dataclass(slots=True)
class _Ejections:
    """Targets already reported loudly; forgotten when the target answers again."""

    names: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def first(self, name: str) -> bool:
        with self.lock:
            if name in self.names:
                return False
            self.names.add(name)
            return True

    def forget(self, name: str) -> None:
        if name in self.names:
            with self.lock:
                self.names.discard(name)


def usage_of(response: Mapping[str, Any]) -> tuple[int, int, int, int]:
    """``(input, output, cache read, cache write)`` tokens of a Converse response (or a
    stream's ``metadata`` event); a count that is missing or not an integer reads as 0."""
    usage = response.get("usage") or {}
    tokens_in, tokens_out = usage.get("inputTokens", 0), usage.get("outputTokens", 0)
    if type(tokens_in) is not int or type(tokens_out) is not int:
        tokens_in = tokens_out = 0
    read, write = usage.get("cacheReadInputTokens", 0), usage.get("cacheWriteInputTokens", 0)
    return (
        max(tokens_in, 0),
        max(tokens_out, 0),
        max(read, 0) if type(read) is int else 0,
        max(write, 0) if type(write) is int else 0,
    )


class AttemptRunner:
    """Runs attempts against targets through their pattern's invoker."""

    def __init__(
        self,
        router: Router,
        clients: ClientProvider,
        invokers: Mapping[Pattern, Invoker],
        clock: Clock,
        *,
        time_scale: float,
        eject_cooldown_s: float,
    ) -> None:
        self.router = router
        self.clients = clients
        self.invokers = invokers
        self.clock = clock
        self.time_scale = time_scale
        """Real seconds per second of ``clock`` (the client's ``InvokeSettings.time_scale``)."""
        self._to_real_s = time_scale / 1000.0
        self._eject_cooldown_s = eject_cooldown_s
        self._ejections = _Ejections()

    def _client(self, launch: Launch, invoker: Invoker, start_ns: int) -> Any:
        deadline_ns = launch.deadline_ns
        real_s = None
        if deadline_ns is not None:
            real_s = (deadline_ns - start_ns) / NS_PER_MS * self._to_real_s
        return self.clients.client(invoker.service, launch.target.region, real_s)

    def _begin(self, launch: Launch, cancel: threading.Event | None) -> int:
        """Wait out a retry's backoff (until ``launch.started_ns``; a cancelled call stops
        waiting), then the attempt's start time."""
        now = self.clock()
        wait_ns = launch.started_ns - now
        if wait_ns > 0:
            real_s = wait_ns / NS_PER_MS * self._to_real_s
            if cancel is not None:
                cancel.wait(real_s)
            else:
                time.sleep(real_s)
            now = self.clock()
        return now

    def _late(self, launch: Launch, decision: Decision, start_ns: int) -> AttemptDone | None:
        """The deadline passed while the attempt waited for a thread: do not call at all."""
        if launch.deadline_ns is None or start_ns < launch.deadline_ns:
            return None
        self.release(launch, decision)
        error = TimeoutError("the deadline passed before the attempt could start")
        return AttemptDone(launch, start_ns, start_ns, error=error, failure=_LATE)

    # -- Converse -------------------------------------------------------------------------

    def converse(
        self,
        launch: Launch,
        decision: Decision,
        request: Mapping[str, Any],
        route: RouteSpan = NO_ROUTE,
        cancel: threading.Event | None = None,
    ) -> AttemptDone:
        called = self._call(launch, decision, request, route, cancel, _converse, stream=False)
        if isinstance(called, AttemptDone):
            return called
        start, span, response = called
        end = self.clock()
        tokens_in, tokens_out, read, write = usage_of(response)
        self.record(
            launch, decision, Outcome.OK, start, end, None, tokens_in, tokens_out, None, read, write
        )
        lost = cancel is not None and cancel.is_set()
        span_succeeded(span, response.get("usage"), response.get("stopReason"), lost=lost)
        return AttemptDone(launch, start, end, response=response)

    # -- ConverseStream, up to the first token --------------------------------------------

    def open_stream(
        self,
        launch: Launch,
        decision: Decision,
        request: Mapping[str, Any],
        route: RouteSpan = NO_ROUTE,
        cancel: threading.Event | None = None,
    ) -> AttemptDone:
        called = self._call(launch, decision, request, route, cancel, self._first, stream=True)
        if isinstance(called, AttemptDone):
            return called
        start, span, (source, events, buffered, first_ns) = called
        if cancel is not None and cancel.is_set():
            source.close()
            self.release(launch, decision)
            cancelled(span)
            return AttemptDone(launch, start, self.clock(), cancelled=True)
        stream = OpenStream(source, events, buffered, start, first_ns, span)
        ttft = None if first_ns is None else (first_ns - start) / NS_PER_MS
        if ttft is not None:
            span.first_chunk(ttft)
        end = self.clock() if first_ns is None else first_ns
        return AttemptDone(launch, start, end, stream=stream, ttft_ms=ttft)

    def _first(
        self,
        invoker: Invoker,
        client: Any,
        target: Target,
        request: Mapping[str, Any],
        cancel: threading.Event | None,
    ) -> _FirstToken:
        """Open the stream and read it up to the first token (or its end, or ``cancel``);
        the stream is closed if reading fails."""
        source = invoker.converse_stream(client, target, request)
        try:
            events = iter(source)
            buffered: list[dict[str, Any]] = []
            first_ns = None
            for event in events:
                buffered.append(event)
                if "contentBlockDelta" in event:
                    first_ns = self.clock()
                    break
                if cancel is not None and cancel.is_set():
                    break
        except BaseException:
            source.close()
            raise
        return source, events, buffered, first_ns

    # -- what every attempt does around its call ------------------------------------------

    def _call(
        self,
        launch: Launch,
        decision: Decision,
        request: Mapping[str, Any],
        route: RouteSpan,
        cancel: threading.Event | None,
        call: _Call[_T],
        *,
        stream: bool,
    ) -> tuple[int, AttemptSpan, _T] | AttemptDone:
        """Start the attempt and make ``call`` with its span current: its start time, span
        and answer, or - late, or the call failed - how the attempt ended. An interrupted
        call (a ``BaseException`` that is not an ``Exception``) releases the decision, since
        the target is not to blame, and is raised on."""
        start = self._begin(launch, cancel)
        late = self._late(launch, decision, start)
        if late is not None:
            return late
        target = launch.target
        invoker = self.invokers[target.pattern]
        span = NO_ATTEMPT
        try:
            client = self._client(launch, invoker, start)
            span = attempt_span(route, launch, client, start, stream=stream, request=request)
            with current(span):
                answer = call(invoker, client, target, request, cancel)
        except Exception as exc:
            done = self.failed(launch, decision, exc, start, self.clock())
            span_failed(span, done.failure)
            return done
        except BaseException:
            self.release(launch, decision)
            cancelled(span)
            raise
        return start, span, answer

    # -- recording ------------------------------------------------------------------------

    def failed(
        self,
        launch: Launch,
        decision: Decision,
        exc: Exception,
        start_ns: int,
        end_ns: int,
    ) -> AttemptDone:
        failure = classify_failure(exc)
        if failure.recorded:
            code = failure.error_code
            self.record(launch, decision, failure.outcome, start_ns, end_ns, None, 0, 0, code)
        else:
            self.release(launch, decision)
        if failure.verdict is Verdict.EJECT:
            self._eject(launch.target, failure.error_code)
        return AttemptDone(launch, start_ns, end_ns, error=exc, failure=failure)

    def record(
        self,
        launch: Launch,
        decision: Decision,
        outcome: Outcome,
        start_ns: int,
        end_ns: int,
        ttft_ns: int | None,
        input_tokens: int,
        output_tokens: int,
        error_code: str | None,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> None:
        target = launch.target
        latency_ms = max(0.0, (end_ns - start_ns) / NS_PER_MS)
        ttft_ms = None
        if ttft_ns is not None:
            ttft_ms = min(max(0.0, (ttft_ns - start_ns) / NS_PER_MS), latency_ms)
        self.router.record(
            decision if launch.kind is AttemptKind.PRIMARY else target.name,
            outcome,
            latency_ms=latency_ms,
            ttft_ms=ttft_ms,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            error_code=error_code,
            cache_read_tokens=cache_read_tokens,
            cache_write_tokens=cache_write_tokens,
        )
        if outcome is Outcome.OK:
            self._ejections.forget(target.name)

    def release(self, launch: Launch, decision: Decision) -> None:
        """The target is not to blame (cancelled, abandoned by the caller, never reached)."""
        if launch.kind is AttemptKind.PRIMARY:
            self.router.release(decision)

    def _eject(self, target: Target, code: str) -> None:
        cooldown = self._eject_cooldown_s
        self.router.eject(target.name, f"{code} (ejected by invoke)", cooldown_s=cooldown)
        if self._ejections.first(target.name):
            _LOG.error(
                "target %s (%s %s in %s) answered %s: it cannot serve until its configuration "
                "or model access is fixed; ejected for %.0f s, calls fail over meanwhile",
                target.name,
                target.pattern.value,
                target.model_id,
                target.region,
                code,
                cooldown,
            )
