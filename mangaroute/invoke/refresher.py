"""Keep the router's snapshot fresh from a background thread while calls are flowing.

``Router.choose()`` rebuilds a stale snapshot (older than ``refresh_ms``) on the caller's
thread. A rebuild is pure Python over every target and class - a couple of hundred
microseconds for the MangaAssist config - so below a few hundred calls per second nearly
every call would pay it. The refresher rebuilds just before the snapshot goes stale, off the
callers' threads, for as long as routed calls have been made within ``linger_s``; an idle
client costs nothing.
"""

from __future__ import annotations

import threading

from mangaroute.core.clock import NS_PER_S, Clock
from mangaroute.core.router import Router

__all__ = ["SnapshotRefresher"]


class SnapshotRefresher:
    """Rebuilds ``router``'s snapshot every ``interval_s`` real seconds while active."""

    def __init__(
        self, router: Router, clock: Clock, *, interval_s: float, linger_s: float = 1.0
    ) -> None:
        self._router = router
        self._clock = clock
        self._interval_s = interval_s
        self._linger_ns = round(linger_s * NS_PER_S)
        self._last_call_ns = clock() - self._linger_ns - 1
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mangaroute-refresher", daemon=True)
        self._thread.start()

    def touch(self) -> None:
        """A routed call is starting: keep (or start) refreshing."""
        self._last_call_ns = self._clock()
        if not self._wake.is_set():
            self._wake.set()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            if self._stop.wait(self._interval_s):
                return
            if self._clock() - self._last_call_ns > self._linger_ns:
                self._wake.clear()
                continue
            self._router.snapshot()
