"""Rankers: order the eligible targets, best first."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from mangaroute.core.limits import check_fields
from mangaroute.core.scoring import (
    ScoreWeights,
    available_rps,
    cost_score,
    latency_score,
    monthly_cost_usd,
    throughput_score,
)
from mangaroute.core.snapshot import TargetView


@dataclass(frozen=True, slots=True)
class ConfigOrder:
    """Keep the order the request class lists its targets in (an explicit preference)."""

    name: str = "order"

    def rank(self, views: Sequence[TargetView]) -> tuple[list[TargetView], dict[str, float]]:
        return list(views), {}


@dataclass(frozen=True, slots=True)
class WeightedScore:
    """The seed's weighted latency/throughput/cost/operations score (section 1.2), on live
    statistics: latency is the target's predicted p99 (observed once it has enough samples,
    else its prior's cold-start-aware effective p99); throughput is what its capacity can
    carry against ``required_rps``; cost is a month at ``required_rps`` on its own prices
    against ``max_monthly_usd``; operations is its ops score. Higher totals rank first; ties
    keep config order."""

    target_p99_ms: float = 1500.0
    required_rps: float = 40.5
    max_monthly_usd: float = 60_000.0
    avg_input_tokens: int = 500
    avg_output_tokens: int = 300
    weights: ScoreWeights = field(default_factory=ScoreWeights)
    seed_exact_latency: bool = False
    name: str = "score"

    def __post_init__(self) -> None:
        check_fields(self, "score")

    def score(self, view: TargetView) -> float:
        target = view.target
        tokens = self.avg_input_tokens + self.avg_output_tokens
        return self.weights.total(
            latency_score(view.p99_ms, self.target_p99_ms, seed_exact=self.seed_exact_latency),
            throughput_score(
                available_rps(target, tokens, view.p50_ms / 1000.0), self.required_rps
            ),
            cost_score(
                monthly_cost_usd(
                    target, self.required_rps, self.avg_input_tokens, self.avg_output_tokens
                ),
                self.max_monthly_usd,
            ),
            target.ops_score,
        )

    def rank(self, views: Sequence[TargetView]) -> tuple[list[TargetView], dict[str, float]]:
        scores = {view.name: self.score(view) for view in views}
        ranked = sorted(views, key=lambda view: -scores[view.name])
        return ranked, scores


@dataclass(frozen=True, slots=True)
class LowestLatency:
    """Fastest first, by predicted p99 (or p50)."""

    percentile: str = "p99"
    name: str = "latency"

    def rank(self, views: Sequence[TargetView]) -> tuple[list[TargetView], dict[str, float]]:
        key = "p50_ms" if self.percentile == "p50" else "p99_ms"
        scores = {view.name: float(getattr(view, key)) for view in views}
        return sorted(views, key=lambda view: scores[view.name]), scores


@dataclass(frozen=True, slots=True)
class LiteLlmLatency:
    """A baseline: LiteLLM's latency-based routing as its router strategy describes it
    (``litellm/router_strategy/lowest_latency.py``: each deployment's recent latency per
    output token - time to first token for streams - lowest first, with no buffer; a
    deployment without data counts as 0, so untried deployments are tried first). Emulated
    on the router's window: its median latency over its average answer length, or its median
    time to first token once streams were observed, instead of the mean of the last 10
    calls. Fast failures are not latency samples (as LiteLLM logs latency on success);
    cool-downs after failures come from the breaker (LiteLLM's ``allowed_fails`` and
    ``cooldown_time``)."""

    name: str = "litellm_latency"

    def rank(self, views: Sequence[TargetView]) -> tuple[list[TargetView], dict[str, float]]:
        scores = {view.name: _per_token_ms(view) for view in views}
        return sorted(views, key=lambda view: scores[view.name]), scores


def _per_token_ms(view: TargetView) -> float:
    if view.latency_source != "observed":
        return 0.0
    if not math.isnan(view.ttft_p50_ms):
        return view.ttft_p50_ms
    tokens = view.output_tokens_per_call
    if math.isnan(tokens) or tokens <= 0:
        return 0.0
    return view.p50_ms / tokens


@dataclass(frozen=True, slots=True)
class CheapestWithinSlo:
    """Cheapest marginal price per call among targets whose predicted p99 meets the SLO,
    then the rest by p99. Hourly-priced targets (provisioned throughput, instances) are
    already paid for, so their marginal price is their token price: usually zero."""

    slo_p99_ms: float = 1500.0
    avg_input_tokens: int = 500
    avg_output_tokens: int = 300
    avg_cache_read_tokens: int = 0
    """Prompt-cache tokens a typical call reads (on top of ``avg_input_tokens``, uncached)."""
    avg_cache_write_tokens: int = 0
    """Prompt-cache tokens a typical call writes."""
    name: str = "cost"

    def __post_init__(self) -> None:
        check_fields(self, "cost")

    def rank(self, views: Sequence[TargetView]) -> tuple[list[TargetView], dict[str, float]]:
        prices = {
            view.name: view.target.pricing.token_cost_usd(
                self.avg_input_tokens,
                self.avg_output_tokens,
                self.avg_cache_read_tokens,
                self.avg_cache_write_tokens,
            )
            for view in views
        }
        within = sorted(
            (v for v in views if v.p99_ms <= self.slo_p99_ms), key=lambda view: prices[view.name]
        )
        beyond = sorted(
            (v for v in views if v.p99_ms > self.slo_p99_ms), key=lambda view: view.p99_ms
        )
        return within + beyond, prices
