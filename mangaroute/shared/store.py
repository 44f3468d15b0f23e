"""What one sync sends to the shared store and what comes back, and the store's contract.

A sync is one round trip: the replica's writes (usage and spend deltas, its ejections, a
switch proposal, a heartbeat) and the reads of the merged state travel together. Two stores
implement it: :class:`~mangaroute.shared.redis_store.RedisStore` (production: Redis or
ElastiCache, one pipeline per sync, server-side scripts where two replicas could race) and
:class:`~mangaroute.shared.memory.MemoryStore` (in-process, for the simulator, which runs many
replicas in virtual time).

Key layout in Redis, all under ``mangaroute:{<deployment>}:`` (the braces make every key of
a deployment hash to one cluster slot, so scripts work on cluster-mode ElastiCache):

==================  =======================================================  =============
key                 content                                                  expires
==================  =======================================================  =============
``usage:<bucket>``  hash ``<target>|tok`` / ``<target>|req`` -> counts,        2 windows
                    ``bucket = int(unix_s // bucket_s)``
``spend:<day>``     hash ``<quarter>`` -> USD, ``quarter = int(unix_s//900)``  3 days
``ejections``       hash ``<target>|<replica>`` -> ``state|until|reason``     renewed by
                                                                             holders
``primary``         hash ``name``, ``epoch``, ``reason``, ``replica``, ``at``   ``key_ttl_s``
``replicas``        sorted set ``<replica>`` scored by its last sync          ``key_ttl_s``
==================  =======================================================  =============
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

QUARTER_S = 900
DAY_QUARTERS = 96


class StoreUnavailable(Exception):
    """The shared store could not be reached, or answered too slowly."""


@dataclass(frozen=True, slots=True)
class EjectionClaim:
    """This replica holds ``target`` open (or probes it) until ``until_unix``."""

    target: str
    state: str
    reason: str
    until_unix: float


@dataclass(frozen=True, slots=True)
class Proposal:
    """Make ``to`` the primary if the shared primary is still at ``expected_epoch``."""

    expected_epoch: int
    from_target: str
    to_target: str
    reason: str


@dataclass(frozen=True, slots=True)
class Outbound:
    replica: str
    unix_s: float
    usage: dict[int, dict[str, tuple[int, int]]]
    """Per usage bucket, per target: (tokens, requests) this replica adds."""
    usage_ttl_s: float
    spend: dict[int, float]
    """Per quarter hour: USD this replica adds."""
    claims: tuple[EjectionClaim, ...]
    released: tuple[str, ...]
    """Targets whose ejection claim of this replica is over."""
    expired: tuple[str, ...]
    """Ejection fields (``<target>|<replica>``) past their ``until``, to delete."""
    proposal: Proposal | None
    read_buckets: tuple[int, ...]
    read_spend_days: tuple[int, ...]
    """UTC days (``quarter // 96``) whose spend to read; empty: skip the spend read."""
    live_after_unix: float
    """Replicas whose last sync is older than this are not counted as live."""
    key_ttl_s: float


@dataclass(frozen=True, slots=True)
class Ejection:
    target: str
    replica: str
    state: str
    reason: str
    until_unix: float
    field: str


@dataclass(slots=True)
class Inbound:
    usage: dict[int, dict[str, tuple[int, int]]] = field(default_factory=dict)
    """The fleet's totals (this replica's included) of each bucket read."""
    ejections: list[Ejection] = field(default_factory=list)
    primary: str | None = None
    primary_epoch: int = 0
    primary_reason: str = ""
    spend: dict[int, float] | None = None
    """The fleet's spend per quarter of the days read, or ``None`` when not read."""
    replicas: int = 1
    proposal_won: bool | None = None
    """The verdict on the proposal sent, if any."""
    commands: int = 0


class Store(Protocol):
    def exchange(self, out: Outbound) -> Inbound:
        """One sync; raises :class:`StoreUnavailable` when the store cannot answer."""
        ...

    def close(self) -> None: ...


def parse_ejection(field_name: str, value: str) -> Ejection | None:
    """Decode one ``ejections`` entry; ``None`` for a malformed one (ignored)."""
    target, sep, replica = field_name.rpartition("|")
    parts = value.split("|", 2)
    if not sep or len(parts) != 3:
        return None
    try:
        until = float(parts[1])
    except ValueError:
        return None
    return Ejection(target, replica, parts[0], parts[2], until, field_name)


def encode_ejection(claim: EjectionClaim) -> str:
    return f"{claim.state}|{claim.until_unix:.3f}|{claim.reason}"
