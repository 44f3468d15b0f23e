"""An in-process shared store with Redis's semantics, for the simulator's replicas.

The simulator runs many routers in one process and in virtual time, where a network store
would be both slow and on the wrong clock. :class:`MemoryStore` applies an
:class:`~mangaroute.shared.store.Outbound` exactly as
:class:`~mangaroute.shared.redis_store.RedisStore`'s pipeline and scripts do (same keys, same
compare-and-set, same expiry, on the clock it is given), and can be switched off to play an
outage. Tests of the Redis backend run against a real ``redis-server``, not this.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from mangaroute.shared.store import (
    DAY_QUARTERS,
    QUARTER_S,
    Inbound,
    Outbound,
    StoreUnavailable,
    encode_ejection,
    parse_ejection,
)


class MemoryStore:
    """Shared state in a dict; ``available = False`` makes every exchange fail."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._usage: dict[int, tuple[float, dict[str, list[int]]]] = {}
        self._spend: dict[int, float] = {}
        self._ejections: dict[str, str] = {}
        self._primary: dict[str, str] = {}
        self._replicas: dict[str, float] = {}
        self.available = True
        self.exchanges = 0

    def exchange(self, out: Outbound) -> Inbound:
        if not self.available:
            raise StoreUnavailable("memory store switched off")
        now = self._clock()
        inbound = Inbound()
        with self._lock:
            self.exchanges += 1
            self._expire(now, out)
            if out.proposal is not None:
                p = out.proposal
                current = self._primary.get("name")
                epoch = int(self._primary.get("epoch", "0"))
                if current == p.to_target or epoch != p.expected_epoch:
                    inbound.proposal_won = False
                else:
                    self._primary = {
                        "name": p.to_target,
                        "epoch": str(epoch + 1),
                        "reason": p.reason,
                        "replica": out.replica,
                        "at": f"{out.unix_s:.3f}",
                    }
                    inbound.proposal_won = True
            for bucket, cells in out.usage.items():
                _, table = self._usage.get(bucket, (0.0, {}))
                for name, (d_tokens, d_requests) in cells.items():
                    cell = table.setdefault(name, [0, 0])
                    cell[0] += d_tokens
                    cell[1] += d_requests
                self._usage[bucket] = (now + out.usage_ttl_s, table)
            for quarter, usd in out.spend.items():
                self._spend[quarter] = self._spend.get(quarter, 0.0) + usd
            for claim in out.claims:
                self._ejections[f"{claim.target}|{out.replica}"] = encode_ejection(claim)
            for target in out.released:
                self._ejections.pop(f"{target}|{out.replica}", None)
            for field_name in out.expired:
                self._ejections.pop(field_name, None)
            self._replicas[out.replica] = out.unix_s
            for bucket in out.read_buckets:
                _, table = self._usage.get(bucket, (0.0, {}))
                inbound.usage[bucket] = {name: (v[0], v[1]) for name, v in table.items()}
            if out.read_spend_days:
                days = set(out.read_spend_days)
                inbound.spend = {
                    q: usd for q, usd in self._spend.items() if q // DAY_QUARTERS in days
                }
            for field_name, value in self._ejections.items():
                entry = parse_ejection(field_name, value)
                if entry is not None:
                    inbound.ejections.append(entry)
            inbound.primary = self._primary.get("name")
            inbound.primary_epoch = int(self._primary.get("epoch", "0"))
            inbound.primary_reason = self._primary.get("reason", "")
            inbound.replicas = sum(1 for at in self._replicas.values() if at >= out.live_after_unix)
        return inbound

    def _expire(self, now: float, out: Outbound) -> None:
        for bucket in [b for b, (until, _) in self._usage.items() if until <= now]:
            del self._usage[bucket]
        oldest_day = int(now // QUARTER_S) // DAY_QUARTERS - 2
        for quarter in [q for q in self._spend if q // DAY_QUARTERS < oldest_day]:
            del self._spend[quarter]
        gone = out.unix_s - out.key_ttl_s
        for replica in [r for r, at in self._replicas.items() if at < gone]:
            del self._replicas[replica]

    def close(self) -> None:
        pass
