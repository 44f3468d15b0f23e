"""Cost under an SLO: the cheapest target whose predicted latency fits.

Marginal price is what one more call costs: tokens x the target's per-token prices. Capacity
paid by the hour (Bedrock model units, SageMaker instances) is already paid, so while it has
headroom its marginal price is ~0 and it ranks first; once it runs out of headroom it is not
free any more - the next call would be throttled - and it ranks with the targets that miss the
SLO. Latency is the :class:`~mangaroute.core.policy.prediction.LatencyPredictor`'s p99 at the
typical answer length, load included, divided by the success rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from mangaroute.core.limits import check_fields
from mangaroute.core.policy.prediction import LatencyPredictor
from mangaroute.core.snapshot import TargetView


def is_committed(view: TargetView) -> bool:
    """Capacity bought by the hour, with a declared limit: provisioned model units,
    instance-backed endpoints."""
    target = view.target
    capacity = target.capacity
    return target.pricing.hourly_usd > 0 and bool(
        capacity.tokens_per_minute or capacity.requests_per_second or capacity.concurrency
    )


@dataclass(frozen=True, slots=True)
class CostUnderSlo:
    """Ranker: within the SLO, cheapest marginal price first (ties keep config order); then
    the rest - over the SLO, or paid capacity without headroom - fastest first."""

    slo_p99_ms: float = 1500.0
    avg_input_tokens: int = 500
    avg_output_tokens: int = 300
    avg_cache_read_tokens: int = 0
    """Prompt-cache tokens a typical call reads (on top of ``avg_input_tokens``, uncached)."""
    avg_cache_write_tokens: int = 0
    """Prompt-cache tokens a typical call writes."""
    paid_headroom: float = 1.0
    """Utilization below which hourly-paid capacity counts as free."""
    predictor: LatencyPredictor = field(default_factory=LatencyPredictor)
    name: str = "cost_under_slo"

    def __post_init__(self) -> None:
        check_fields(self, "cost_under_slo")

    def marginal_usd(self, view: TargetView) -> float:
        return view.target.pricing.token_cost_usd(
            self.avg_input_tokens,
            self.avg_output_tokens,
            self.avg_cache_read_tokens,
            self.avg_cache_write_tokens,
        )

    def fits(self, view: TargetView, expected_ms: float | None = None) -> bool:
        """Within the SLO (and, for paid capacity, below ``paid_headroom``)."""
        if is_committed(view) and view.utilization >= self.paid_headroom:
            return False
        if expected_ms is None:
            expected_ms = self.predictor.expected_ms(view, self.avg_output_tokens)
        return expected_ms <= self.slo_p99_ms

    def rank(self, views: Sequence[TargetView]) -> tuple[list[TargetView], dict[str, float]]:
        prices = {view.name: self.marginal_usd(view) for view in views}
        expected = {
            view.name: self.predictor.expected_ms(view, self.avg_output_tokens) for view in views
        }
        within = [view for view in views if self.fits(view, expected[view.name])]
        beyond = [view for view in views if not self.fits(view, expected[view.name])]
        within.sort(key=lambda view: prices[view.name])
        beyond.sort(key=lambda view: expected[view.name])
        return within + beyond, prices
