"""What a policy part may know besides the targets' statistics: the time of day and the spend.

The router's clock is monotonic, so parts that care about the hour of the day (schedules) or
about money spent so far (the budget guard) cannot read it from a :class:`TargetView`. At each
snapshot rebuild the router builds one :class:`PolicyContext` - wall-clock time derived from
its clock and an injected wall-clock reading, and its :class:`SpendLedger` - and hands it to
every part that implements :class:`Contextual`. Such a part returns a copy of itself *bound*
to that context; the copy is what filters, ranks or plans until the next rebuild. Nothing of
this runs per request.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Protocol, TypeVar, runtime_checkable

SECONDS_PER_DAY = 86_400.0
CHECKPOINT_S = 900.0
"""The ledger remembers its running total at every quarter hour (UTC), so "spend since local
midnight" is exact for every time zone whose offset is a whole number of quarter hours."""

_Self = TypeVar("_Self")


class SpendLedger:
    """Pay-per-use spend of a router since it started, with quarter-hour checkpoints.

    The router updates it at every snapshot rebuild from the tokens recorded on each target
    and the target's per-token prices (hourly commitments - model units, instances - are paid
    whatever the routing does, so they are not in it). :meth:`since` answers "how much since
    this moment" from the checkpoints: two days of them are kept, constant memory.
    """

    __slots__ = ("_checkpoints", "_last_unix_s", "total_usd")

    def __init__(self) -> None:
        self.total_usd = 0.0
        self._last_unix_s: float | None = None
        self._checkpoints: deque[tuple[float, float]] = deque(maxlen=2 * 96 + 1)

    def observe(self, unix_s: float, total_usd: float) -> None:
        """Record the running total at ``unix_s``; takes a checkpoint at each quarter hour
        crossed since the previous observation (the first observation is one, too)."""
        last = self._last_unix_s
        if last is None or unix_s // CHECKPOINT_S > last // CHECKPOINT_S:
            at = unix_s if last is None else (unix_s // CHECKPOINT_S) * CHECKPOINT_S
            self._checkpoints.append((at, self.total_usd if last is not None else total_usd))
        self._last_unix_s = unix_s
        self.total_usd = total_usd

    def since(self, unix_s: float) -> float:
        """Spend from ``unix_s`` to the last observation (all of it when the ledger started
        later than ``unix_s``)."""
        base = None
        for at, total in self._checkpoints:
            if at > unix_s:
                break
            base = total
        if base is None:
            base = self._checkpoints[0][1] if self._checkpoints else 0.0
        return max(0.0, self.total_usd - base)


@dataclass(frozen=True, slots=True)
class PolicyContext:
    """The world at one snapshot rebuild."""

    now_ns: int
    """The router's monotonic clock."""
    unix_s: float
    """Wall-clock seconds since the epoch (UTC)."""
    spend: SpendLedger = field(default_factory=SpendLedger)

    def local_seconds(self, utc_offset_hours: float) -> float:
        """Seconds since local midnight in a zone ``utc_offset_hours`` east of UTC (JST: 9)."""
        return (self.unix_s + utc_offset_hours * 3600.0) % SECONDS_PER_DAY

    def local_midnight_unix(self, utc_offset_hours: float) -> float:
        """The epoch seconds of the most recent local midnight."""
        return self.unix_s - self.local_seconds(utc_offset_hours)


@runtime_checkable
class Contextual(Protocol):
    """A part that needs the :class:`PolicyContext`: ``bind`` returns the part to use until
    the next rebuild (usually a copy with the derived facts filled in)."""

    def bind(self: _Self, context: PolicyContext) -> _Self: ...


def clock_label(seconds: float) -> str:
    """``HH:MM`` of a time of day given in seconds since midnight."""
    minutes = int(seconds // 60) % 1440
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
