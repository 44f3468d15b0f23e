"""The context-manager form of choose + record around the caller's own call."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Protocol

from mangaroute.core.clock import NS_PER_MS, Clock
from mangaroute.core.decision import Decision
from mangaroute.core.outcome import Outcome
from mangaroute.core.targets import Target


class Recorder(Protocol):
    """What a routed call needs of the router: record its outcome, or release it."""

    def record(
        self,
        decision: Decision,
        outcome: Outcome,
        *,
        latency_ms: float,
        ttft_ms: float | None = None,
        input_tokens: int = 0,
        output_tokens: int = 0,
        error_code: str | None = None,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> None: ...

    def release(self, decision: Decision) -> None: ...


class RoutedCall:
    """Created by :meth:`Router.call`; records the outcome when the block ends.

    * normal exit: ``ok`` (or what :meth:`set_outcome` said) with the elapsed time;
    * an ``Exception``: classified into throttled / timeout / error with its error code,
      recorded, and re-raised unchanged;
    * a ``BaseException`` that is not an ``Exception`` (cancellation, ``KeyboardInterrupt``):
      the target is not to blame, so the decision is released, not recorded.
    """

    __slots__ = (
        "_cache_read_tokens",
        "_cache_write_tokens",
        "_classify",
        "_clock",
        "_done",
        "_error_code",
        "_first_token_ns",
        "_input_tokens",
        "_outcome",
        "_output_tokens",
        "_router",
        "_start_ns",
        "decision",
    )

    def __init__(
        self,
        router: Recorder,
        decision: Decision,
        clock: Clock,
        classify: Callable[[BaseException], tuple[Outcome, str]],
    ) -> None:
        self._router = router
        self.decision = decision
        self._clock = clock
        self._classify = classify
        self._start_ns = clock()
        self._first_token_ns: int | None = None
        self._input_tokens = 0
        self._output_tokens = 0
        self._cache_read_tokens = 0
        self._cache_write_tokens = 0
        self._outcome: Outcome | None = None
        self._error_code: str | None = None
        self._done = False

    @property
    def target(self) -> Target:
        return self.decision.target

    def first_token(self) -> None:
        """Mark the arrival of the first token of a streamed answer (first call wins)."""
        if self._first_token_ns is None:
            self._first_token_ns = self._clock()

    def tokens(
        self,
        input_tokens: int,
        output_tokens: int,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> None:
        """Report the token usage of the answer (from the response's ``usage``: input,
        output, and Converse's ``cacheReadInputTokens`` / ``cacheWriteInputTokens``)."""
        self._input_tokens = input_tokens
        self._output_tokens = output_tokens
        self._cache_read_tokens = cache_read_tokens
        self._cache_write_tokens = cache_write_tokens

    def set_outcome(self, outcome: Outcome | str, error_code: str | None = None) -> None:
        """Override the outcome recorded on a normal exit (a call that returned an error
        payload instead of raising)."""
        self._outcome = Outcome(outcome)
        self._error_code = error_code

    def __enter__(self) -> RoutedCall:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._finish(exc)

    async def __aenter__(self) -> RoutedCall:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._finish(exc)

    def _finish(self, exc: BaseException | None) -> None:
        if self._done:
            return
        self._done = True
        if exc is not None and not isinstance(exc, Exception):
            self._router.release(self.decision)
            return
        now = self._clock()
        latency_ms = (now - self._start_ns) / NS_PER_MS
        ttft_ms = None
        if self._first_token_ns is not None:
            ttft_ms = (self._first_token_ns - self._start_ns) / NS_PER_MS
        error_code: str | None
        if exc is not None:
            outcome, error_code = self._classify(exc)
        else:
            outcome = self._outcome or Outcome.OK
            error_code = self._error_code
        self._router.record(
            self.decision,
            outcome,
            latency_ms=latency_ms,
            ttft_ms=ttft_ms,
            input_tokens=self._input_tokens,
            output_tokens=self._output_tokens,
            error_code=error_code,
            cache_read_tokens=self._cache_read_tokens,
            cache_write_tokens=self._cache_write_tokens,
        )
