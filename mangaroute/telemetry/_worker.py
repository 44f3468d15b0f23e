"""The telemetry sinks' background worker.

It lives in :mod:`mangaroute.runtime` (one background runtime for every adapter); this module
keeps the names the sinks import, with the telemetry logger as the worker's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from mangaroute._closing import ClosesOnExit
from mangaroute.runtime import worker as _runtime
from mangaroute.runtime.worker import Closeable, close_at_exit, forget_at_exit

__all__ = [
    "BackgroundExport",
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


class BackgroundExport(ClosesOnExit):
    """A metrics observer whose export runs on a :class:`PeriodicWorker`: started with it
    (``start=False`` leaves exporting to explicit calls), closed once, and closed at
    interpreter exit if nobody closed it before, so what it holds is flushed.

    A subclass calls ``super().__init__`` last in its own (the worker may run at once), and
    its ``close()`` stops the worker and exports what is left when :meth:`_first_close` says so.
    """

    __slots__ = ("_closed", "_worker")

    def __init__(
        self, name: str, interval_s: float, export: Callable[[], object], *, start: bool
    ) -> None:
        self._closed = False
        self._worker = PeriodicWorker(name, interval_s, export)
        if start:
            self._worker.start()
            close_at_exit(self)

    def _first_close(self) -> bool:
        """Whether this is the first call of ``close()``, which then stops the worker and
        exports what is left; marks the observer closed and drops its at-exit hook."""
        if self._closed:
            return False
        self._closed = True
        forget_at_exit(self)
        return True
