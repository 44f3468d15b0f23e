"""A router's control plane: everything but the calls themselves.

:class:`~mangaroute.core.router.Router` is a facade in two halves. Its own class body is
the data plane - ``choose()``, ``record()``, ``release()`` and a half-open target's probe -
which reads the router's attributes directly, with no attribute hop into a part
(``docs/architecture.md``, "The router and its parts"). :class:`ControlPlane`, its base class,
is the rest, each method a thin call into the part that owns the state: building the parts
(:meth:`ControlPlane._assemble`), a reload (:meth:`~ControlPlane.reconfigure`, which also
refreshes the data plane's copies), the operators' actions
(:class:`~mangaroute.core.admin.Admin`), the events
(:class:`~mangaroute.core.events.EventBus`), the decisions in flight
(:class:`~mangaroute.core.inflight.InFlight`), the shared-state link
(:class:`~mangaroute.core.coordinator.FleetCoordinator`) and reading state. When a snapshot is
rebuilt is :class:`~mangaroute.core.schedule.RebuildSchedule`'s, the base class of this one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from mangaroute.core.admin import Admin
from mangaroute.core.builder import SnapshotBuilder
from mangaroute.core.clock import NS_PER_MS, NS_PER_S, Clock
from mangaroute.core.decision import Decision
from mangaroute.core.events import EventBus, EventListener
from mangaroute.core.fleet import FleetView, LocalSample
from mangaroute.core.inflight import InFlight
from mangaroute.core.observer import Observer
from mangaroute.core.schedule import RebuildSchedule
from mangaroute.core.settings import RouterConfig
from mangaroute.core.snapshot import AdminEvent, Reconfigured, ReloadEvent, SwitchEvent
from mangaroute.core.stats import TargetStats
from mangaroute.core.targets import Target

__all__ = ["ControlPlane"]

logger = logging.getLogger("mangaroute")


class ControlPlane(RebuildSchedule):
    """The router's methods other than the hot path (see the module docstring)."""

    _admin: Admin
    _in_flight: InFlight
    _outstanding: dict[int, Decision]
    _wall_offset: float
    # the data plane's copies of what the parts own, refreshed by _adopt
    _states: dict[str, TargetStats]
    _names: tuple[str, ...]
    _opened: dict[str, Callable[[], int]]
    _class_names: tuple[str, ...]
    _default_class: str

    def _assemble(
        self,
        config: RouterConfig,
        clock: Clock,
        observer: Observer | None,
        wall_clock: Callable[[], float],
    ) -> None:
        """Build the parts on ``config`` and the first snapshot. ``wall_clock`` (epoch
        seconds) is read once, here: wall time is this reading plus the monotonic clock's
        progress since."""
        self._clock = clock
        now = clock()
        self._wall_offset = wall_clock() - now / NS_PER_S
        window = config.window
        self._in_flight = InFlight(
            (target.name for target in config.targets),
            ttl_ns=round(window.decision_ttl_s * NS_PER_S),
            limit=window.max_outstanding,
        )
        self._outstanding = self._in_flight.decisions
        self._events = EventBus(observer, config.switcher.history if config.switcher else 100)
        self._builder = SnapshotBuilder(
            config, now, self._in_flight, self._events.history, clock, self._wall_offset
        )
        self._adopt(config)
        self._start_schedule(now)
        self._admin = Admin(
            self._builder, clock, self._rebuild_lock, self._rebuild_locked, self._moved
        )

    def _adopt(self, config: RouterConfig) -> None:
        """The data plane's copies of what the parts own (read without an attribute hop)."""
        self._states = self._builder.states
        self._names = tuple(self._states)
        self._opened = self._in_flight.opened
        self._class_names = tuple(c.name for c in config.classes)
        self._default_class = config.default_class
        self._refresh_ns = round(config.window.refresh_ms * NS_PER_MS)

    # -- reading state ------------------------------------------------------------------

    @property
    def config(self) -> RouterConfig:
        """The config the router routes by (the latest one :meth:`reconfigure` took)."""
        return self._builder.config

    @property
    def targets(self) -> tuple[Target, ...]:
        return self.config.targets

    @property
    def request_classes(self) -> tuple[str, ...]:
        return self._class_names

    @property
    def clock(self) -> Clock:
        """The clock this router reads (monotonic ns); adapters time calls with it."""
        return self._clock

    @property
    def primary(self) -> str | None:
        switcher = self._builder.switcher
        return switcher.current if switcher else None

    def unix_time(self, now_ns: int | None = None) -> float:
        """Wall-clock seconds at the router clock's reading ``now_ns`` (default: now)."""
        return self._builder.unix(self._clock() if now_ns is None else now_ns)

    def pending(self, decision_id: int) -> Decision | None:
        """The decision with this id if it is still in flight (neither recorded, released
        nor dropped); lets a caller that kept only the id (the gRPC sidecar) record it."""
        return self._outstanding.get(decision_id)

    def dropped(self, decision_id: int) -> str | None:
        """Why a decision that is no longer :meth:`pending` was dropped unreported, in words
        (``dropped unreported: older than decision_ttl_s=300 s``, or ``dropped unreported:
        one of the oldest while more than max_outstanding=10000 decisions were in flight``);
        ``None`` when it was recorded or released instead, never issued, or dropped too long
        ago to tell (the latest 10,000 drops are remembered). A front door that only has
        the id (the gRPC sidecar) tells its caller this instead of guessing."""
        return self._in_flight.explain(decision_id)

    # -- events -------------------------------------------------------------------------

    def switch_history(self) -> tuple[SwitchEvent, ...]:
        """The most recent primary switches, oldest first (bounded by ``switcher.history``)."""
        return tuple(self._events.history)

    def subscribe(self, listener: EventListener) -> Callable[[], None]:
        """Call ``listener`` with every future event - primary switches
        (:class:`SwitchEvent`), breaker transitions (:class:`BreakerEvent`), operators'
        actions (:class:`AdminEvent`) and config reloads (:class:`ReloadEvent`); returns an
        unsubscribe function. Listeners run on the thread that rebuilt the snapshot,
        outside every lock; an exception in one is logged and does not reach the router."""
        return self._events.subscribe(listener)

    # -- operators' actions (core/admin.py has the full rules) --------------------------

    def eject(
        self,
        target: str,
        reason: str,
        cooldown_s: float | None = None,
        *,
        by: str | None = None,
    ) -> AdminEvent | None:
        """Open a target's breaker now for ``cooldown_s`` (0.001 s to a week; ``None``: the
        breaker's own doubling cool-down), then probes decide. With ``by`` it is an
        operator's eject (``reason`` and ``cooldown_s`` required, exact time limit) and
        returns the published :class:`AdminEvent`; without, the failover rules' (``None``).
        Raises :class:`InvalidRequest` or :class:`UnknownTarget` and changes nothing on bad
        arguments. Details: :meth:`Admin.eject <mangaroute.core.admin.Admin.eject>`."""
        return self._admin.eject(target, reason, cooldown_s, by)

    def restore(self, target: str, reason: str, *, by: str = "operator") -> AdminEvent:
        """An operator's restore: close ``target``'s breaker now (its ejection count is
        kept); returns the published :class:`AdminEvent` (``changed=False`` if it was closed
        already). Raises :class:`InvalidRequest` or :class:`UnknownTarget` on bad arguments.
        Details: :meth:`Admin.restore <mangaroute.core.admin.Admin.restore>`."""
        return self._admin.restore(target, reason, by)

    def pin_primary(
        self, target: str, reason: str, duration_s: float, *, by: str = "operator"
    ) -> AdminEvent:
        """An operator's pin: make ``target`` the primary now and hold it there for
        ``duration_s`` (0.001 s to a week; no automatic switch away meanwhile); returns the
        published :class:`AdminEvent`. Raises :class:`NoSwitcher` without a ``[switcher]``,
        :class:`InvalidRequest` or :class:`UnknownTarget` on bad arguments. Details:
        :meth:`Admin.pin <mangaroute.core.admin.Admin.pin>`."""
        return self._admin.pin(target, reason, duration_s, by)

    def unpin_primary(self, reason: str, *, by: str = "operator") -> AdminEvent:
        """End an operator's pin now; the primary stays where it is until the switcher
        judges otherwise. Returns the published :class:`AdminEvent`; its ``changed`` is
        ``False`` when nothing was pinned. :class:`NoSwitcher` without a ``[switcher]``."""
        return self._admin.unpin(reason, by)

    # -- reloading ----------------------------------------------------------------------

    def reconfigure(self, config: RouterConfig) -> Reconfigured:
        """Route by ``config`` from now on, keeping what the router knows: targets in both
        configs keep their window, breaker and in-flight decisions (a new window shape
        starts windows afresh), added ones start fresh, removed ones get no new calls (what
        is kept: :meth:`SnapshotBuilder.reconfigure
        <mangaroute.core.builder.SnapshotBuilder.reconfigure>`). The new snapshot is built
        before this returns; ``config`` must already be validated
        (:func:`mangaroute.load_config`): an invalid file never gets here."""
        now = self._clock()
        with self._rebuild_lock:
            change = self._builder.reconfigure(config, now)
            self._adopt(config)
            self._rebuild_locked(now)
        logger.info("config reloaded from %s: %s", config.source, change.describe())
        self._notify(
            [ReloadEvent(config.source, True, change.describe(), now, self.unix_time(now))]
        )
        return change

    def reject_reload(self, source: str, reason: str) -> ReloadEvent:
        """Announce that a new config from ``source`` was refused (it did not load or
        validate, so it never reached :meth:`reconfigure`) and the running one keeps
        serving: a :class:`ReloadEvent` with ``accepted=False`` for the listeners and the
        observer (a reload metric, a watch stream). The caller logs the reason; nothing
        else changes."""
        now = self._clock()
        event = ReloadEvent(str(source), False, str(reason), now, self.unix_time(now))
        self._notify([event])
        return event

    # -- shared state -------------------------------------------------------------------

    @property
    def fleet(self) -> FleetView | None:
        """The other replicas' view merged into this router's snapshots (``None``: local
        only - no shared state attached, or it is unreachable or stale)."""
        return self._builder.coordinator.view

    def local_sample(self) -> LocalSample:
        """This replica's cumulative counters, open breakers and unsettled switch, for the
        shared-state link (:mod:`mangaroute.shared`) to publish."""
        return self._builder.local_sample(self._clock())

    def apply_fleet(self, view: FleetView | None) -> None:
        """Merge the other replicas' view into the next snapshot (``None``: back to the
        local view). Adopts the fleet's primary when no switch of this replica is waiting
        to be settled; an adopted switch is not announced (the replica that made it did)."""
        with self._rebuild_lock:
            pending, _ = self._builder.coordinator.apply(view)
            self._rebuild_soon()
        if pending:
            self._notify(pending)

    def settle_switch(
        self, proposed: tuple[str, str, str], won: bool, primary: str, epoch: int
    ) -> None:
        """The link's verdict on a proposed switch: announce it if this replica won the
        compare-and-set, else adopt the fleet's primary."""
        with self._rebuild_lock:
            events, rebuild = self._builder.coordinator.settle(proposed, won, primary, epoch)
            if rebuild:
                self._rebuild_soon()
        if events:
            self._notify(events)
