"""Snapshot builds: from the targets' mutable stats to the immutable snapshot ``choose()`` reads.

:class:`SnapshotBuilder` owns what a rebuild reads and moves: each target's
:class:`~mangaroute.core.stats.TargetStats`, the primary switcher (and an operator's pin on
it), the spend ledger, the sweep of unsettled decisions and the fleet coordinator. A rebuild
(:meth:`SnapshotBuilder.build`) takes every target's view, lets the switcher judge, asks each
request class's policy for its route, and returns the snapshot with the events it caused;
:meth:`SnapshotBuilder.next_due` says when that snapshot goes out of date if nothing is
recorded. The router calls both under its rebuild lock and decides *when* to rebuild; the
builder decides *what* a rebuild is.
"""

from __future__ import annotations

from collections import deque

from mangaroute.core.breaker import Breaker, BreakerState
from mangaroute.core.clock import NS_PER_S, Clock
from mangaroute.core.coordinator import FleetCoordinator
from mangaroute.core.fleet import FleetSpend, LocalBreaker, LocalSample
from mangaroute.core.histogram import LogScale
from mangaroute.core.inflight import InFlight
from mangaroute.core.policy.context import PolicyContext, SpendLedger
from mangaroute.core.policy.switcher import PrimarySwitcher
from mangaroute.core.settings import RouterConfig
from mangaroute.core.snapshot import (
    AdminEvent,
    Reconfigured,
    Route,
    RouterEvent,
    Snapshot,
    SwitchEvent,
)
from mangaroute.core.stats import TargetStats
from mangaroute.core.targets import Target
from mangaroute.core.window import SlidingWindow

__all__ = ["IDLE_REBUILD_NS", "SWEEP_EVERY_NS", "SnapshotBuilder"]

IDLE_REBUILD_NS = NS_PER_S
"""The longest a router goes without a rebuild while nothing changes: time-of-day schedules
and the spend quarters read the rebuild's wall time, and a switcher's ``return_after_s``
counts from rebuilds. One rebuild a second costs ~0.02 % of a core."""
SWEEP_EVERY_NS = NS_PER_S
"""How often a rebuild sweeps decisions older than ``decision_ttl_s`` (sooner when more than
``max_outstanding`` are in flight)."""


class SnapshotBuilder:
    """What a rebuild reads and moves (see the module docstring). Not thread-safe: the
    router calls it under its rebuild lock; ``record()`` reaches ``states`` under each
    target's own lock."""

    __slots__ = (
        "_in_flight",
        "_last_sweep_ns",
        "_ledger",
        "_scale",
        "config",
        "coordinator",
        "history",
        "states",
        "switcher",
        "wall_offset",
    )

    def __init__(
        self,
        config: RouterConfig,
        now: int,
        in_flight: InFlight,
        history: deque[SwitchEvent],
        clock: Clock,
        wall_offset: float,
    ) -> None:
        """``wall_offset``: wall time (epoch seconds) minus the router clock's reading."""
        self.config = config
        self.wall_offset = wall_offset
        self._scale = LogScale(config.window.relative_error)
        self.states: dict[str, TargetStats] = {t.name: self._fresh(t, now) for t in config.targets}
        """Each target's mutable stats, by name (replaced whole on a reload)."""
        self.switcher = PrimarySwitcher(config.switcher) if config.switcher else None
        self.history = history
        self._in_flight = in_flight
        self._ledger = SpendLedger()
        self._last_sweep_ns = now
        self.coordinator = FleetCoordinator(
            self.switcher, history, frozenset(self.states), clock, self.unix
        )

    def unix(self, now: int) -> float:
        """Wall-clock seconds at the router clock's reading ``now``."""
        return self.wall_offset + now / NS_PER_S

    def _fresh(self, target: Target, now: int) -> TargetStats:
        window = self.config.window
        bucket_ns = round(window.bucket_s * NS_PER_S)
        return TargetStats(
            target,
            SlidingWindow(self._scale, buckets=window.buckets, bucket_ns=bucket_ns, now_ns=now),
            Breaker(self.config.breaker, now),
        )

    # -- a rebuild ------------------------------------------------------------------------

    def build(self, now: int) -> tuple[Snapshot, list[RouterEvent]]:
        """The snapshot at ``now`` and the events building it caused (breaker moves, a
        switch, a pin lapsing), in the order they happened."""
        in_flight = self._in_flight
        if now - self._last_sweep_ns >= SWEEP_EVERY_NS or in_flight.over_limit():
            self._last_sweep_ns = now
            in_flight.sweep(now)
        counts = in_flight.counts()
        events: list[RouterEvent] = []
        fleet = self.coordinator.view
        min_samples = self.config.window.min_samples
        views = {
            name: state.view(
                now, counts[name], events, min_samples, self._scale, fleet, self.wall_offset
            )
            for name, state in self.states.items()
        }
        primary = None
        pin = None
        switcher = self.switcher
        if switcher is not None:
            lapsed = switcher.lapse(now)
            if lapsed is not None:
                unix = self.unix(now)
                events.append(
                    AdminEvent(
                        "pin_lapsed", lapsed.target, lapsed.reason, lapsed.by, None, True, now, unix
                    )
                )
            pin = switcher.pinned
            previous = switcher.current
            switched = switcher.evaluate(views, now)
            primary = switcher.current
            if switched is not None:
                event = SwitchEvent(previous, switched[0], switched[1], now, self.unix(now))
                if fleet is None:
                    self.history.append(event)
                    events.append(event)
                else:
                    self.coordinator.propose(event)
        routes: dict[str, Route] = {}
        policies = self.config.policies
        context = self._context(now)
        for request_class in self.config.classes:
            eligible = [views[name] for name in request_class.targets]
            probes = tuple(v.name for v in eligible if v.breaker is BreakerState.HALF_OPEN)
            routes[request_class.name] = policies[request_class.policy].route(
                request_class.name, eligible, primary, probes, context
            )
        snapshot = Snapshot(
            now,
            tuple(views.values()),
            routes,
            primary,
            self.config.window.window_s,
            fleet,
            pin,
        )
        return snapshot, events

    def next_due(self, now: int) -> int:
        """When the snapshot built at ``now`` goes out of date with nothing recorded: the
        next bucket boundary while a window holds data (it may drop a bucket), an open
        breaker's reopening, a pin's time limit, the oldest unsettled decision reaching
        ``decision_ttl_s`` (swept at most every :data:`SWEEP_EVERY_NS`), or
        :data:`IDLE_REBUILD_NS` from ``now``; ``now`` itself when it cannot tell (a
        concurrent ``choose()`` resized the in-flight table while it looked)."""
        window = self.config.window
        bucket_ns = round(window.bucket_s * NS_PER_S)
        due = now + IDLE_REBUILD_NS
        pin = self.switcher.pinned if self.switcher is not None else None
        if pin is not None and pin.until_ns < due:
            due = pin.until_ns
        boundary = (now // bucket_ns + 1) * bucket_ns
        for state in self.states.values():
            breaker = state.breaker
            if breaker.state is BreakerState.OPEN and breaker.reopen_ns < due:
                due = breaker.reopen_ns
            if boundary < due and any(state.window.totals.counts):
                due = boundary
        try:
            oldest = next(iter(self._in_flight.decisions.values()), None)
        except RuntimeError:  # resized by a concurrent choose(): look again soon
            return now
        if oldest is not None:
            ttl_ns = round(window.decision_ttl_s * NS_PER_S)
            expires = max(oldest.created_ns + ttl_ns, self._last_sweep_ns + SWEEP_EVERY_NS)
            due = min(due, expires)
        return due

    def _context(self, now: int) -> PolicyContext:
        """Wall time and the pay-per-use spend so far (the fleet's, with shared state), for
        parts that need them."""
        unix_s = self.unix(now)
        self._ledger.observe(unix_s, self.spend_usd())
        fleet = self.coordinator.view
        if fleet is not None and fleet.spend_by_quarter:
            return PolicyContext(now, unix_s, FleetSpend(self._ledger, fleet.spend_by_quarter))
        return PolicyContext(now, unix_s, self._ledger)

    def spend_usd(self) -> float:
        """What this replica's calls cost since it started (USD, token prices)."""
        return sum(
            state.target.pricing.token_cost_usd(
                state.input_total,
                state.output_total,
                state.cache_read_total,
                state.cache_write_total,
            )
            for state in self.states.values()
        )

    def local_sample(self, now: int) -> LocalSample:
        """This replica's cumulative counters, open breakers and unsettled switch at ``now``,
        for the shared-state link to publish."""
        breakers = []
        for name, state in self.states.items():
            breaker = state.breaker
            with state.lock:
                current, reason, reopen_ns = breaker.state, breaker.reason, breaker.reopen_ns
            if current is not BreakerState.CLOSED:
                wait_s = max(0.0, (reopen_ns - now) / NS_PER_S)
                if current is BreakerState.HALF_OPEN:
                    wait_s = 0.0
                breakers.append(LocalBreaker(name, current, reason, wait_s))
        states = self.states
        return LocalSample(
            unix_s=self.unix(now),
            tokens={
                n: s.input_total + s.cache_write_total + s.output_total for n, s in states.items()
            },
            requests={n: s.requests_total for n, s in states.items()},
            spend_usd=self.spend_usd(),
            breakers=tuple(breakers),
            primary=self.switcher.current if self.switcher else None,
            proposal=self.coordinator.proposed(),
            primary_epoch=self.coordinator.epoch,
        )

    # -- a reload -------------------------------------------------------------------------

    def reconfigure(self, config: RouterConfig, now: int) -> Reconfigured:
        """Build from ``config`` from now on, keeping what the router knows; the caller
        rebuilds (:meth:`Router.reconfigure <mangaroute.core.router.Router.reconfigure>`).

        Targets that are in both configs keep their window (latency and outcome history),
        breaker (state and ejections) and in-flight decisions - their settings (prices,
        capacity, prior, model id) are the new config's; added targets start fresh; removed
        targets get no new calls, and their in-flight decisions are released when recorded.
        A new ``[router]`` window shape (``window_s``, ``bucket_s``, ``relative_error``)
        starts every window afresh (breakers are kept); unsettled decisions are swept by the
        new ``decision_ttl_s`` and ``max_outstanding``. The switcher keeps its current
        primary while that target still exists."""
        before = self.config
        window = config.window
        fresh_windows = (window.window_s, window.bucket_s, window.relative_error) != (
            before.window.window_s,
            before.window.bucket_s,
            before.window.relative_error,
        )
        self.config = config
        if fresh_windows:
            self._scale = LogScale(window.relative_error)
        bucket_ns = round(window.bucket_s * NS_PER_S)
        states: dict[str, TargetStats] = {}
        kept, added = [], []
        for target in config.targets:
            state = self.states.get(target.name)
            if state is None:
                added.append(target.name)
                state = self._fresh(target, now)
            else:
                kept.append(target.name)
                with state.lock:
                    state.target = target
                    state.breaker.set_policy(config.breaker)
                    if fresh_windows:
                        state.window = SlidingWindow(
                            self._scale, buckets=window.buckets, bucket_ns=bucket_ns, now_ns=now
                        )
                    state.dirty = True
            states[target.name] = state
        removed = [name for name in self.states if name not in states]
        self._in_flight.track(states)
        self._in_flight.set_limits(
            ttl_ns=round(window.decision_ttl_s * NS_PER_S), limit=window.max_outstanding
        )
        self.states = states
        if config.switcher != before.switcher:
            self._replace_switcher(config)
        self.coordinator.reconfigure(self.switcher, frozenset(states))
        return Reconfigured(config.source, tuple(added), tuple(removed), tuple(kept))

    def _replace_switcher(self, config: RouterConfig) -> None:
        """A new ``[switcher]``: the primary in use stays primary, and an operator's pin
        outlives the reload, while their target still exists."""
        old = self.switcher
        current = old.current if old else None
        pinned = old.pinned if old else None
        self.switcher = PrimarySwitcher(config.switcher) if config.switcher else None
        if self.switcher is not None and current is not None and current in self.states:
            self.switcher.current = current
        if self.switcher is not None and pinned is not None and pinned.target in self.states:
            self.switcher.pin(pinned)
