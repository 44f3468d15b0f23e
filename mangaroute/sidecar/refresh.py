"""Rebuild the router's snapshot on a background thread, so a ``Choose`` never pays for it.

In the library, the first ``choose()`` that finds the snapshot older than ``refresh_ms``
rebuilds it inline (~150 us for the MangaAssist config, more under load). A sidecar serving
MangaAssist's 40 calls/s sees a stale snapshot on nearly every call, so nearly every Choose
would carry a rebuild: measured over a Unix socket at 50 calls/s, Choose took 1.4x an empty
echo that way and 1.1x with the rebuilds here (benchmarks/bench_sidecar.py, "paced").

Every ``interval_s`` (the config's ``refresh_ms``), and at once after a breaker event, this
thread rebuilds the snapshot and hands it to ``on_snapshot`` (health publishing). The cost is
the rebuilds themselves when idle: ~200/s x ~150 us, a few percent of one core.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from mangaroute.core.router import Router
from mangaroute.core.snapshot import RouterEvent, Snapshot

logger = logging.getLogger("mangaroute.sidecar")


class Refresher:
    """Keeps ``router``'s snapshot fresh and passes each one to ``on_snapshot``."""

    def __init__(
        self, router: Router, interval_s: float, on_snapshot: Callable[[Snapshot], None]
    ) -> None:
        self._router = router
        self._interval_s = interval_s
        self._on_snapshot = on_snapshot
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._unsubscribe: Callable[[], None] | None = None

    def refresh(self) -> Snapshot:
        snapshot = self._router.snapshot()
        self._on_snapshot(snapshot)
        return snapshot

    def start(self) -> None:
        self.refresh()
        self._unsubscribe = self._router.subscribe(self._on_event)
        self._thread = threading.Thread(
            target=self._run, name="mangaroute-sidecar-refresh", daemon=True
        )
        self._thread.start()

    def stop(self, timeout_s: float | None = None) -> None:
        """Stop rebuilding; waits for a rebuild under way ``timeout_s`` at most (the thread
        is a daemon: one left behind never holds the process)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _on_event(self, event: RouterEvent) -> None:
        """A router listener: only sets a flag (it runs on the router caller's thread)."""
        if event.kind == "breaker":
            self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval_s)
            self._wake.clear()
            if self._stopping:
                return
            try:
                self.refresh()
            except Exception:  # the thread must outlive a bad rebuild; the log says why
                logger.exception("snapshot refresh failed")
