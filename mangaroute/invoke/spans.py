"""Spans of routed calls: the invocation layer's side of :mod:`mangaroute.telemetry.tracing`.

A routed call opens a ``route`` span when the router has decided and closes it when the call
ends (for a stream: when the stream ends). Each attempt opens its span on the thread that
runs it, makes it current while boto3 runs - so the botocore instrumentation's span nests
under it - and ends it with the outcome the failover rules gave (:mod:`.rules`), so a span's
``error.type`` is the attempt's ``error_code`` in the :class:`~.result.RoutingResult`.

A losing hedge that would have answered ends ``cancelled`` when it lands (a stream as soon
as it is closed; a blocking Converse call when it returns - its span keeps its real
duration and token usage); a losing attempt that failed keeps its error.

With telemetry disabled every call here reaches the shared no-op spans and does nothing
else: the disabled path costs well under a microsecond per routed call.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from types import TracebackType
from typing import Any

from mangaroute.core.clock import NS_PER_MS
from mangaroute.invoke.plan import Launch
from mangaroute.invoke.rules import Failure, Verdict
from mangaroute.telemetry.tracing import AttemptSpan, RouteSpan

__all__ = [
    "NO_ATTEMPT",
    "NO_ROUTE",
    "FinishOnError",
    "attempt_span",
    "cancelled",
    "current",
    "failed",
    "succeeded",
]

NO_ROUTE = RouteSpan()
"""The no-op route span (its attempts are :data:`NO_ATTEMPT`)."""
NO_ATTEMPT = AttemptSpan()
"""The no-op attempt span: the base classes are the disabled telemetry's spans."""
CANCELLED = "cancelled"

_UNTRACED: AbstractContextManager[object] = nullcontext()


def attempt_span(
    route: RouteSpan,
    launch: Launch,
    client: Any,
    start_ns: int,
    *,
    stream: bool,
    request: Mapping[str, Any] | None = None,
) -> AttemptSpan:
    """Start the span of ``launch`` (about to call ``client``) under ``route``; the Converse
    ``request`` gives ``gen_ai.request.max_tokens`` / ``temperature`` when it sets them."""
    if type(route) is RouteSpan:
        return NO_ATTEMPT
    max_tokens, temperature = _inference_config(request)
    budget_ms = None
    if launch.deadline_ns is not None:
        budget_ms = (launch.deadline_ns - start_ns) / NS_PER_MS
    meta = getattr(client, "meta", None)
    return route.attempt(
        launch.target,
        attempt_no=launch.index + 1,
        kind=launch.kind.value,
        budget_ms=budget_ms,
        endpoint_url=getattr(meta, "endpoint_url", None),
        stream=stream,
        max_tokens=max_tokens,
        temperature=temperature,
    )


def _inference_config(request: Mapping[str, Any] | None) -> tuple[int | None, float | None]:
    config = request.get("inferenceConfig") if request is not None else None
    if not isinstance(config, Mapping):
        return None, None
    max_tokens, temperature = config.get("maxTokens"), config.get("temperature")
    return (
        max_tokens if type(max_tokens) is int else None,
        float(temperature)
        if isinstance(temperature, int | float) and not isinstance(temperature, bool)
        else None,
    )


def current(span: AttemptSpan) -> AbstractContextManager[object]:
    """Make ``span`` current for a ``with`` block without ending it."""
    if type(span) is AttemptSpan:
        return _UNTRACED
    return span.current()


def succeeded(
    span: AttemptSpan,
    usage: Mapping[str, Any] | None,
    stop_reason: object,
    *,
    lost: bool = False,
) -> None:
    """End an attempt that answered; ``lost``: the call had stopped waiting for it."""
    if type(span) is AttemptSpan:
        return
    if usage:
        tokens_in, tokens_out = usage.get("inputTokens"), usage.get("outputTokens")
        if type(tokens_in) is int and type(tokens_out) is int:
            read, write = (
                usage.get("cacheReadInputTokens", 0),
                usage.get("cacheWriteInputTokens", 0),
            )
            if type(read) is not int or type(write) is not int:
                read = write = 0
            span.usage(tokens_in, tokens_out, read, write)
    if isinstance(stop_reason, str):
        span.response(finish_reasons=(stop_reason,))
    if lost:
        span.outcome(CANCELLED)
    span.end()


def failed(span: AttemptSpan, failure: Failure | None) -> None:
    """End an attempt that failed, with the outcome and code the failover rules gave."""
    if failure is not None:
        outcome = "skipped" if failure.verdict is Verdict.SKIP else failure.outcome.value
        span.outcome(outcome, failure.error_code)
    span.end()


def cancelled(span: AttemptSpan) -> None:
    """End an attempt the routed call no longer wants (a losing hedge, a closed stream, an
    interrupted call)."""
    span.outcome(CANCELLED)
    span.end()


class FinishOnError:
    """``with FinishOnError(route):`` ends ``route`` with the error escaping the block and
    leaves it open otherwise: a stream's route span ends with the stream, not when the
    stream opens."""

    __slots__ = ("_route",)

    def __init__(self, route: RouteSpan) -> None:
        self._route = route

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is not None:
            self._route.finish(error=exc)
