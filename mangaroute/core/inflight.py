"""The in-flight ledger: decisions ``choose()`` handed out that nobody has settled yet.

A decision is settled when it is recorded, released, or dropped unreported by the sweep
(older than ``decision_ttl_s``, or the oldest beyond ``max_outstanding``). Snapshots need each
target's in-flight count (the ``concurrency`` capacity reads it); counting it by scanning
every outstanding decision at every rebuild made unreported decisions cost CPU: with 10,000
of them an idle sidecar went from 7 % to about 25 % of a core and ``choose()``'s p99.9 from
37 us to 1.2 ms (issue 13). So the ledger keeps two running totals per target, *opened* and
*settled*, and a rebuild reads the counts in O(targets); the sweep walks from the oldest
decision and stops at the first one it keeps, so it costs O(decisions dropped).

No lock on the hot path. Both totals are ``itertools.count`` objects: ``next()`` on one is
a single C call, atomic under the GIL (the router's decision ids rely on the same property),
and a dict insert or ``pop`` is atomic too. A decision is counted as opened before it is
stored and as settled only by the one caller whose ``pop`` returned it, so every decision is
settled at most once and the counts are exact whenever the calls in progress have finished.
Reading a total with ``next()`` also adds one to it; :meth:`InFlight.counts` reads both
totals of every target once per call (under a lock), so the reads cancel out in
``opened - settled``. Settled totals are read first: a decision opened and settled between
the two reads then counts as in flight for that one snapshot, never as -1.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable
from itertools import islice

from mangaroute.core.clock import NS_PER_S
from mangaroute.core.decision import Decision

DECISION_TTL = "decision_ttl_s"
"""Why a decision was dropped: older than ``decision_ttl_s``."""
MAX_OUTSTANDING = "max_outstanding"
"""Why a decision was dropped: the oldest while more than ``max_outstanding`` were open."""
DROPS_REMEMBERED = 10_000
"""How many of the latest dropped decisions :meth:`InFlight.dropped` can explain."""
_SWEEP_CHUNK = 64


class InFlight:
    """Open decisions by id, with per-target counts kept as they change."""

    __slots__ = ("_dropped", "_limit", "_read_lock", "_settled", "_ttl_ns", "decisions", "opened")

    def __init__(self, names: Iterable[str], *, ttl_ns: int, limit: int) -> None:
        self.decisions: dict[int, Decision] = {}
        """Open decisions, oldest first. The router stores into it directly (after calling
        ``opened``), to keep ``choose()`` free of a method call."""
        self.opened: dict[str, Callable[[], int]] = {
            name: itertools.count().__next__ for name in names
        }
        """Per target: call once for every decision stored into :attr:`decisions`."""
        self._settled = {name: itertools.count().__next__ for name in self.opened}
        self._read_lock = threading.Lock()
        self._ttl_ns = ttl_ns
        self._limit = limit
        self._dropped: dict[int, str] = {}

    def set_limits(self, *, ttl_ns: int, limit: int) -> None:
        """Sweep by a reloaded config's ``decision_ttl_s`` and ``max_outstanding`` from now
        on (decisions already in flight are judged by the new limits at the next sweep)."""
        self._ttl_ns = ttl_ns
        self._limit = limit

    def track(self, names: Iterable[str]) -> None:
        """Also count decisions on ``names`` (targets added by a config reload). The
        counter tables are replaced, not changed in place, so readers never see them
        resized; targets no longer configured keep their counters until their decisions
        are settled or swept."""
        new = [name for name in names if name not in self.opened]
        if not new:
            return
        with self._read_lock:
            self.opened = {**self.opened, **{n: itertools.count().__next__ for n in new}}
            self._settled = {**self._settled, **{n: itertools.count().__next__ for n in new}}

    def open(self, decision: Decision) -> None:
        """Count ``decision`` as in flight on its target until it is settled."""
        self.opened[decision.target.name]()
        self.decisions[decision.decision_id] = decision

    def settle(self, decision_id: int) -> Decision | None:
        """Take the open decision with this id out of the ledger; ``None`` when it is not
        open (settled already, dropped, or never issued)."""
        decision = self.decisions.pop(decision_id, None)
        if decision is not None:
            self._settled[decision.target.name]()
        return decision

    def counts(self) -> dict[str, int]:
        """Open decisions per target name."""
        with self._read_lock:
            settled = {name: tick() for name, tick in self._settled.items()}
            return {name: tick() - settled[name] for name, tick in self.opened.items()}

    def over_limit(self) -> bool:
        return len(self.decisions) > self._limit

    def sweep(self, now_ns: int) -> int:
        """Drop the decisions never settled that are older than the TTL, and the oldest
        while more than the limit are open; returns how many. Not thread-safe against
        itself (the router sweeps under its rebuild lock); safe against everything else."""
        decisions = self.decisions
        dropped = 0
        while True:
            try:
                oldest = list(islice(decisions, _SWEEP_CHUNK))
            except RuntimeError:  # resized by a concurrent choose(): read again
                continue
            for decision_id in oldest:
                decision = decisions.get(decision_id)
                if decision is None:
                    continue  # settled meanwhile
                if len(decisions) > self._limit:
                    why = MAX_OUTSTANDING
                elif now_ns - decision.created_ns >= self._ttl_ns:
                    why = DECISION_TTL
                else:
                    return dropped
                if self.settle(decision_id) is not None:
                    self._remember(decision_id, why)
                    dropped += 1
            if len(oldest) < _SWEEP_CHUNK:
                return dropped

    def dropped(self, decision_id: int) -> str | None:
        """Which setting made the sweep drop this decision unreported (:data:`DECISION_TTL`
        or :data:`MAX_OUTSTANDING`); ``None`` if it did not, or too long ago to tell (only
        the latest :data:`DROPS_REMEMBERED` are kept)."""
        return self._dropped.get(decision_id)

    def explain(self, decision_id: int) -> str | None:
        """:meth:`dropped` in words, quoting the setting with its value now (what
        :meth:`Router.dropped <mangaroute.core.router.Router.dropped>` says)."""
        why = self._dropped.get(decision_id)
        if why == DECISION_TTL:
            return f"dropped unreported: older than decision_ttl_s={self._ttl_ns / NS_PER_S:g} s"
        if why == MAX_OUTSTANDING:
            return (
                "dropped unreported: one of the oldest while more than "
                f"max_outstanding={self._limit} decisions were in flight"
            )
        return None

    def _remember(self, decision_id: int, why: str) -> None:
        dropped = self._dropped
        if len(dropped) >= DROPS_REMEMBERED:
            del dropped[next(iter(dropped))]
        dropped[decision_id] = why
