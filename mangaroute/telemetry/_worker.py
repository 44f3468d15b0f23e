"""The telemetry sinks' background worker.

It lives in :mod:`mangaroute.runtime` (one background runtime for every adapter); this module
keeps the names the sinks import, with the telemetry logger as the worker's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from mangaroute.runtime import worker as _runtime
from mangaroute.runtime.worker import Closeable, close_at_exit, forget_at_exit

__all__ = [
    "Closeable",
    "PeriodicWorker",
    "close_at_exit",
    "forget_at_exit",
]

logger = logging.getLogger("mangaroute.telemetry")


class PeriodicWorker(_runtime.PeriodicWorker):
    """:class:`~mangaroute.runtime.PeriodicWorker` logging on ``mangaroute.telemetry``."""

    __slots__ = ()

    def __init__(self, name: str, interval_s: float, work: Callable[[], object]) -> None:
        super().__init__(name, interval_s, work, log=logger)
