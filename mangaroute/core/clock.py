"""Time as an injected dependency.

The router never reads the wall clock itself: it is handed a ``Clock`` (a callable returning
monotonic nanoseconds). Production uses :func:`time.monotonic_ns`; tests and the simulator pass
a :class:`FakeClock` and move time by hand, so every window, cool-down and switch is exact and
reproducible (the approach of botocore's ``sleep=``/``random=`` parameters and finagle's
``P2CSuite``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

Clock = Callable[[], int]
"""A zero-argument callable returning monotonic time in nanoseconds."""

monotonic_clock: Clock = time.monotonic_ns

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000


class FakeClock:
    """A manually advanced monotonic clock for tests and virtual-time simulation."""

    __slots__ = ("_lock", "_now_ns")

    def __init__(self, start_ns: int = 0) -> None:
        self._now_ns = start_ns
        self._lock = threading.Lock()

    def __call__(self) -> int:
        return self._now_ns

    @property
    def now_ns(self) -> int:
        return self._now_ns

    def advance(self, *, seconds: float = 0.0, ms: float = 0.0, ns: int = 0) -> int:
        """Move time forward and return the new reading; time never goes backwards."""
        step = ns + round(seconds * NS_PER_S) + round(ms * NS_PER_MS)
        if step < 0:
            raise ValueError(f"a clock only moves forward; got a step of {step} ns")
        with self._lock:
            self._now_ns += step
            return self._now_ns

    def set(self, now_ns: int) -> None:
        """Jump to an absolute reading, which must not be earlier than the current one."""
        with self._lock:
            if now_ns < self._now_ns:
                raise ValueError(f"a clock only moves forward: {now_ns} < {self._now_ns}")
            self._now_ns = now_ns
