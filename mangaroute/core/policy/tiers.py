"""Request-class routing by tier (the seed's hybrid, section 3.1 and its key takeaways):
simple questions to Haiku, complex ones to Sonnet, manga-specific ones to the fine-tuned
SageMaker model - each falling back tier by tier. A request class lists the targets allowed to
serve it; this ranker orders them by the tier preference of the class's policy, and within a
tier by an inner ranker (config order by default, or cost, or latency)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from mangaroute.core.policy.base import Ranker
from mangaroute.core.policy.rankers import ConfigOrder
from mangaroute.core.snapshot import TargetView


@dataclass(frozen=True, slots=True)
class TierOrder:
    """Ranker: targets of ``tiers[0]`` first, then ``tiers[1]``, ...; tiers not listed last.
    Within a tier, the ``within`` ranker's order. The score is the tier's position."""

    tiers: tuple[str, ...]
    within: Ranker = field(default_factory=ConfigOrder)
    name: str = "tier"

    def rank(self, views: Sequence[TargetView]) -> tuple[list[TargetView], dict[str, float]]:
        ranked, _ = self.within.rank(views)
        position = {tier: index for index, tier in enumerate(self.tiers)}
        last = len(self.tiers)
        scores = {view.name: float(position.get(view.target.tier, last)) for view in ranked}
        return sorted(ranked, key=lambda view: scores[view.name]), scores
