"""When a router's snapshot is rebuilt, and by whom.

The snapshot ``choose()`` reads is due for a rebuild only when something changed - a call
recorded or released, a decision handed out, a breaker moved, a fleet view merged: then
``refresh_ms`` after the last rebuild, at once for a breaker - or at a time-based instant
computed at each rebuild (:meth:`SnapshotBuilder.next_due
<mangaroute.core.builder.SnapshotBuilder.next_due>`): a window bucket with data rotating, an
open breaker's cool-down ending, an unsettled decision reaching ``decision_ttl_s``, and at
least every :data:`~mangaroute.core.builder.IDLE_REBUILD_NS` for the time-of-day parts. The
first caller that finds it due rebuilds under the rebuild lock (a background
:class:`~mangaroute.runtime.SnapshotRefresher` usually gets there first, woken through
:meth:`RebuildSchedule.on_change`); the others keep reading the previous snapshot.

:class:`RebuildSchedule` is a base class of :class:`~mangaroute.core.router.Router`
(through :class:`~mangaroute.core.control.ControlPlane`), not a part it holds: ``choose()``,
``record()`` and ``release()`` test the due time and the quiet flag on every call, and they
read them as the router's own attributes, with no attribute hop into another object
(``docs/architecture.md``, "The router and its parts"). Everything that *moves* those two
attributes lives here; what a rebuild *is* lives in
:class:`~mangaroute.core.builder.SnapshotBuilder`, and where its events go in
:class:`~mangaroute.core.events.EventBus`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from mangaroute.core.builder import SnapshotBuilder
from mangaroute.core.clock import Clock
from mangaroute.core.events import EventBus
from mangaroute.core.snapshot import RouterEvent, Snapshot

__all__ = ["RebuildSchedule"]


class RebuildSchedule:
    """The rebuild scheduling of a router (see the module docstring). A subclass calls
    :meth:`_start_schedule` once, after its builder and event bus exist."""

    _builder: SnapshotBuilder
    _clock: Clock
    _events: EventBus
    _rebuild_lock: threading.Lock
    _refresh_ns: int
    _snapshot: Snapshot
    _stale_at_ns: int
    _quiet: bool
    _rebuilds: int
    _wakers: tuple[Callable[[], None], ...]

    def _start_schedule(self, now: int) -> None:
        """Build the first snapshot at ``now`` (not counted in :attr:`rebuilds`); it is due
        ``refresh_ms`` later."""
        self._rebuild_lock = threading.Lock()
        self._quiet = False  # True from a rebuild's start until something changes
        self._wakers = ()
        self._rebuilds = 0
        self._snapshot, _ = self._builder.build(now)
        self._stale_at_ns = now + self._refresh_ns

    @property
    def current_snapshot(self) -> Snapshot:
        """The snapshot ``choose()`` reads now, without a rebuild (at most ``refresh_ms``
        old, or older while no call has come in); :meth:`snapshot` rebuilds first."""
        return self._snapshot

    @property
    def rebuild_due_ns(self) -> int:
        """The router-clock instant (ns) from which the snapshot is due for a rebuild: far
        ahead while nothing changes (see :mod:`mangaroute.core.schedule`), ``refresh_ms``
        after the last rebuild once something did, 0 after a breaker moved."""
        return self._stale_at_ns

    @property
    def rebuilds(self) -> int:
        """Snapshots built since the router was made (for benchmarks and tests)."""
        return self._rebuilds

    def refresh(self) -> Snapshot | None:
        """Rebuild the snapshot if it is due; returns the new one, or ``None`` when it was
        not due or another thread was rebuilding. What a background refresher calls."""
        now = self._clock()
        if now < self._stale_at_ns:
            return None
        if not self._rebuild_lock.acquire(blocking=False):
            return None
        try:
            return self._rebuild_locked(now)
        finally:
            self._rebuild_lock.release()

    def snapshot(self) -> Snapshot:
        """The current state, rebuilt now so that it reflects every recorded outcome."""
        now = self._clock()
        with self._rebuild_lock:
            return self._rebuild_locked(now)

    def on_change(self, wake: Callable[[], None]) -> Callable[[], None]:
        """Call ``wake()`` when the snapshot becomes due because something changed (once per
        quiet spell, and at every breaker move); returns an unsubscribe function. It runs on
        the thread of ``choose()``/``record()``: it must only set a flag or an event."""
        self._wakers = (*self._wakers, wake)

        def unsubscribe() -> None:
            self._wakers = tuple(item for item in self._wakers if item is not wake)

        return unsubscribe

    def _refresh(self, now: int) -> Snapshot:
        """``choose()`` found the snapshot due: rebuild it, unless another thread is."""
        if not self._rebuild_lock.acquire(blocking=False):
            return self._snapshot
        try:
            return self._rebuild_locked(now)
        finally:
            self._rebuild_lock.release()

    def _rebuild_locked(self, now: int, first: Sequence[RouterEvent] = ()) -> Snapshot:
        """Rebuild at ``now`` (the rebuild lock held), publishing ``first`` before the
        rebuild's own events."""
        self._quiet = True  # a change from here on is seen below, or by _stir after
        snapshot, events = self._builder.build(now)
        if first:
            events[:0] = first
        self._snapshot = snapshot
        self._rebuilds += 1
        soon = now + self._refresh_ns
        self._stale_at_ns = max(self._builder.next_due(now), soon)
        if not self._quiet:
            self._stale_at_ns = soon
        if events:
            self._notify(events)
        return snapshot

    def _stir(self) -> None:
        """Something changed after a quiet rebuild: due ``refresh_ms`` from now (runs once
        per quiet spell, so the hot paths pay one attribute test)."""
        self._quiet = False
        soon = self._clock() + self._refresh_ns
        self._stale_at_ns = min(self._stale_at_ns, soon)
        for wake in self._wakers:
            wake()

    def _rebuild_soon(self) -> None:
        """Due at once (a breaker moved, the fleet view or primary changed)."""
        self._quiet = False
        self._stale_at_ns = 0
        for wake in self._wakers:
            wake()

    def _moved(self, events: list[RouterEvent]) -> None:
        """A breaker moved outside a rebuild: rebuild at once and publish its event."""
        self._rebuild_soon()
        self._notify(events)

    def _notify(self, events: list[RouterEvent]) -> None:
        self._events.publish(events)
