"""One replica's side of shared state: diff the router's counters, exchange, merge.

:meth:`FleetLink.sync` is one step - the background thread of
:class:`~mangaroute.shared.SharedState` calls it every ``sync_interval_ms``, the simulator
calls it in virtual time. It never raises because the store is down: it keeps the deltas it
could not publish (usage for as long as it is inside the window, spend until it lands), and
once no sync has succeeded for ``stale_after_ms`` it hands the router ``None`` - route on the
local view - and says so once in the log. The first successful sync after that merges again.

A sync that meets data it cannot decode (``primary.epoch = "x"``, a usage count
``"not-a-number"``) is a failed sync too: counted in ``failures``, named in ``last_error``,
logged at most once a minute (:data:`BAD_DATA_LOG_EVERY_S`), not merged - so the staleness
bound drops the fleet's view if it goes on - and the store deletes the bad fields at the next
sync. The deltas the store refused are sent again; those it took are not.

Usage deltas are stamped with the bucket of the sync that collected them, so a replica's
traffic lands in the shared buckets at most one sync interval late; a replica subtracts what it
published itself from the fleet's totals, so its own traffic is counted once (locally, exactly).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from mangaroute.core.fleet import FleetEjection, FleetView, SharedSettings
from mangaroute.core.router import Router
from mangaroute.runtime import RateLimitedLog
from mangaroute.shared.store import (
    DAY_QUARTERS,
    QUARTER_S,
    BadField,
    EjectionClaim,
    Inbound,
    Outbound,
    Proposal,
    Store,
    StoreUnavailable,
)

logger = logging.getLogger("mangaroute.shared")

SPEND_KEEP_QUARTERS = 2 * DAY_QUARTERS
BAD_DATA_LOG_EVERY_S = 60.0
"""Undecodable data is logged when first met, then at most once per this many seconds
while it lasts (with the number of syncs it failed in between)."""


def default_replica_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"


@dataclass(frozen=True, slots=True)
class LinkStatus:
    """How the link is doing (also exported as metrics by :class:`SharedState`)."""

    replica: str
    deployment: str
    connected: bool
    """A fleet view is merged (the last success is within the staleness bound)."""
    last_ok_unix: float | None
    syncs: int
    failures: int
    commands: int
    replicas: int
    last_error: str | None
    undecodable: int = 0
    """Syncs that met data they could not decode (counted in ``failures`` too)."""


class FleetLink:
    """Publishes one router's deltas and merges the fleet's view into it."""

    def __init__(self, router: Router, store: Store, settings: SharedSettings) -> None:
        self.router = router
        self.store = store
        self.settings = settings
        self.replica = settings.replica_id or default_replica_id()
        window = router.config.window
        self._bucket_s = window.bucket_s
        self._window_s = window.window_s
        self._stale_s = settings.stale_after_ms / 1000.0
        sample = router.local_sample()
        self._last_tokens = dict(sample.tokens)
        self._last_requests = dict(sample.requests)
        self._last_spend = sample.spend_usd
        self._started_unix = sample.unix_s
        self._pending_usage: dict[int, dict[str, list[int]]] = {}
        self._pending_spend: dict[int, float] = defaultdict(float)
        self._own_usage: dict[int, dict[str, list[int]]] = {}
        self._own_spend: dict[int, float] = defaultdict(float)
        self._final_usage: dict[int, dict[str, tuple[int, int]]] = {}
        self._fleet_spend: dict[int, float] = {}
        self._held: set[str] = set()
        self._expired: tuple[str, ...] = ()
        self._syncs = 0
        self._ok_syncs = 0
        self._failures = 0
        self._commands = 0
        self._replicas = 1
        self._last_ok: float | None = None
        self._last_error: str | None = None
        self._fallback_logged = False
        self._undecodable = 0
        self._bad_data_warning = RateLimitedLog(
            BAD_DATA_LOG_EVERY_S, lambda: round(router.unix_time() * 1e9), logger
        )

    # -- one step -----------------------------------------------------------------------

    def sync(self) -> bool:
        """Publish, read, merge; ``False`` when the store was unavailable."""
        sample = self.router.local_sample()
        now = sample.unix_s
        self._syncs += 1
        self._collect(sample.tokens, sample.requests, sample.spend_usd, now)
        claims = tuple(
            EjectionClaim(
                b.target,
                b.state.value,
                b.reason,
                now + b.reopen_in_s + self._stale_s,
            )
            for b in sample.breakers
        )
        holding = {claim.target for claim in claims}
        proposal = None
        if sample.proposal is not None:
            proposal = Proposal(sample.primary_epoch, *sample.proposal)
        out = Outbound(
            replica=self.replica,
            unix_s=now,
            usage={
                b: {t: (v[0], v[1]) for t, v in d.items()} for b, d in self._pending_usage.items()
            },
            usage_ttl_s=2 * self._window_s + self._stale_s,
            spend=dict(self._pending_spend),
            claims=claims,
            released=tuple(sorted(self._held - holding)),
            expired=self._expired,
            proposal=proposal,
            read_buckets=self._buckets_to_read(now),
            read_spend_days=self._spend_days(now),
            live_after_unix=now - max(self._stale_s, 3 * self.settings.sync_interval_ms / 1000),
            key_ttl_s=self.settings.key_ttl_s,
        )
        try:
            inbound = self.store.exchange(out)
        except StoreUnavailable as exc:
            self._failed(now, str(exc))
            return False
        self._published(out, inbound)
        self._held = holding
        self._commands += inbound.commands
        if inbound.undecodable:
            if not any(bad.key == "primary" for bad in inbound.undecodable):
                self._settle(out, inbound)  # the verdict stands: the switch happened or not
            self._unreadable(now, inbound.undecodable)
            return False
        self._merge(inbound, out, now)
        return True

    def status(self) -> LinkStatus:
        return LinkStatus(
            replica=self.replica,
            deployment=self.settings.deployment,
            connected=self.router.fleet is not None,
            last_ok_unix=self._last_ok,
            syncs=self._syncs,
            failures=self._failures,
            commands=self._commands,
            replicas=self._replicas,
            last_error=self._last_error,
            undecodable=self._undecodable,
        )

    def fall_back(self) -> None:
        """Stop merging (the link is closing): the router routes on its local view."""
        self.router.apply_fleet(None)

    # -- outbound -----------------------------------------------------------------------

    def _collect(
        self, tokens: Mapping[str, int], requests: Mapping[str, int], spend: float, now: float
    ) -> None:
        bucket = int(now // self._bucket_s)
        for name, total in tokens.items():
            d_tokens = total - self._last_tokens.get(name, 0)
            d_requests = requests[name] - self._last_requests.get(name, 0)
            if d_tokens or d_requests:
                cell = self._pending_usage.setdefault(bucket, {}).setdefault(name, [0, 0])
                cell[0] += d_tokens
                cell[1] += d_requests
            self._last_tokens[name] = total
            self._last_requests[name] = requests[name]
        d_spend = spend - self._last_spend
        if d_spend > 0:
            self._pending_spend[int(now // QUARTER_S)] += d_spend
        self._last_spend = spend
        oldest = self._oldest_bucket(now)
        for old in [b for b in self._pending_usage if b < oldest]:
            del self._pending_usage[old]  # outside the window by now: nobody would read it

    def _published(self, out: Outbound, inbound: Inbound) -> None:
        """What the store took is this replica's own; what it refused waits for the next
        sync (the deltas collected since are added to it then)."""
        self._pending_usage.clear()
        for bucket, cells in out.usage.items():
            own = self._own_usage.setdefault(bucket, {})
            refused = inbound.rejected_usage.get(bucket, {})
            for name, (d_tokens, d_requests) in cells.items():
                back = refused.get(name, (0, 0))
                cell = own.setdefault(name, [0, 0])
                cell[0] += d_tokens - back[0]
                cell[1] += d_requests - back[1]
                if back[0] or back[1]:
                    self._pending_usage.setdefault(bucket, {})[name] = list(back)
        self._pending_spend.clear()
        for quarter, usd in out.spend.items():
            back_usd = inbound.rejected_spend.get(quarter, 0.0)
            self._own_spend[quarter] += usd - back_usd
            if back_usd:
                self._pending_spend[quarter] = back_usd

    def _oldest_bucket(self, now: float) -> int:
        return int((now - self._window_s) // self._bucket_s) + 1

    def _buckets_to_read(self, now: float) -> tuple[int, ...]:
        first = self._oldest_bucket(now)
        last = int(now // self._bucket_s)
        return tuple(b for b in range(first, last + 1) if b not in self._final_usage)

    def _spend_days(self, now: float) -> tuple[int, ...]:
        if self._ok_syncs % self.settings.spend_every:
            return ()
        today = int(now // QUARTER_S) // DAY_QUARTERS
        return (today - 1, today)

    # -- inbound ------------------------------------------------------------------------

    def _merge(self, inbound: Inbound, out: Outbound, now: float) -> None:
        self._ok_syncs += 1
        self._last_ok = now
        self._last_error = None
        if self._fallback_logged:
            logger.warning(
                "shared state for deployment %r is back: merging the fleet's view again",
                self.settings.deployment,
            )
            self._fallback_logged = False
        self._replicas = inbound.replicas
        settle = now - self._stale_s
        for bucket, cells in inbound.usage.items():
            if (bucket + 1) * self._bucket_s < settle:
                self._final_usage[bucket] = cells
        oldest = self._oldest_bucket(now)
        for table in (self._final_usage, self._own_usage):
            for old in [b for b in table if b < oldest]:
                del table[old]
        tokens: dict[str, float] = defaultdict(float)
        requests: dict[str, float] = defaultdict(float)
        for bucket in range(oldest, int(now // self._bucket_s) + 1):
            cells = self._final_usage.get(bucket) or inbound.usage.get(bucket) or {}
            own = self._own_usage.get(bucket, {})
            for name, (fleet_tokens, fleet_requests) in cells.items():
                mine = own.get(name, (0, 0))
                tokens[name] += max(0, fleet_tokens - mine[0])
                requests[name] += max(0, fleet_requests - mine[1])
        span_s = max(self._bucket_s, now - max(oldest * self._bucket_s, self._started_unix))
        if inbound.spend is not None:
            self._fleet_spend = inbound.spend
        first_quarter = int(now // QUARTER_S) - SPEND_KEEP_QUARTERS
        for old in [q for q in self._own_spend if q < first_quarter]:
            del self._own_spend[old]
        others_spend = {
            quarter: usd - self._own_spend.get(quarter, 0.0)
            for quarter, usd in self._fleet_spend.items()
            if quarter >= first_quarter and usd - self._own_spend.get(quarter, 0.0) > 1e-9
        }
        ejections = []
        expired = []
        for entry in inbound.ejections:
            if entry.until_unix <= now:
                expired.append(entry.field)
            elif entry.replica != self.replica:
                ejections.append(
                    FleetEjection(entry.target, entry.replica, entry.state, entry.reason)
                )
        self._expired = tuple(expired)
        view = FleetView(
            unix_s=now,
            replicas=inbound.replicas,
            tokens_per_minute={n: v / span_s * 60.0 for n, v in tokens.items() if v},
            requests_per_second={n: v / span_s for n, v in requests.items() if v},
            ejections=tuple(ejections),
            spend_by_quarter=others_spend,
            primary=inbound.primary,
            primary_epoch=inbound.primary_epoch,
            primary_reason=inbound.primary_reason,
        )
        self._settle(out, inbound)
        self.router.apply_fleet(view)

    def _settle(self, out: Outbound, inbound: Inbound) -> None:
        if out.proposal is not None and inbound.proposal_won is not None:
            p = out.proposal
            self.router.settle_switch(
                (p.from_target, p.to_target, p.reason),
                inbound.proposal_won,
                inbound.primary or p.to_target,
                inbound.primary_epoch,
            )

    def _unreadable(self, now: float, bad: list[BadField]) -> None:
        first = min(bad, key=lambda b: b.value is None)  # a value read says most
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        if first.value is None:
            error = f"the store refused a command: {first}{more}"
        else:
            error = f"undecodable data in the store: {first}{more}"
        self._undecodable += 1
        self._bad_data_warning.warn(
            "shared state for deployment %r: %s; skipped, this sync counts as failed, and "
            "the next sync deletes a bad field that still holds the same value",
            self.settings.deployment,
            error,
        )
        self._failed(now, error, "unreadable")

    def _failed(self, now: float, error: str, how: str = "unreachable") -> None:
        self._failures += 1
        self._last_error = error
        last = self._last_ok if self._last_ok is not None else self._started_unix
        if now - last < self._stale_s:
            return
        if not self._fallback_logged:
            logger.warning(
                "shared state for deployment %r %s for %.1f s (%s): routing on this "
                "replica's local view until it is back",
                self.settings.deployment,
                how,
                now - last,
                error,
            )
            self._fallback_logged = True
        if self.router.fleet is not None:
            self.router.apply_fleet(None)
