"""The seed's latency-fit score (section 1.2, ``LatencyAnalyzer.recommend_pattern``).

``total = 0.35 latency + 0.25 throughput + 0.25 cost + 0.15 operations``, each component on
0-100. The throughput and cost components follow the seed's formulas exactly. The latency
component does not: the seed's in-range branch falls from 100 to **0** as the effective p99
approaches the target, while its over-target branch starts at **50** - so a target just over
the SLO outscores one just under it. Here the in-range branch falls from 100 to 50 instead,
which makes the score continuous and monotone; ``seed_exact=True`` restores the seed's formula
for comparison.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mangaroute.core.limits import check_fields
from mangaroute.core.targets import Target


@dataclass(frozen=True, slots=True)
class ScoreWeights:
    """How much each 0-100 component counts in the total (seed section 1.2 defaults).

    The one weighting rule for both the router's ``score`` ranker and ``mangaroute plan
    recommend``: weights are relative (each >= 0, not all zero) and :meth:`total` divides by
    their sum, so the seed's weights, which sum to 1, give the seed's totals, and ``2, 1, 1, 0``
    means "latency counts twice". ``ops`` is the config key ``score.weights.ops``; it weighs
    the operations score.
    """

    latency: float = 0.35
    throughput: float = 0.25
    cost: float = 0.25
    ops: float = 0.15

    def __post_init__(self) -> None:
        check_fields(self, "score.weights")
        values = (self.latency, self.throughput, self.cost, self.ops)
        if sum(values) <= 0:
            raise ValueError(f"score weights must be >= 0 and not all zero, got {values}")

    def total(self, latency: float, throughput: float, cost: float, ops: float) -> float:
        """The weighted mean of the four component scores (0-100 in, 0-100 out)."""
        weighted = (
            self.latency * latency
            + self.throughput * throughput
            + self.cost * cost
            + self.ops * ops
        )
        return weighted / (self.latency + self.throughput + self.cost + self.ops)


def latency_score(
    effective_p99_ms: float, target_p99_ms: float, *, seed_exact: bool = False
) -> float:
    """0-100, higher is faster: 100 up to half the target, falling to 50 at the target and to
    0 at twice the target."""
    half = target_p99_ms * 0.5
    if effective_p99_ms <= half:
        return 100.0
    if effective_p99_ms <= target_p99_ms:
        drop = 100.0 if seed_exact else 50.0
        return 100.0 - drop * (effective_p99_ms - half) / half
    overshoot = (effective_p99_ms - target_p99_ms) / target_p99_ms
    return max(0.0, 50.0 * (1.0 - overshoot))


def throughput_score(available_rps: float, required_rps: float) -> float:
    """0-100: 100 with twice the required rate available, 70 at exactly the required rate,
    proportionally less below it (seed ``_score_throughput``)."""
    if available_rps >= required_rps * 2:
        return 100.0
    if available_rps >= required_rps:
        return 70.0 + 30.0 * (available_rps - required_rps) / required_rps
    return max(0.0, 70.0 * available_rps / required_rps)


def cost_score(estimated_monthly_usd: float, max_monthly_usd: float) -> float:
    """0-100, higher is cheaper: 100 up to 30 % of the budget, 40 at the budget, 0 at twice
    the budget (seed ``_score_cost``)."""
    if estimated_monthly_usd <= max_monthly_usd * 0.3:
        return 100.0
    if estimated_monthly_usd <= max_monthly_usd:
        ratio = (estimated_monthly_usd - max_monthly_usd * 0.3) / (max_monthly_usd * 0.7)
        return 100.0 - 60.0 * ratio
    overshoot = (estimated_monthly_usd - max_monthly_usd) / max_monthly_usd
    return max(0.0, 40.0 * (1.0 - overshoot))


SECONDS_PER_MONTH = 86_400 * 30
"""The seed prices a month as 30 days (section 1.2 and section 3)."""


def available_rps(target: Target, avg_tokens_per_request: float, latency_s: float) -> float:
    """The request rate a target can carry: the tightest of its capacity axes (tokens/min
    over the average request size; requests/s; concurrency over latency, by Little's law).
    A target with no declared capacity is treated as unbounded."""
    capacity = target.capacity
    limits = [math.inf]
    if capacity.tokens_per_minute is not None and avg_tokens_per_request > 0:
        limits.append(capacity.tokens_per_minute / avg_tokens_per_request / 60.0)
    if capacity.requests_per_second is not None:
        limits.append(capacity.requests_per_second)
    if capacity.concurrency is not None and latency_s > 0:
        limits.append(capacity.concurrency / latency_s)
    return min(limits)


def monthly_cost_usd(target: Target, rps: float, input_tokens: int, output_tokens: int) -> float:
    """A month at ``rps`` on this target: its hourly commitment plus its per-call price."""
    per_call = target.pricing.token_cost_usd(input_tokens, output_tokens)
    return target.pricing.hourly_usd * 24 * 30 + per_call * rps * SECONDS_PER_MONTH
