"""A log line at most once per interval, with a count of the ones left out.

A misbehaving peer or a failing backend can raise the same warning thousands of times a
second (issue 13 measured 808 KB of tracebacks in 6 s from malformed gRPC requests); one line
per interval that says how many were suppressed keeps the signal and bounds the log.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

logger = logging.getLogger("mangaroute")


class RateLimitedLog:
    """Admits one line per ``every_s`` (the first at once); the rest are counted."""

    __slots__ = ("_clock", "_every_ns", "_last_ns", "_lock", "_logger", "suppressed")

    def __init__(
        self,
        every_s: float,
        clock: Callable[[], int] = time.monotonic_ns,
        log: logging.Logger = logger,
    ) -> None:
        self._every_ns = round(every_s * 1e9)
        self._clock = clock
        self._logger = log
        self._last_ns: int | None = None
        self._lock = threading.Lock()
        self.suppressed = 0
        """Lines left out since the last one that went out."""

    @property
    def every_s(self) -> float:
        return self._every_ns / 1e9

    def admit(self) -> int | None:
        """``None`` when a line went out less than ``every_s`` ago (this one is counted as
        suppressed); otherwise how many were suppressed since the last line, and the caller
        logs its line now."""
        now = self._clock()
        with self._lock:
            if self._last_ns is not None and now - self._last_ns < self._every_ns:
                self.suppressed += 1
                return None
            self._last_ns = now
            suppressed, self.suppressed = self.suppressed, 0
        return suppressed

    def warn(self, message: str, *args: object, exc_info: bool = False) -> bool:
        """Log ``message`` as a WARNING unless rate-limited; returns whether it went out."""
        suppressed = self.admit()
        if suppressed is None:
            return False
        if suppressed:
            message += " (%d similar warnings suppressed)"
            args = (*args, suppressed)
        self._logger.warning(message, *args, exc_info=exc_info)
        return True
