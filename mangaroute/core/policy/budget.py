"""Budget guard: a daily spend budget, and cheaper tiers when spend runs ahead of its pace.

The guard wraps a picker. At each rebuild it compares the pay-per-use spend since local
midnight (the router's :class:`~mangaroute.core.policy.context.SpendLedger`: tokens x prices;
hourly commitments are paid whatever the routing does, so they are not in it) with the share of
``daily_usd`` the day should have used by now. The pace follows ``pace``: 24 hourly weights of
expected spend (MangaAssist's evening peak spends most of the day's money; a flat pace would
call every evening "ahead"). While spend is on pace the wrapped picker runs unchanged; once it
is ahead by more than ``tolerance`` (plus a small ``slack`` of the budget, so the first
minutes of a day are not judged on cents) the candidates are re-ordered cheapest-first among
those predicted to meet the SLO - :class:`~mangaroute.core.policy.cost.CostUnderSlo` - before
the wrapped picker runs, and every reason says so: ``+spend_guard``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

from mangaroute.core.limits import check_fields, check_value
from mangaroute.core.policy.base import Picker
from mangaroute.core.policy.context import Contextual, PolicyContext
from mangaroute.core.policy.cost import CostUnderSlo
from mangaroute.core.policy.pickers import Best
from mangaroute.core.policy.zone import LocalZone, local_zone
from mangaroute.core.snapshot import PickPlan, TargetView

GUARD_REASON = "+spend_guard"


def pace_fraction(pace: Sequence[float], local_s: float) -> float:
    """Share of a day's spend expected by ``local_s`` seconds after local midnight, with
    ``pace`` the 24 hourly weights (empty: flat), linear within each hour."""
    if not pace:
        return min(1.0, local_s / 86_400.0)
    total = sum(pace)
    hour = min(local_s / 3600.0, 24.0)
    whole = int(hour)
    done = sum(pace[:whole])
    if whole < 24:
        done += pace[whole] * (hour - whole)
    return done / total


@dataclass(frozen=True, slots=True)
class BudgetGuard:
    """Picker wrapper; see the module docstring. ``ahead`` is the bound copy's verdict:
    spend over its pace, as a fraction (``0.12`` = 12 % ahead), ``0`` when on pace."""

    daily_usd: float
    inner: Picker = field(default_factory=Best)
    cheaper: CostUnderSlo = field(default_factory=CostUnderSlo)
    pace: tuple[float, ...] = ()
    utc_offset_hours: float | None = None
    """A fixed offset east of UTC; JST (+9) when neither this nor ``time_zone`` is given."""
    tolerance: float = 0.05
    slack: float = 0.01
    ahead: float = 0.0
    name: str = "budget_guard"
    time_zone: str | None = None
    """An IANA zone whose midnight starts the budget's day; exclusive with
    ``utc_offset_hours``."""
    zone: LocalZone = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_fields(self, "budget_guard", ("daily_usd", "utc_offset_hours", "tolerance", "slack"))
        object.__setattr__(self, "zone", local_zone(self.time_zone, self.utc_offset_hours))
        for weight in self.pace:
            check_value("budget_guard.pace", weight)
        if self.pace and (len(self.pace) != 24 or sum(self.pace) <= 0):
            raise ValueError("pace must be 24 hourly weights >= 0, not all zero")

    def expected_usd(self, local_s: float) -> float:
        return self.daily_usd * pace_fraction(self.pace, local_s)

    def verdict(self, spent_usd: float, local_s: float) -> float:
        """How far ahead of pace ``spent_usd`` is (0 when within tolerance and slack)."""
        expected = self.expected_usd(local_s)
        allowed = expected * (1.0 + self.tolerance) + self.daily_usd * self.slack
        if spent_usd <= allowed:
            return 0.0
        return spent_usd / expected - 1.0 if expected > 0 else float("inf")

    def bind(self, context: PolicyContext) -> BudgetGuard:
        local_s, midnight_unix = self.zone.at(context.unix_s)
        spent = context.spend.since(midnight_unix)
        ahead = self.verdict(spent, local_s)
        inner = self.inner.bind(context) if isinstance(self.inner, Contextual) else self.inner
        return dataclasses.replace(self, ahead=ahead, inner=inner)

    def plan(self, ranked: Sequence[TargetView], primary: str | None) -> PickPlan:
        if self.ahead <= 0:
            return self.inner.plan(ranked, primary)
        cheaper, _ = self.cheaper.rank(ranked)
        return self.inner.plan(cheaper, primary).marked(GUARD_REASON)
