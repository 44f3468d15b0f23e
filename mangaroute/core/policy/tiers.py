"""Request-class routing by tier (the seed's hybrid, section 3.1 and its key takeaways):
simple questions to Haiku, complex ones to Sonnet, manga-specific ones to the fine-tuned
SageMaker model - each falling back tier by tier. A request class lists the targets allowed to
serve it; this ranker orders them by the tier preference of the class's policy, and within a
tier by an inner ranker (config order by default, or cost, or latency).

A preference is not a promise to wait: with an SLO (``fits``) the preferred tier comes first
only while its target is predicted to meet it, and past the SLO speed decides. A fine-tuned
endpoint four times slower than usual then yields to the general model instead of being tried
first until calls fail. (A class's quality *floor*, :mod:`mangaroute.core.policy.quality`, is
the promise: below it only when nothing at or above it can answer in time.)"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from mangaroute.core.policy.base import Ranker
from mangaroute.core.policy.rankers import ConfigOrder
from mangaroute.core.snapshot import TargetView


@dataclass(frozen=True, slots=True)
class TierOrder:
    """Ranker: targets of ``tiers[0]`` first, then ``tiers[1]``, ...; tiers not listed last.
    Within a tier, the ``within`` ranker's order. With ``fits`` (a target predicted to meet
    the SLO), that order holds among the targets within the SLO; those over it follow in the
    ``within`` ranker's order alone (``cost_under_slo``: fastest first), whatever their tier.
    The score is the tier's position (``len(tiers) + 1`` over the SLO)."""

    tiers: tuple[str, ...]
    within: Ranker = field(default_factory=ConfigOrder)
    fits: Callable[[TargetView], bool] | None = None
    name: str = "tier"

    def rank(self, views: Sequence[TargetView]) -> tuple[list[TargetView], dict[str, float]]:
        ranked, _ = self.within.rank(views)
        position = {tier: index for index, tier in enumerate(self.tiers)}
        last = len(self.tiers)
        fits = self.fits
        scores = {
            view.name: float(position.get(view.target.tier, last))
            if fits is None or fits(view)
            else last + 1.0
            for view in ranked
        }
        return sorted(ranked, key=lambda view: scores[view.name]), scores
