"""Local time for schedules and the budget guard: an IANA time zone or a fixed UTC offset.

A fixed offset is right for Japan (no daylight saving time) and wrong twice a year for
``America/New_York`` or ``Europe/Berlin``; ``time_zone = "America/New_York"`` follows the
zone's rules (:mod:`zoneinfo`, the system's tz database - the planning code uses the same).

Policies bind to a :class:`~mangaroute.core.policy.context.PolicyContext` at each snapshot
rebuild, never per request, and a zone's offset and local midnight are looked up once per UTC
quarter hour and reused until the next one: every offset in use in the tz database since
1980 is a whole number of quarter hours, so a transition and a local midnight both fall on a
UTC quarter hour (the spend ledger's checkpoints rely on the same).
"""

from __future__ import annotations

import functools
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mangaroute.core.limits import RangeError, violation

SECONDS_PER_DAY = 86_400.0
QUARTER_S = 900.0
JST_UTC_OFFSET_HOURS = 9.0


class LocalZone:
    """Wall-clock time of day and the instant of local midnight in one zone."""

    __slots__ = ("_cache", "_fixed_s", "_zone", "name")

    def __init__(self, name: str, *, fixed_offset_s: float = 0.0, zone: ZoneInfo | None = None):
        self.name = name
        self._fixed_s = fixed_offset_s
        self._zone = zone
        self._cache: tuple[float, float, float] = (float("nan"), 0.0, 0.0)
        """``(quarter, offset_s, midnight_unix)`` of the last quarter hour looked up."""

    def at(self, unix_s: float) -> tuple[float, float]:
        """``(seconds since midnight on the local wall clock, unix time of local midnight)``
        at ``unix_s``. On a day with a transition the two disagree: at 12:00 on the day
        ``America/New_York`` springs forward, the clock says 43,200 s, but 39,600 s have
        passed since midnight."""
        if self._zone is None:
            local_s = (unix_s + self._fixed_s) % SECONDS_PER_DAY
            return local_s, unix_s - local_s
        quarter = unix_s // QUARTER_S
        cached = self._cache
        if cached[0] != quarter:
            cached = self._lookup(quarter)
            self._cache = cached
        return (unix_s + cached[1]) % SECONDS_PER_DAY, cached[2]

    def _lookup(self, quarter: float) -> tuple[float, float, float]:
        assert self._zone is not None
        local = datetime.fromtimestamp(quarter * QUARTER_S, self._zone)
        offset = local.utcoffset()
        assert offset is not None
        # fold=0: an ambiguous midnight is its first occurrence; a midnight that does not
        # exist (clocks jump from 00:00) maps to the jump itself - the day's first instant
        midnight = datetime(local.year, local.month, local.day, tzinfo=self._zone)
        return quarter, offset.total_seconds(), midnight.timestamp()

    def __repr__(self) -> str:
        return f"LocalZone({self.name!r})"


def local_zone(time_zone: str | None, utc_offset_hours: float | None) -> LocalZone:
    """The zone a ``time_zone`` / ``utc_offset_hours`` pair names (JST when neither is
    given); raises :class:`~mangaroute.core.limits.RangeError` naming the key at fault."""
    if time_zone is not None and utc_offset_hours is not None:
        raise RangeError(
            "utc_offset_hours",
            f"= {utc_offset_hours:g} cannot be given together with time_zone = {time_zone!r}: "
            "give one of them (time_zone follows daylight saving time)",
        )
    if time_zone is not None:
        return _named(time_zone)
    return _fixed(JST_UTC_OFFSET_HOURS if utc_offset_hours is None else utc_offset_hours)


@functools.lru_cache(maxsize=64)
def _named(time_zone: str) -> LocalZone:
    """One :class:`LocalZone` per name, so every bound copy of a policy shares its cache."""
    if not isinstance(time_zone, str) or not time_zone:
        raise RangeError("time_zone", f"must be an IANA time zone name, got {time_zone!r}")
    try:
        zone = ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise RangeError(
            "time_zone",
            f"{time_zone!r} is not an IANA time zone known to this system "
            '(expected a name like "Asia/Tokyo" or "America/New_York"; '
            "without the system tz database, pip install tzdata)",
        ) from None
    return LocalZone(time_zone, zone=zone)


@functools.lru_cache(maxsize=64)
def _fixed(utc_offset_hours: float) -> LocalZone:
    reason = violation("schedule.utc_offset_hours", utc_offset_hours)
    if reason is not None:
        raise RangeError("utc_offset_hours", reason)
    name = f"UTC{utc_offset_hours:+g}"
    return LocalZone(name, fixed_offset_s=utc_offset_hours * 3600.0)
