"""Provisioned first, spilling over *before* throttling.

Hourly-paid capacity (provisioned throughput, instance endpoints) should carry as much traffic
as it can, because it is paid for whether used or not; but sending it everything until 429s
arrive costs each throttled call a wasted attempt, and excluding it once it throttles leaves it
idle. The picker therefore hands the top-ranked paid target a *share* of the class's traffic
sized to fill it to ``target_utilization`` - its capacity on its limiting axis (tokens per
minute for model units, requests per second for instances) over what it and the next-ranked
target together carry, as the windows measure it - and spills the rest to that next-ranked
target. This is feed-forward: the share follows the load rather than the utilization it
causes, so a load ten times the paid capacity does not turn a 60-second window's lag into a
flood-and-starve oscillation. With ``throttle_backoff`` the share is also cut by the target's
throttle rate (off by default: a throttle costs a fast retry elsewhere, an unused model unit
costs money). The next-ranked target may also carry other classes' calls, which makes
the share too small: use the picker where the spill target mostly serves the same class (on-
demand Sonnet behind provisioned Sonnet for complex questions), not in front of an endpoint
with room to spare.
Several classes may share one paid target, and their offered loads add up; keep the ones
whose alternative is cheap off it when the dear ones fill it (a time-of-day
:class:`~mangaroute.core.policy.schedule.Schedule`: simple questions fall back to Haiku at
$0.0004 a call, complex ones to on-demand Sonnet at $0.007).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mangaroute.core.limits import check_fields
from mangaroute.core.policy.base import plan_in_order
from mangaroute.core.policy.cost import is_committed
from mangaroute.core.snapshot import PickPlan, TargetView


@dataclass(frozen=True, slots=True)
class Spillover:
    """Picker: the top-ranked target if its capacity is not paid by the hour; otherwise a
    split between it (reason ``best``) and the next-ranked target (reason ``spill``)."""

    target_utilization: float = 0.9
    throttle_backoff: bool = False
    """Cut the share by the paid target's throttle rate."""
    name: str = "spillover"

    def __post_init__(self) -> None:
        check_fields(self, "spillover")

    def share(self, ranked: Sequence[TargetView]) -> float:
        """The paid target's (``ranked[0]``) share of the class's calls (at least two
        candidates)."""
        lead = ranked[0]
        capacity = lead.target.capacity
        spill = ranked[1]
        if capacity.tokens_per_minute:
            limit = capacity.tokens_per_minute
            carried = lead.tokens_per_minute + spill.tokens_per_minute
        elif capacity.requests_per_second:
            limit = capacity.requests_per_second
            carried = lead.requests_per_second + spill.requests_per_second
        else:
            return 1.0
        share = 1.0 if carried <= 0 else limit * self.target_utilization / carried
        if self.throttle_backoff:
            share *= 1.0 - lead.throttle_rate
        return min(1.0, max(0.0, share))

    def plan(self, ranked: Sequence[TargetView], primary: str | None) -> PickPlan:
        targets = [view.target for view in ranked]
        if len(ranked) == 1 or not is_committed(ranked[0]):
            return plan_in_order(targets, ["best"] * len(targets))
        share = self.share(ranked)
        if share >= 1.0:
            return plan_in_order(targets, ["best"] * len(targets))
        if share <= 0.0:
            ordered = [targets[1], targets[0], *targets[2:]]
            return plan_in_order(ordered, ["spill"] * len(ordered))
        reasons = ["best", "spill"] + ["spill"] * (len(targets) - 2)
        weights = [share, 1.0 - share] + [0.0] * (len(targets) - 2)
        return plan_in_order(targets, reasons, weights)
