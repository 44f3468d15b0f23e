"""The telemetry sinks' background worker and rate-limited warning.

Both live in :mod:`mangaroute.runtime` now (one background runtime for every adapter); this
module keeps the names the sinks import, with the telemetry logger as their default.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from mangaroute.runtime import worker as _runtime
from mangaroute.runtime.ratelimit import RateLimitedLog
from mangaroute.runtime.worker import Closeable, close_at_exit, forget_at_exit

__all__ = [
    "Closeable",
    "PeriodicWorker",
    "RateLimitedWarning",
    "close_at_exit",
    "forget_at_exit",
]

logger = logging.getLogger("mangaroute.telemetry")


class RateLimitedWarning(RateLimitedLog):
    """:class:`~mangaroute.runtime.RateLimitedLog` on the ``mangaroute.telemetry`` logger."""

    __slots__ = ()

    def __init__(
        self,
        every_s: float,
        clock: Callable[[], int] = time.monotonic_ns,
        log: logging.Logger = logger,
    ) -> None:
        super().__init__(every_s, clock, log)


class PeriodicWorker(_runtime.PeriodicWorker):
    """:class:`~mangaroute.runtime.PeriodicWorker` logging on ``mangaroute.telemetry``."""

    __slots__ = ()

    def __init__(self, name: str, interval_s: float, work: Callable[[], object]) -> None:
        super().__init__(name, interval_s, work, log=logger)
