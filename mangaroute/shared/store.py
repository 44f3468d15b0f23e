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

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

QUARTER_S = 900
DAY_QUARTERS = 96
SHOWN_CHARS = 64
"""How much of an undecodable value a message echoes (then its length)."""

_COUNT = re.compile(r"0|[1-9][0-9]{0,18}")
"""A non-negative integer as Redis's ``HINCRBY`` writes it (no sign, no leading zero)."""


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


@dataclass(frozen=True, slots=True)
class BadField:
    """A value in the store that cannot be decoded (``primary.epoch = "x"``, a usage count
    ``"not-a-number"``): the sync that read it skips it and counts as failed, and the next
    sync deletes it if it still holds the same value (see ``RedisStore``)."""

    key: str
    """The key without the deployment prefix: ``primary``, ``usage:<bucket>``, ..."""
    field: str | None
    """The hash field, or ``None`` for the whole key (e.g. a key of the wrong type)."""
    value: str | None
    """What it holds, or ``None`` when Redis answered with an error instead."""
    error: str = ""
    """Redis's error reply, when it gave one."""

    def __str__(self) -> str:
        where = self.key if self.field is None else f"{self.key} {shown(self.field)}"
        if self.value is None:
            return f"{where}: {shown(self.error)}"
        return f"{where} = {shown(self.value)}"


def shown(text: str) -> str:
    """``text`` quoted, cut to :data:`SHOWN_CHARS` characters (plus its length) so a huge
    bad value cannot flood a log line."""
    if len(text) <= SHOWN_CHARS:
        return repr(text)
    return f"{text[:SHOWN_CHARS]!r}... ({len(text)} chars)"


def decode_count(text: str) -> int | None:
    """A usage count or an epoch; ``None`` when it is not a non-negative integer."""
    return int(text) if _COUNT.fullmatch(text) else None


def decode_usd(text: str) -> float | None:
    """A spend amount; ``None`` when it is not a finite, non-negative number."""
    try:
        usd = float(text)
    except ValueError:
        return None
    return usd if math.isfinite(usd) and usd >= 0 and "_" not in text else None


def usage_cells(
    key: str, row: Mapping[str, str], bad: list[BadField]
) -> dict[str, tuple[int, int]]:
    """A ``usage:<bucket>`` hash as ``{target: (tokens, requests)}``; fields that are not
    ``<target>|tok`` / ``<target>|req`` with a count go to ``bad``."""
    cells: dict[str, list[int]] = {}
    for field_name, text in row.items():
        name, _, axis = field_name.rpartition("|")
        count = decode_count(text)
        if not name or axis not in ("tok", "req") or count is None:
            bad.append(BadField(key, field_name, text))
            continue
        cells.setdefault(name, [0, 0])[0 if axis == "tok" else 1] = count
    return {name: (cell[0], cell[1]) for name, cell in cells.items()}


def spend_quarters(key: str, row: Mapping[str, str], bad: list[BadField]) -> dict[int, float]:
    """A ``spend:<day>`` hash as ``{quarter: usd}``; undecodable fields go to ``bad``."""
    spend: dict[int, float] = {}
    for field_name, text in row.items():
        quarter, usd = decode_count(field_name), decode_usd(text)
        if quarter is None or usd is None:
            bad.append(BadField(key, field_name, text))
        else:
            spend[quarter] = usd
    return spend


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
    undecodable: list[BadField] = field(default_factory=list)
    """What could not be decoded (skipped): non-empty makes the sync a failed one."""
    rejected_usage: dict[int, dict[str, list[int]]] = field(default_factory=dict)
    """Usage deltas the store refused (the field they add to is not a number): to send
    again once it is repaired."""
    rejected_spend: dict[int, float] = field(default_factory=dict)


class Store(Protocol):
    def exchange(self, out: Outbound) -> Inbound:
        """One sync; raises :class:`StoreUnavailable` when the store cannot answer."""
        ...

    def close(self) -> None: ...


def parse_ejection(field_name: str, value: str) -> Ejection | None:
    """Decode one ``ejections`` entry; ``None`` for a malformed one (an ``until`` that is
    not a finite number would hold a target open for ever)."""
    target, sep, replica = field_name.rpartition("|")
    parts = value.split("|", 2)
    if not sep or len(parts) != 3:
        return None
    try:
        until = float(parts[1])
    except ValueError:
        return None
    if not math.isfinite(until):
        return None
    return Ejection(target, replica, parts[0], parts[2], until, field_name)


def encode_ejection(claim: EjectionClaim) -> str:
    return f"{claim.state}|{claim.until_unix:.3f}|{claim.reason}"
