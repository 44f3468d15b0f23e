"""A background thread that runs one function every few seconds, safely.

The exporters' shape from OpenTelemetry's ``BatchProcessor``
(``opentelemetry-sdk/.../_shared_internal/__init__.py``): callers only append to a buffer or
bump an aggregate; this thread does the slow part. It survives everything a telemetry thread
meets in production: an exception in the work (logged, the loop goes on), a ``fork()`` (the
child restarts its own thread; a forked child has no threads), interpreter exit (an
``atexit`` hook closes every live owner, so the last interval is flushed).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Protocol

logger = logging.getLogger("mangaroute.telemetry")


class PeriodicWorker:
    """Calls ``work()`` every ``interval_s`` on a daemon thread until stopped."""

    __slots__ = ("__weakref__", "_interval_s", "_name", "_running", "_stop", "_thread", "_work")

    def __init__(self, name: str, interval_s: float, work: Callable[[], object]) -> None:
        if not interval_s > 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s}")
        self._name = name
        self._interval_s = interval_s
        self._work = work
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._running = False
        _WORKERS.add(self)

    @property
    def running(self) -> bool:
        return self._running

    def start(self) -> None:
        if self._running:
            return
        self._running = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float) -> bool:
        """Stop the loop; True if the thread ended within ``timeout_s``."""
        self._running = False
        self._stop.set()
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(timeout_s)
        return not thread.is_alive()

    def _loop(self) -> None:
        stop = self._stop
        while not stop.wait(self._interval_s):
            run_safely(self._work, self._name)

    def _after_fork(self) -> None:
        if self._running:
            self._running = False
            self._thread = None
            self.start()


def run_safely(work: Callable[[], object], name: str) -> None:
    """Run ``work``; log (never raise) whatever it raises."""
    try:
        work()
    except Exception:
        logger.exception("%s: background work failed", name)


class Closeable(Protocol):
    def close(self) -> None: ...


_WORKERS: weakref.WeakSet[PeriodicWorker] = weakref.WeakSet()
_HOOKS: weakref.WeakKeyDictionary[Closeable, Callable[[], None]] = weakref.WeakKeyDictionary()


def close_at_exit(owner: Closeable) -> None:
    """Close ``owner`` (flushing what it holds) when the interpreter exits, unless it was
    closed or collected before.

    One ``atexit`` hook per owner, registered now: hooks run last-registered first, so an
    observer built after its ``MeterProvider`` flushes before the provider shuts down.
    """
    ref = weakref.ref(owner)

    def hook() -> None:
        alive = ref()
        if alive is not None:
            run_safely(alive.close, type(alive).__name__)

    _HOOKS[owner] = hook
    atexit.register(hook)


def forget_at_exit(owner: Closeable) -> None:
    hook = _HOOKS.pop(owner, None)
    if hook is not None:
        atexit.unregister(hook)


def _restart_after_fork() -> None:
    for worker in list(_WORKERS):
        worker._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_restart_after_fork)


class RateLimitedWarning:
    """Log a warning at most once per ``every_s``; the ones in between are counted and the
    count is reported with the next one that goes out."""

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

    def warn(self, message: str, *args: object, exc_info: bool = False) -> bool:
        now = self._clock()
        with self._lock:
            if self._last_ns is not None and now - self._last_ns < self._every_ns:
                self.suppressed += 1
                return False
            self._last_ns = now
            suppressed, self.suppressed = self.suppressed, 0
        if suppressed:
            message += " (%d similar warnings suppressed)"
            args = (*args, suppressed)
        self._logger.warning(message, *args, exc_info=exc_info)
        return True
