"""Pickers: where in the ranked list a request lands."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mangaroute.core.limits import RangeError, violation
from mangaroute.core.policy.base import plan_in_order
from mangaroute.core.snapshot import PickPlan, TargetView


@dataclass(frozen=True, slots=True)
class Best:
    """Always the top-ranked target; the rest are its fallbacks in rank order."""

    name: str = "best"

    def plan(self, ranked: Sequence[TargetView], primary: str | None) -> PickPlan:
        targets = [view.target for view in ranked]
        return plan_in_order(targets, ["best"] * len(targets))


@dataclass(frozen=True, slots=True)
class Uniform:
    """Every candidate equally likely, drawn at random (``random``: LiteLLM's default
    "simple-shuffle" without weights) or taken in turn (``round_robin``); the rest are
    fallbacks in rank order. A baseline: it ignores latency, cost and load."""

    rotate: bool = False
    name: str = "random"

    def plan(self, ranked: Sequence[TargetView], primary: str | None) -> PickPlan:
        targets = [view.target for view in ranked]
        n = len(targets)
        return plan_in_order(targets, [self.name] * n, [1.0] * n, rotate=self.rotate)


@dataclass(frozen=True, slots=True)
class Weighted:
    """A fixed weighted split (A/B, canary) over the targets named in ``weights``; targets
    without a weight are fallbacks only. With ``sticky`` a session always lands on the same
    target while the set of candidates is unchanged (the session id is hashed)."""

    weights: Mapping[str, float]
    sticky: bool = False
    name: str = "weighted"

    def __post_init__(self) -> None:
        for target, weight in self.weights.items():
            reason = violation("weighted.weight", weight)
            if reason is not None:
                raise RangeError(f"weights.{target}", reason)
        if not any(self.weights.values()):
            raise RangeError(
                "weights",
                f"must give at least one target a weight > 0, got {dict(self.weights)} (a split "
                "with nothing to split would send every call to the top-ranked target)",
            )

    def plan(self, ranked: Sequence[TargetView], primary: str | None) -> PickPlan:
        weighted = [v for v in ranked if self.weights.get(v.name, 0.0) > 0]
        if not weighted:
            return Best().plan(ranked, primary)
        rest = [v for v in ranked if self.weights.get(v.name, 0.0) <= 0]
        ordered = [v.target for v in weighted + rest]
        reasons = ["weighted"] * len(ordered)
        return plan_in_order(
            ordered, reasons, [self.weights[v.name] for v in weighted], sticky=self.sticky
        )


@dataclass(frozen=True, slots=True)
class PrimaryShare:
    """The seed's switcher split (section 5.1, ``get_routing_weights``): the current primary
    takes ``primary_weight`` (0.80), every other healthy candidate ``canary_weight`` (0.05),
    normalised over the candidates present. When the primary is not a candidate of the request
    class (not eligible, or filtered out) the top-ranked target takes the primary's share.
    Fallbacks start with the primary, then follow rank order."""

    primary_weight: float = 0.80
    canary_weight: float = 0.05
    sticky: bool = False
    name: str = "primary"

    def plan(self, ranked: Sequence[TargetView], primary: str | None) -> PickPlan:
        lead = next((v for v in ranked if v.name == primary), ranked[0])
        ordered = [lead.target] + [v.target for v in ranked if v is not lead]
        reasons = ["primary" if lead.name == primary else "best"] + ["canary"] * (len(ordered) - 1)
        weights = [self.primary_weight] + [self.canary_weight] * (len(ordered) - 1)
        if self.canary_weight <= 0:
            weights = [1.0]
        return plan_in_order(ordered, reasons, weights, sticky=self.sticky)
