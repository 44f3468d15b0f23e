"""Rebuild a router's snapshot off the callers' threads, only when it is due.

``Router.choose()`` rebuilds a due snapshot inline: pure Python over every target and class,
~150 us for the MangaAssist config, so a caller that meets a due snapshot pays for it. The
refresher rebuilds just when the router says the snapshot is due
(:attr:`~mangaroute.core.router.Router.rebuild_due_ns`) and sleeps until then, or until the
router reports a change (:meth:`~mangaroute.core.router.Router.on_change`). While nothing
happens that is at most one rebuild a second; before issue 14 the sidecar rebuilt every
``refresh_ms`` (200 a second, 8 % of a core idle) and ``RoutedClient`` lingered a second after
each call doing the same.

One class serves both ``RoutedClient`` and the sidecar (which hands each new snapshot to its
health publisher through ``on_snapshot``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from mangaroute.core.clock import NS_PER_S
from mangaroute.core.router import Router
from mangaroute.core.snapshot import Snapshot
from mangaroute.runtime.worker import PeriodicWorker

__all__ = ["SnapshotRefresher"]

logger = logging.getLogger("mangaroute.runtime")

MAX_SLEEP_S = 60.0
"""The longest the thread sleeps without looking (a router clock that jumps, a fake one)."""

BUSY_RETRY_S = 0.001
"""How soon to look again when the snapshot is due but another thread holds the rebuild."""


class SnapshotRefresher:
    """Keeps ``router``'s snapshot fresh from a daemon thread; ``on_snapshot`` receives each
    snapshot it builds. ``min_interval_s`` spaces rebuilds at least that far apart (the
    router's own ``refresh_ms`` already does; a sidecar may ask for more)."""

    def __init__(
        self,
        router: Router,
        *,
        min_interval_s: float = 0.0,
        on_snapshot: Callable[[Snapshot], None] | None = None,
        name: str = "mangaroute-refresher",
        time_scale: float = 1.0,
    ) -> None:
        """``time_scale``: real seconds per second of the router's clock (a test's scaled
        clock; 1 in production)."""
        self._router = router
        self._min_s = max(0.0, min_interval_s)
        self._on_snapshot = on_snapshot
        self._scale = time_scale
        self._worker = PeriodicWorker(name, MAX_SLEEP_S, self._work, delay=self._delay, log=logger)
        self._unsubscribe: Callable[[], None] | None = None

    @property
    def running(self) -> bool:
        return self._worker.running

    def start(self) -> Snapshot:
        """Build a snapshot now (handed to ``on_snapshot``), then keep it fresh."""
        snapshot = self._router.snapshot()
        if self._on_snapshot is not None:
            self._on_snapshot(snapshot)
        if self._unsubscribe is None:
            self._unsubscribe = self._router.on_change(self._worker.wake)
        self._worker.start()
        return snapshot

    def stop(self, timeout_s: float = 2.0) -> bool:
        """Stop rebuilding; waits ``timeout_s`` at most for a rebuild under way (the thread
        is a daemon: one left behind never holds the process). True if the thread ended."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        return self._worker.stop(timeout_s)

    def close(self) -> None:
        self.stop()

    def _work(self) -> None:
        snapshot = self._router.refresh()
        if snapshot is not None and self._on_snapshot is not None:
            self._on_snapshot(snapshot)

    def _delay(self) -> float:
        router = self._router
        wait_s = (router.rebuild_due_ns - router.clock()) / NS_PER_S * self._scale
        if wait_s <= 0:  # still due: another thread is rebuilding it; do not spin
            wait_s = BUSY_RETRY_S
        return min(max(wait_s, self._min_s), MAX_SLEEP_S)
