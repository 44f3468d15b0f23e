"""The primary-switch protocol between replicas that share state.

A lone router switches its primary and announces it. Replicas with shared state
(:mod:`mangaroute.shared`) agree instead: a replica's switch becomes a *proposal* that the
shared-state link settles by compare-and-set on the store's epoch - the winner announces it,
the others adopt the fleet's primary (recorded in their switch history as ``fleet(<reason>)``,
not announced again). A replica that switched while alone (before its first sync, or while
the store was down) proposes its primary once the fleet has none on record; when the fleet
view goes away with a proposal pending, nobody will settle it, so it is announced locally.

:class:`FleetCoordinator` holds that state - the merged fleet view, the store's epoch, the
pending proposal - and returns the events to announce; the router calls it under its rebuild
lock and announces outside it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from mangaroute.core.clock import Clock
from mangaroute.core.fleet import FleetView
from mangaroute.core.policy.switcher import PrimarySwitcher
from mangaroute.core.snapshot import RouterEvent, SwitchEvent

__all__ = ["FleetCoordinator"]


class FleetCoordinator:
    """The fleet view and the switch proposal of one replica (see the module docstring).
    Not thread-safe: the router calls it under its rebuild lock."""

    __slots__ = (
        "_announced",
        "_clock",
        "_history",
        "_known",
        "_switcher",
        "_unix_time",
        "epoch",
        "proposal",
        "view",
    )

    def __init__(
        self,
        switcher: PrimarySwitcher | None,
        history: deque[SwitchEvent],
        known: frozenset[str],
        clock: Clock,
        unix_time: Callable[[int], float],
    ) -> None:
        self._switcher = switcher
        self._history = history
        self._known = known
        self._clock = clock
        self._unix_time = unix_time
        self._announced = False
        self.view: FleetView | None = None
        """The other replicas' view merged into snapshots (``None``: local only)."""
        self.epoch = 0
        """The store's primary epoch this replica last saw."""
        self.proposal: SwitchEvent | None = None
        """This replica's switch waiting for the fleet's verdict."""

    def reconfigure(self, switcher: PrimarySwitcher | None, known: frozenset[str]) -> None:
        """A config reload: the switcher and the targets are the new config's."""
        self._switcher = switcher
        self._known = known

    def apply(self, view: FleetView | None) -> tuple[list[RouterEvent], bool]:
        """Take a new fleet view: (events to announce, whether the primary changed)."""
        pending: list[RouterEvent] = []
        if view is None and self.proposal is not None:
            # nobody will settle it: announce it locally, as a lone router would
            event, self.proposal = self.proposal, None
            self._history.append(event)
            pending.append(event)
        self.view = view
        changed = False
        if view is not None and self.proposal is None:
            # the store's epoch, even when lower than ours: a store that lost its data (a
            # replaced cache node) starts again from 0
            self.epoch = view.primary_epoch
            if view.primary is not None:
                changed = self._adopt(view.primary, view.primary_reason)
            else:
                self._publish_lone_switch()
        return pending, changed

    def settle(
        self, proposed: tuple[str, str, str], won: bool, primary: str, epoch: int
    ) -> tuple[list[RouterEvent], bool]:
        """The link's verdict on a proposal: (events to announce, whether to rebuild)."""
        event = self.proposal
        if event is None or (event.from_target, event.to_target, event.reason) != proposed:
            return [], False  # superseded by a newer proposal: the next sync settles that one
        self.proposal = None
        announced, self._announced = self._announced, False
        self.epoch = epoch
        if not won:
            return [], self._adopt(primary)
        if announced:
            return [], True
        self._history.append(event)
        return [event], True

    def propose(self, event: SwitchEvent) -> None:
        """A switch this replica made while the fleet view is attached."""
        pending = self.proposal
        self._announced = False
        if pending is not None:
            if pending.from_target == event.to_target:
                self.proposal = None  # switched back before anyone heard of it
                return
            event = SwitchEvent(
                pending.from_target, event.to_target, event.reason, event.at_ns, event.unix_time
            )
        self.proposal = event

    def proposed(self) -> tuple[str, str, str] | None:
        """The pending proposal as the link publishes it (from, to, reason)."""
        proposal = self.proposal
        if proposal is None:
            return None
        return (proposal.from_target, proposal.to_target, proposal.reason)

    def _publish_lone_switch(self) -> None:
        """The fleet has no primary on record but this replica switched while it was alone:
        propose its primary, without announcing the switch a second time."""
        switcher = self._switcher
        if switcher is None or switcher.current == switcher.settings.primary:
            return
        history = self._history
        last = history[-1] if history else None
        reason = last.reason if last is not None and last.to_target == switcher.current else ""
        now = self._clock()
        self.proposal = SwitchEvent(
            switcher.settings.primary,
            switcher.current,
            reason or "local",
            now,
            self._unix_time(now),
        )
        self._announced = True

    def _adopt(self, primary: str | None, reason: str = "") -> bool:
        """Follow the fleet's primary: recorded in the switch history (reason
        ``fleet(<the deciding replica's reason>)``), not announced. True if it changed."""
        switcher = self._switcher
        if (
            switcher is None
            or primary is None
            or primary == switcher.current
            or primary not in self._known
        ):
            return False
        now = self._clock()
        self._history.append(
            SwitchEvent(switcher.current, primary, f"fleet({reason})", now, self._unix_time(now))
        )
        switcher.adopt(primary, now)
        return True
