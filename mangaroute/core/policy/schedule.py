"""Time-of-day schedules (JST by default): a target takes traffic only in its hours.

MangaAssist's traffic peaks 18:00-24:00 JST (seed sections 2.1 and 4.3), and the seed's
hybrid buys provisioned Sonnet for exactly those hours. A schedule says, per target, in which
local hours a class may use it - for example keep simple questions off provisioned Sonnet in
the evening so that its paid capacity goes to the complex ones, or skip a target that only
exists at the peak. The router's clock is monotonic; the hour comes from the rebuild's
:class:`~mangaroute.core.policy.context.PolicyContext` (wall time, injected into the router),
converted in the schedule's ``time_zone`` (an IANA name such as ``"America/New_York"``, which
follows daylight saving time) or at a fixed ``utc_offset_hours`` (JST, +9, when neither is
given: Japan has no daylight saving time) - see :mod:`mangaroute.core.policy.zone`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from mangaroute.core.limits import check_fields
from mangaroute.core.policy.context import PolicyContext, clock_label
from mangaroute.core.policy.zone import JST_UTC_OFFSET_HOURS, LocalZone, local_zone
from mangaroute.core.snapshot import TargetView

__all__ = ["JST_UTC_OFFSET_HOURS", "HourWindow", "Schedule", "in_window", "validate_window"]

HourWindow = tuple[float, float]
"""``[start, end)`` in local hours, ``0 <= start, end <= 24``; ``start > end`` wraps past
midnight (``(22, 6)`` is the night)."""


def in_window(hour: float, window: HourWindow) -> bool:
    start, end = window
    if start <= end:
        return start <= hour < end
    return hour >= start or hour < end


def validate_window(window: HourWindow) -> HourWindow:
    start, end = window
    if not (0.0 <= start <= 24.0 and 0.0 <= end <= 24.0) or start == end:
        raise ValueError(
            f"an hour window is [start, end) with 0 <= start != end <= 24, got {window}"
        )
    return window


@dataclass(frozen=True, slots=True)
class Schedule:
    """Filter: a target listed in ``hours`` is excluded outside its windows (reason
    ``off_schedule(HH:MM)``); unlisted targets are never excluded. Until bound to a context
    (outside a router) it excludes nothing."""

    hours: Mapping[str, tuple[HourWindow, ...]] = field(default_factory=dict)
    utc_offset_hours: float | None = None
    """A fixed offset east of UTC; JST (+9) when neither this nor ``time_zone`` is given."""
    local_s: float | None = None
    """Seconds since midnight on the local wall clock at the rebuild this copy is bound to."""
    name: str = "schedule"
    time_zone: str | None = None
    """An IANA zone (``"Asia/Tokyo"``, ``"America/New_York"``); exclusive with
    ``utc_offset_hours``."""
    zone: LocalZone = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for windows in self.hours.values():
            for window in windows:
                validate_window(window)
        check_fields(self, "schedule")
        object.__setattr__(self, "zone", local_zone(self.time_zone, self.utc_offset_hours))

    def bind(self, context: PolicyContext) -> Schedule:
        return dataclasses.replace(self, local_s=self.zone.at(context.unix_s)[0])

    def exclude(self, view: TargetView) -> str | None:
        windows = self.hours.get(view.name)
        if not windows or self.local_s is None:
            return None
        hour = self.local_s / 3600.0
        if any(in_window(hour, window) for window in windows):
            return None
        return f"off_schedule({clock_label(self.local_s)})"
