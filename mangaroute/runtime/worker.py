"""A background thread that runs one function now and then, safely.

The shape of OpenTelemetry's ``BatchProcessor``
(``opentelemetry-sdk/.../_shared_internal/__init__.py``): callers only append to a buffer,
bump a counter or set a flag; this thread does the slow part. It survives what a background
thread meets in production:

* an exception in the work: logged, the loop goes on;
* ``os.fork()``: a forked child has only the forking thread, so every worker that was
  running restarts its own thread in the child (``os.register_at_fork``), with fresh events;
* interpreter exit: the threads are daemons, and an ``atexit`` hook stops every running
  worker, waiting :data:`EXIT_JOIN_S` at most in all, so exit never hangs on one. Owners
  that must flush first register with :func:`close_at_exit` (their hooks run before it).

``stop(timeout_s)`` returns within ``timeout_s``: a worker inside a slow piece of work is
told to stop and left to finish it (it is a daemon; it never runs the work again).
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

logger = logging.getLogger("mangaroute.runtime")

EXIT_JOIN_S = 1.0
"""At interpreter exit, how long in all to wait for running workers to end."""


class PeriodicWorker:
    """Calls ``work()`` every ``interval_s`` on a daemon thread until stopped, sooner when
    :meth:`wake` is called. ``delay``, when given, is asked after each run how many seconds
    to wait before the next one (``None``: until woken)."""

    __slots__ = (
        "__weakref__",
        "_delay",
        "_interval_s",
        "_log",
        "_name",
        "_running",
        "_stop",
        "_thread",
        "_wake",
        "_work",
    )

    def __init__(
        self,
        name: str,
        interval_s: float,
        work: Callable[[], object],
        *,
        delay: Callable[[], float | None] | None = None,
        log: logging.Logger = logger,
    ) -> None:
        if not interval_s > 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s}")
        self._name = name
        self._interval_s = interval_s
        self._work = work
        self._delay = delay
        self._log = log
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._running = False
        _WORKERS.add(self)

    @property
    def name(self) -> str:
        return self._name

    @property
    def running(self) -> bool:
        return self._running

    def start(self) -> None:
        """Start the thread (no-op while running). The first run comes after one wait:
        call :meth:`wake` too to run at once."""
        if self._running:
            return
        self._running = True
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, args=(self._stop, self._wake), name=self._name, daemon=True
        )
        self._thread.start()

    def wake(self) -> None:
        """Run the work as soon as the thread is free (cheap: safe on a hot path)."""
        wake = self._wake
        if not wake.is_set():
            wake.set()

    def stop(self, timeout_s: float) -> bool:
        """Stop the loop; True if the thread ended within ``timeout_s``."""
        self._running = False
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(timeout_s)
        return not thread.is_alive()

    def _loop(self, stop: threading.Event, wake: threading.Event) -> None:
        delay: float | None = self._interval_s
        while True:
            wake.wait(delay)
            if stop.is_set():
                return
            wake.clear()
            run_safely(self._work, self._name, self._log)
            delay = self._interval_s if self._delay is None else self._next_delay()

    def _next_delay(self) -> float | None:
        assert self._delay is not None
        try:
            return self._delay()
        except Exception:
            self._log.exception("%s: computing the next wait failed", self._name)
            return self._interval_s

    def _after_fork(self) -> None:
        if self._running:
            self._running = False
            self._thread = None
            self.start()


def run_safely(work: Callable[[], object], name: str, log: logging.Logger = logger) -> None:
    """Run ``work``; log (never raise) whatever it raises."""
    try:
        work()
    except Exception:
        log.exception("%s: background work failed", name)


class Closeable(Protocol):
    def close(self) -> None: ...


_WORKERS: weakref.WeakSet[PeriodicWorker] = weakref.WeakSet()
_HOOKS: weakref.WeakKeyDictionary[Closeable, Callable[[], None]] = weakref.WeakKeyDictionary()


def close_at_exit(owner: Closeable, log: logging.Logger = logger) -> None:
    """Close ``owner`` (flushing what it holds) when the interpreter exits, unless it was
    closed or collected before.

    One ``atexit`` hook per owner, registered now: hooks run last-registered first, so an
    owner built after another it writes to (an observer after its ``MeterProvider``) is
    closed first, and every owner before the workers are stopped.
    """
    ref = weakref.ref(owner)

    def hook() -> None:
        alive = ref()
        if alive is not None:
            run_safely(alive.close, type(alive).__name__, log)

    _HOOKS[owner] = hook
    atexit.register(hook)


def forget_at_exit(owner: Closeable) -> None:
    hook = _HOOKS.pop(owner, None)
    if hook is not None:
        atexit.unregister(hook)


def stop_all(timeout_s: float = EXIT_JOIN_S) -> bool:
    """Stop every running worker, waiting ``timeout_s`` at most in all; True if all ended."""
    deadline = time.monotonic() + timeout_s
    workers = [worker for worker in list(_WORKERS) if worker.running]
    for worker in workers:  # tell them all first, then wait
        worker._running = False
        worker._stop.set()
        worker._wake.set()
    ended = True
    for worker in workers:
        ended = worker.stop(max(0.0, deadline - time.monotonic())) and ended
    return ended


def _restart_after_fork() -> None:
    for worker in list(_WORKERS):
        worker._after_fork()


atexit.register(stop_all)  # registered first: runs after every close_at_exit hook
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_restart_after_fork)
