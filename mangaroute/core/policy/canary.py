"""Canary / A-B: a fixed share of a class's traffic to a candidate target.

The candidate gets ``share`` of the calls (reason ``candidate``), the best-ranked other
target the rest (reason ``control``); each falls back to the other. With ``sticky`` a session
id always lands in the same arm (its hash is the draw), so a user does not flip between models
mid-conversation. The filters still apply: a candidate that fails, slows down or runs out of
capacity leaves the split at once (its share goes to the control). Per-arm statistics are in
the snapshot: ``Route.arms()`` / ``route.to_dict()["arms"]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mangaroute.core.limits import check_fields
from mangaroute.core.policy.base import plan_in_order
from mangaroute.core.snapshot import PickPlan, TargetView


@dataclass(frozen=True, slots=True)
class Canary:
    """Picker: ``share`` to ``candidate``, the rest to the best other target."""

    candidate: str
    share: float = 0.05
    sticky: bool = True
    name: str = "canary"

    def __post_init__(self) -> None:
        check_fields(self, "canary")

    def plan(self, ranked: Sequence[TargetView], primary: str | None) -> PickPlan:
        candidate = next((view for view in ranked if view.name == self.candidate), None)
        others = [view for view in ranked if view is not candidate]
        if candidate is None or not others:
            targets = [view.target for view in ranked]
            return plan_in_order(targets, ["best"] * len(targets))
        ordered = [others[0].target, candidate.target] + [view.target for view in others[1:]]
        reasons = ["control", "candidate"] + ["best"] * (len(ordered) - 2)
        weights = [1.0 - self.share, self.share] + [0.0] * (len(ordered) - 2)
        return plan_in_order(ordered, reasons, weights, sticky=self.sticky)
