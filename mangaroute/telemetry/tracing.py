"""Spans for routed calls: an INTERNAL ``route`` span and a span per attempt.

The invocation layer drives this API; nothing here calls a model. One routed call gives::

    route                           INTERNAL  the decision and why
    ├── chat anthropic.claude-3-...  CLIENT    attempt 1 (primary), error.type=ThrottlingException
    │   └── BedrockRuntime.Converse  CLIENT    (only with the botocore instrumentation)
    └── chat arn:aws:bedrock:...     CLIENT    attempt 2 (failover), usage, ok

Spans follow the OpenTelemetry GenAI conventions (names in :mod:`.semconv`). The attempt span
is made *current* while the boto3 call runs, so a span the botocore instrumentation creates
nests under it. That instrumentation makes a CLIENT span of its own; with
``attempt_span_kind="auto"`` (the default) the attempt span is INTERNAL whenever the botocore
instrumentation is active, so every AWS call has exactly one CLIENT span.

Neither prompt nor answer text ever reaches a span: the API takes targets, token counts, error
codes and timings only, and a failure is recorded as its error code (``error.type`` and the
status description), never as an exception event - provider messages can quote the request.

With tracing off (``RoutingTelemetry(enabled=False)``, or no SDK installed) every method is a
no-op on shared objects; with the API's default no-op tracer provider the spans are
non-recording and no attribute is computed.
"""

from __future__ import annotations

import threading
import time
from abc import ABCMeta, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Literal, Self

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from mangaroute.core.clock import NS_PER_MS, NS_PER_S, Clock
from mangaroute.core.decision import Decision
from mangaroute.core.outcome import Outcome, classify_exception, error_code_of
from mangaroute.core.snapshot import Snapshot
from mangaroute.core.targets import Target
from mangaroute.telemetry import semconv as sc
from mangaroute.telemetry.instruments import (
    FAILOVERS,
    SCHEMA_URL,
    mangaroute_meter,
    mangaroute_tracer,
)
from mangaroute.telemetry.naming import botocore_instrumented, provider_of, server_of

__all__ = ["SCHEMA_URL", "AttemptSpan", "AttemptSpanKind", "RouteSpan", "RoutingTelemetry"]
# SCHEMA_URL is instruments.py's, still exported here where callers found it first.

AttemptSpanKind = Literal["auto", "client", "internal"]


class RoutingTelemetry:
    """Creates the spans of routed calls (and counts failovers).

    ``tracer_provider`` / ``meter_provider`` default to the global ones. ``attempt_span_kind``:
    ``"client"`` always, ``"internal"`` always, or ``"auto"`` - INTERNAL while OpenTelemetry's
    botocore instrumentation is active (it emits the CLIENT span), CLIENT otherwise.
    """

    __slots__ = ("_clock", "_enabled", "_failovers", "_kind", "_tracer")

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        *,
        attempt_span_kind: AttemptSpanKind = "auto",
        enabled: bool = True,
        clock: Clock = time.monotonic_ns,
    ) -> None:
        if attempt_span_kind not in ("auto", "client", "internal"):
            raise ValueError(
                f"attempt_span_kind must be 'auto', 'client' or 'internal', "
                f"got {attempt_span_kind!r}"
            )
        self._enabled = enabled
        self._kind: AttemptSpanKind = attempt_span_kind
        self._clock = clock
        self._tracer = mangaroute_tracer(tracer_provider)
        self._failovers = FAILOVERS.counter(mangaroute_meter(meter_provider))

    @property
    def enabled(self) -> bool:
        return self._enabled

    def route(
        self,
        decision: Decision,
        *,
        snapshot: Snapshot | None = None,
        budget_ms: float | None = None,
        conversation_id: str | None = None,
    ) -> RouteSpan:
        """Start the ``route`` span of a routed call.

        ``snapshot`` is the router's current snapshot: its route table for the decision's
        request class gives the candidates considered and the excluded targets with their
        reasons. ``budget_ms`` is the latency budget left when the call starts.
        ``conversation_id`` (the session id) becomes ``gen_ai.conversation.id`` on the route
        and every attempt span.
        """
        if not self._enabled:
            return _NO_ROUTE
        span = self._tracer.start_span(sc.ROUTE_SPAN_NAME, kind=SpanKind.INTERNAL)
        if span.is_recording():
            attributes = _decision_attributes(decision, snapshot, budget_ms)
            if conversation_id:
                attributes[sc.GEN_AI_CONVERSATION_ID] = conversation_id
            span.set_attributes(attributes)
        return _LiveRouteSpan(self, span, decision, conversation_id or None)

    def _attempt_kind(self) -> SpanKind:
        if self._kind == "client":
            return SpanKind.CLIENT
        if self._kind == "internal" or botocore_instrumented():
            return SpanKind.INTERNAL
        return SpanKind.CLIENT


def _decision_attributes(
    decision: Decision, snapshot: Snapshot | None, budget_ms: float | None
) -> dict[str, str | int | float | list[str]]:
    target = decision.target
    attributes: dict[str, str | int | float | list[str]] = {
        sc.DECISION_ID: decision.decision_id,
        sc.REQUEST_CLASS: decision.request_class,
        sc.POLICY: decision.policy,
        sc.REASON: decision.reason,
        sc.TARGET: target.name,
        sc.PATTERN: target.pattern.value,
        sc.FALLBACKS: [t.name for t in decision.fallbacks],
    }
    if budget_ms is not None:
        attributes[sc.BUDGET_MS] = float(budget_ms)
    if snapshot is not None:
        table = snapshot.routes.get(decision.request_class)
        if table is not None:
            attributes[sc.CANDIDATES] = [view.name for view in table.candidates]
            attributes[sc.EXCLUDED] = [f"{name}={why}" for name, why in table.excluded]
        if snapshot.primary is not None:
            attributes[sc.PRIMARY] = snapshot.primary
    return attributes


class _Scope:
    """A span that is current between entering and leaving a ``with`` block: the no-op
    behaviour of both kinds of span when telemetry is disabled."""

    __slots__ = ()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None

    @property
    def span(self) -> Span:
        return trace.INVALID_SPAN


class AttemptSpan(_Scope):
    """One attempt of a routed call on one target.

    Use as a context manager around the boto3 call (the span is current inside, and ends on
    exit; an exception is recorded as the attempt's failure and re-raised), or - for a stream
    that outlives the call - start it, wrap the call in :meth:`current`, and :meth:`end` it
    once the stream is consumed. Enter and exit in the same thread or task.

    This base class is the no-op used when telemetry is disabled.
    """

    __slots__ = ()

    @contextmanager
    def current(self) -> Iterator[AttemptSpan]:
        """Make the attempt span current for the ``with`` block without ending it."""
        yield self

    def usage(
        self,
        input_tokens: int,
        output_tokens: int,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> None:
        """Token usage the response reported (``usage.inputTokens`` / ``outputTokens``, and
        ``cacheReadInputTokens`` / ``cacheWriteInputTokens`` with prompt caching).
        ``gen_ai.usage.input_tokens`` is their sum, as the conventions define it."""

    def first_chunk(self, ttft_ms: float | None = None) -> None:
        """The first chunk of a streamed answer arrived (now, or ``ttft_ms`` after the
        attempt started). The first call wins."""

    def response(
        self,
        *,
        model: str | None = None,
        finish_reasons: Sequence[str] | None = None,
        response_id: str | None = None,
    ) -> None:
        """Response metadata: the model that answered, why it stopped (``stopReason``)."""

    def outcome(self, outcome: Outcome | str, error_code: str | None = None) -> None:
        """Set the outcome explicitly (a call that returned a failure instead of raising, or
        a hedge cancelled as ``cancelled``)."""

    def fail(self, error: BaseException | str) -> None:
        """Record a failure: an exception (classified by its AWS error code) or a code."""

    def end(self) -> None:
        """End the span (idempotent); without a recorded failure the outcome is ``ok``."""


class RouteSpan(_Scope):
    """The ``route`` span of one routed call; a context manager that makes it current.

    This base class is the no-op used when telemetry is disabled.
    """

    __slots__ = ()

    def attempt(
        self,
        target: Target,
        *,
        attempt_no: int | None = None,
        kind: str = "primary",
        budget_ms: float | None = None,
        endpoint_url: str | None = None,
        stream: bool = False,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> AttemptSpan:
        """Start the span of one attempt, a child of this route span (whatever is current,
        so hedges started on other threads nest correctly).

        ``attempt_no`` counts from 1 (default: one more than the attempts started so far);
        ``kind`` is ``primary``, ``failover`` or ``hedge`` (failovers and hedges are counted
        in ``mangaroute.failovers``); ``budget_ms`` is the budget left at the start;
        ``endpoint_url`` the client's endpoint (``client.meta.endpoint_url``) for
        ``server.address``; ``stream`` marks ConverseStream; ``max_tokens`` and
        ``temperature`` are the request's (``inferenceConfig``), when it gives them.
        """
        return _NO_ATTEMPT

    def finish(
        self, *, target: Target | str | None = None, error: BaseException | str | None = None
    ) -> None:
        """End the route span (idempotent): which target answered (default: the first attempt
        that ended ``ok``), or the error that ended the routed call."""


_NO_ATTEMPT = AttemptSpan()
_NO_ROUTE = RouteSpan()


class _Live(_Scope, metaclass=ABCMeta):
    """A recording span: current between entering and leaving a ``with`` block (and in
    hedges' threads through ``context``), and left by :meth:`_leave` with the block's
    exception, if any."""

    __slots__ = ("_context", "_span", "_token")

    def __init__(self, span: Span) -> None:
        self._span = span
        self._context = trace.set_span_in_context(span)
        self._token: object | None = None

    def __enter__(self) -> Self:
        self._token = otel_context.attach(self._context)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        token, self._token = self._token, None
        if token is not None:
            otel_context.detach(token)  # type: ignore[arg-type]
        self._leave(exc)

    @abstractmethod
    def _leave(self, exc: BaseException | None) -> None:
        """End or hand on the span as the block's ``exc`` (``None`` on success) says."""

    @property
    def span(self) -> Span:
        return self._span


class _LiveRouteSpan(_Live, RouteSpan):
    __slots__ = (
        "_answered",
        "_attempts",
        "_conversation",
        "_decision",
        "_done",
        "_failovers",
        "_last",
        "_lock",
        "_telemetry",
    )

    def __init__(
        self,
        telemetry: RoutingTelemetry,
        span: Span,
        decision: Decision,
        conversation_id: str | None = None,
    ) -> None:
        super().__init__(span)
        self._telemetry = telemetry
        self._decision = decision
        self._conversation = conversation_id
        self._lock = threading.Lock()
        self._attempts = 0
        self._failovers = 0
        self._last: _LiveAttemptSpan | None = None
        self._answered: str | None = None
        self._done = False

    def _leave(self, exc: BaseException | None) -> None:
        self.finish(error=exc)

    def attempt(
        self,
        target: Target,
        *,
        attempt_no: int | None = None,
        kind: str = "primary",
        budget_ms: float | None = None,
        endpoint_url: str | None = None,
        stream: bool = False,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> AttemptSpan:
        telemetry = self._telemetry
        with self._lock:
            self._attempts += 1
            number = attempt_no if attempt_no is not None else self._attempts
            previous = self._last
            if kind in ("failover", "hedge"):
                self._failovers += 1
        kind = str(kind)
        if kind in ("failover", "hedge"):
            labels: dict[str, str] = {
                sc.TARGET: target.name,
                sc.ATTEMPT_KIND: kind,
                sc.REQUEST_CLASS: self._decision.request_class,
            }
            if previous is not None:
                labels[sc.FROM_TARGET] = previous.target.name
                if previous.error_type is not None:
                    labels[sc.ERROR_TYPE] = previous.error_type
            telemetry._failovers.add(1, labels)
        address, port = server_of(target, endpoint_url)
        attributes: dict[str, str | int | float | bool] = {
            sc.GEN_AI_OPERATION_NAME: sc.OPERATION_CHAT,
            sc.GEN_AI_PROVIDER_NAME: provider_of(target),
            sc.GEN_AI_REQUEST_MODEL: target.model_id,
            sc.SERVER_ADDRESS: address,
            sc.SERVER_PORT: port,
            sc.CLOUD_REGION: target.region,
            sc.TARGET: target.name,
            sc.PATTERN: target.pattern.value,
            sc.ATTEMPT: number,
            sc.ATTEMPT_KIND: kind,
            sc.DECISION_ID: self._decision.decision_id,
        }
        if stream:
            attributes[sc.GEN_AI_REQUEST_STREAM] = True
        if self._conversation is not None:
            attributes[sc.GEN_AI_CONVERSATION_ID] = self._conversation
        if max_tokens is not None:
            attributes[sc.GEN_AI_REQUEST_MAX_TOKENS] = max_tokens
        if temperature is not None:
            attributes[sc.GEN_AI_REQUEST_TEMPERATURE] = float(temperature)
        if budget_ms is not None:
            attributes[sc.BUDGET_MS] = float(budget_ms)
        span = telemetry._tracer.start_span(
            f"{sc.OPERATION_CHAT} {target.model_id}",
            context=self._context,
            kind=telemetry._attempt_kind(),
            attributes=attributes,
        )
        attempt = _LiveAttemptSpan(self, span, target, telemetry._clock)
        with self._lock:
            self._last = attempt
        return attempt

    def _ended(self, attempt: _LiveAttemptSpan) -> None:
        if attempt.error_type is None and attempt.outcome_value == Outcome.OK:
            with self._lock:
                if self._answered is None:
                    self._answered = attempt.target.name

    def finish(
        self, *, target: Target | str | None = None, error: BaseException | str | None = None
    ) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
            answered = self._answered
            attempts, failovers = self._attempts, self._failovers
        span = self._span
        if span.is_recording():
            late: dict[str, str | int] = {sc.ATTEMPTS: attempts, sc.FAILOVERS: failovers}
            if target is not None:
                answered = target if isinstance(target, str) else target.name
            if error is None:
                if answered is not None:
                    late[sc.ANSWERED_BY] = answered
            else:
                error_type = error if isinstance(error, str) else error_code_of(error)
                late[sc.ERROR_TYPE] = error_type
                span.set_status(Status(StatusCode.ERROR, error_type))
            span.set_attributes(late)
        span.end()


class _LiveAttemptSpan(_Live, AttemptSpan):
    """Attributes learned during the attempt are kept in ``_late`` and set in one call when
    the span ends (the SDK validates attributes one by one, under a lock, on every call)."""

    __slots__ = (
        "_clock",
        "_done",
        "_first_chunk",
        "_late",
        "_route",
        "_start_ns",
        "error_type",
        "outcome_value",
        "target",
    )

    def __init__(self, route: _LiveRouteSpan, span: Span, target: Target, clock: Clock) -> None:
        super().__init__(span)
        self._route = route
        self.target = target
        self._clock = clock
        self._start_ns = clock()
        self._first_chunk = False
        self._done = False
        self._late: dict[str, str | int | float | list[str]] = {}
        self.error_type: str | None = None
        self.outcome_value = str(Outcome.OK)

    def _leave(self, exc: BaseException | None) -> None:
        if isinstance(exc, Exception):
            self.fail(exc)
        elif exc is not None:
            self.outcome("cancelled")
        self.end()

    @contextmanager
    def current(self) -> Iterator[AttemptSpan]:
        token = otel_context.attach(self._context)
        try:
            yield self
        finally:
            otel_context.detach(token)

    def usage(
        self,
        input_tokens: int,
        output_tokens: int,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> None:
        late = self._late
        late[sc.GEN_AI_USAGE_INPUT_TOKENS] = int(
            input_tokens + cache_read_tokens + cache_write_tokens
        )
        late[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = int(output_tokens)
        if cache_read_tokens or cache_write_tokens:
            late[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = int(cache_read_tokens)
            late[sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = int(cache_write_tokens)

    def first_chunk(self, ttft_ms: float | None = None) -> None:
        if self._first_chunk:
            return
        self._first_chunk = True
        if ttft_ms is None:
            seconds = (self._clock() - self._start_ns) / NS_PER_S
        else:
            seconds = ttft_ms * NS_PER_MS / NS_PER_S
        self._late[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = seconds

    def response(
        self,
        *,
        model: str | None = None,
        finish_reasons: Sequence[str] | None = None,
        response_id: str | None = None,
    ) -> None:
        if model:
            self._late[sc.GEN_AI_RESPONSE_MODEL] = model
        if finish_reasons:
            self._late[sc.GEN_AI_RESPONSE_FINISH_REASONS] = [str(r) for r in finish_reasons]
        if response_id:
            self._late[sc.GEN_AI_RESPONSE_ID] = response_id

    def outcome(self, outcome: Outcome | str, error_code: str | None = None) -> None:
        value = str(outcome)
        self.outcome_value = value
        if value != Outcome.OK:
            self.error_type = error_code or value

    def fail(self, error: BaseException | str) -> None:
        if isinstance(error, str):
            self.outcome_value = str(Outcome.ERROR)
            self.error_type = error
            return
        outcome, code = classify_exception(error)
        self.outcome_value = str(outcome)
        self.error_type = code

    def end(self) -> None:
        if self._done:
            return
        self._done = True
        span = self._span
        if span.is_recording():
            late = self._late
            late[sc.OUTCOME] = self.outcome_value
            error_type = self.error_type
            if error_type is not None:
                late[sc.ERROR_TYPE] = error_type
                span.set_status(Status(StatusCode.ERROR, error_type))
            span.set_attributes(late)
        self._route._ended(self)
        span.end()
