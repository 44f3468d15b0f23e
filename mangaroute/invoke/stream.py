"""A routed ConverseStream after its first token: events in order, recorded when it ends.

The first token has reached the caller once :class:`RoutedStream` exists, so nothing here
fails over: an error after that is recorded against the target (with its time to first
token) and raised unchanged, and nothing is ever sent twice. The underlying boto3 event
stream is closed on every path - the end of the stream, an error, :meth:`close` or the end
of a ``with`` block - since an unclosed one leaves its socket to the garbage collector.
The attempt's span and the call's ``route`` span end with it (a stream left early ends its
attempt ``cancelled``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from types import TracebackType
from typing import Any, Self

from mangaroute._closing import ClosesOnExit
from mangaroute.core.clock import NS_PER_MS
from mangaroute.core.decision import Decision
from mangaroute.core.outcome import Outcome
from mangaroute.invoke.attempt import AttemptRunner, OpenStream, usage_of
from mangaroute.invoke.plan import Launch
from mangaroute.invoke.result import RoutingResult
from mangaroute.invoke.rules import classify_failure
from mangaroute.invoke.spans import NO_ROUTE, cancelled, failed, succeeded
from mangaroute.telemetry.tracing import RouteSpan

__all__ = ["AsyncRoutedStream", "RoutedStream"]

_END = object()


class RoutedStream(ClosesOnExit):
    """Iterate for the ConverseStream event dicts; ``routing`` says where it came from.

    ``ttft_ms`` is known from the start; ``latency_ms`` and ``usage`` once the stream has
    ended. Leaving the stream before its end closes the connection and records nothing
    (the target is not to blame); the decision is released.
    """

    def __init__(
        self,
        opened: OpenStream,
        routing: RoutingResult,
        runner: AttemptRunner,
        launch: Launch,
        decision: Decision,
        route: RouteSpan = NO_ROUTE,
    ) -> None:
        self.routing = routing
        self._opened = opened
        self._runner = runner
        self._launch = launch
        self._decision = decision
        self._route = route
        self._stop_reason: str | None = None
        self._pending = list(opened.buffered)
        self._pending.reverse()
        self._done = False
        self._lock = threading.Lock()
        self.usage: dict[str, int] | None = None
        self.latency_ms: float | None = None
        first = opened.first_token_ns
        self.ttft_ms = None if first is None else (first - opened.started_ns) / NS_PER_MS

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self

    def __next__(self) -> dict[str, Any]:
        if self._pending:
            return self._take(self._pending.pop())
        if self._done:
            raise StopIteration
        try:
            event = next(self._opened.events, _END)
        except Exception as exc:
            self._finish_error(exc)
            raise
        if event is _END:
            self._finish_ok()
            raise StopIteration
        assert isinstance(event, dict)
        return self._take(event)

    @property
    def buffered(self) -> bool:
        """Events already read (up to the first token) that need no network read."""
        return bool(self._pending)

    def _take(self, event: dict[str, Any]) -> dict[str, Any]:
        metadata = event.get("metadata")
        if metadata is not None:
            tokens_in, tokens_out, read, write = usage_of(metadata)
            self.usage = {"inputTokens": tokens_in, "outputTokens": tokens_out}
            if read or write:
                self.usage["cacheReadInputTokens"] = read
                self.usage["cacheWriteInputTokens"] = write
        else:
            stop = event.get("messageStop")
            if stop is not None:
                self._stop_reason = stop.get("stopReason")
        return event

    def _claim(self) -> bool:
        with self._lock:
            if self._done:
                return False
            self._done = True
        self._pending.clear()
        self._opened.source.close()
        return True

    def _finish_ok(self) -> None:
        if not self._claim():
            return
        runner = self._runner
        end_ns = runner.clock()
        self.latency_ms = (end_ns - self._opened.started_ns) / NS_PER_MS
        usage = self.usage or {}
        tokens_in, tokens_out = usage.get("inputTokens", 0), usage.get("outputTokens", 0)
        read = usage.get("cacheReadInputTokens", 0)
        write = usage.get("cacheWriteInputTokens", 0)
        runner.record(
            self._launch,
            self._decision,
            Outcome.OK,
            self._opened.started_ns,
            end_ns,
            self._opened.first_token_ns,
            tokens_in,
            tokens_out,
            None,
            read,
            write,
        )
        succeeded(self._opened.span, self.usage, self._stop_reason)
        self._route.finish(target=self.routing.target)

    def _finish_error(self, exc: Exception) -> None:
        if not self._claim():
            return
        runner = self._runner
        end_ns = runner.clock()
        self.latency_ms = (end_ns - self._opened.started_ns) / NS_PER_MS
        failure = classify_failure(exc)
        if failure.recorded:
            runner.record(
                self._launch,
                self._decision,
                failure.outcome,
                self._opened.started_ns,
                end_ns,
                self._opened.first_token_ns,
                0,
                0,
                failure.error_code,
            )
        else:
            runner.release(self._launch, self._decision)
        failed(self._opened.span, failure)
        self._route.finish(error=failure.error_code)

    def close(self) -> None:
        """Close the connection; a stream left before its end is released, not recorded."""
        if self._claim():
            self._runner.release(self._launch, self._decision)
            cancelled(self._opened.span)
            self._route.finish(target=self.routing.target)


class AsyncRoutedStream:
    """``async for`` over a :class:`RoutedStream`; each blocking read runs in the executor."""

    def __init__(self, stream: RoutedStream, executor: Executor) -> None:
        self.stream = stream
        self._executor = executor

    @property
    def routing(self) -> RoutingResult:
        return self.stream.routing

    @property
    def ttft_ms(self) -> float | None:
        return self.stream.ttft_ms

    @property
    def latency_ms(self) -> float | None:
        return self.stream.latency_ms

    @property
    def usage(self) -> dict[str, int] | None:
        return self.stream.usage

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> dict[str, Any]:
        stream = self.stream
        if stream.buffered:
            return next(stream)
        loop = asyncio.get_running_loop()
        event = await loop.run_in_executor(self._executor, _next_or_end, stream)
        if event is _END:
            raise StopAsyncIteration
        assert isinstance(event, dict)
        return event

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        close: Callable[[], None] = self.stream.close
        await loop.run_in_executor(self._executor, close)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


def _next_or_end(stream: RoutedStream) -> object:
    return next(stream, _END)
