"""Total cost of ownership per month for four deployment patterns (seed §3.1).

The formulas are the seed's; every price, split and ratio is an input with the seed's value as
default. Two seed constants are exposed because they contradict its own sizing:
``provisioned_sonnet_mus`` (the seed hard-codes 2 where §2.2's arithmetic gives 49 for
MangaAssist; set ``use_sized_sonnet_mus`` to take the sized count) and the SageMaker instance
counts (2 base / 4 peak where the sizing gives 6-13 ml.g5.2xlarge).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from mangaroute.planning.errors import (
    PlanningInputError,
    check_fraction,
    check_int,
    check_non_negative,
    check_positive,
)
from mangaroute.planning.prices import Prices
from mangaroute.planning.traffic import CapacityAssumptions, TrafficProfile, size_capacity

__all__ = [
    "TcoAssumptions",
    "TcoResult",
    "bedrock_provisioned_tco",
    "compare_tco",
    "hybrid_tco",
    "lambda_on_demand_tco",
    "provisioned_sonnet_mus",
    "sagemaker_realtime_tco",
]

_INT_FIELDS = frozenset(
    {
        "days_per_month",
        "provisioned_sonnet_mus",
        "provisioned_haiku_mus",
        "provisioned_hours_per_day",
        "sagemaker_base_instances",
        "sagemaker_peak_instances",
        "hybrid_sonnet_mus",
        "hybrid_sagemaker_instances",
    }
)
_FRACTION_FIELDS = frozenset(
    {
        "off_peak_ratio",
        "lambda_haiku_share",
        "hybrid_provisioned_share",
        "hybrid_haiku_share",
        "hybrid_sonnet_share",
        "hybrid_sagemaker_share",
    }
)


@dataclass(frozen=True)
class TcoAssumptions:
    """Volumes, splits and operating effort behind the TCO (seed §3.1 unless noted).

    - A month is 30 days.
    - ``off_peak_ratio`` 0.3 is our assumption (the seed gives no value). The seed documents it
      as "off-peak traffic as fraction of peak" but multiplies it with *daily* messages, so it
      acts as a fraction of the average rate; we keep the math.
    - Lambda + on-demand: 70 % Haiku / 30 % Sonnet.
    - Provisioned: Sonnet MUs through the peak hours, Haiku MUs for the rest of a 12-hour
      provisioned day, on-demand Haiku for the other 12 hours.
    - SageMaker: ml.g5.2xlarge, 2 instances off-peak and 4 during the peak.
    - Hybrid: 25 % provisioned Sonnet (1 MU over the peak hours), 50 % on-demand Haiku, 15 %
      on-demand Sonnet, 10 % SageMaker (1 instance, 24/7) — the seed's math; its comments say
      40 % / 35 %.
    - Operations: 2 / 4 / 12 / 8 engineer-hours a month.
    """

    days_per_month: int = 30
    off_peak_ratio: float = 0.3
    lambda_haiku_share: float = 0.7
    provisioned_sonnet_mus: int = 2
    use_sized_sonnet_mus: bool = False
    provisioned_haiku_mus: int = 1
    provisioned_hours_per_day: int = 12
    sagemaker_base_instances: int = 2
    sagemaker_peak_instances: int = 4
    hybrid_provisioned_share: float = 0.25
    hybrid_haiku_share: float = 0.50
    hybrid_sonnet_share: float = 0.15
    hybrid_sagemaker_share: float = 0.10
    hybrid_sonnet_mus: int = 1
    hybrid_sagemaker_instances: int = 1
    ops_hours_lambda_on_demand: float = 2.0
    ops_hours_bedrock_provisioned: float = 4.0
    ops_hours_sagemaker_realtime: float = 12.0
    ops_hours_hybrid: float = 8.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "use_sized_sonnet_mus":
                if not isinstance(value, bool):
                    raise PlanningInputError(f.name, f"must be true or false, got {value!r}")
                continue
            if f.name in _INT_FIELDS:
                check_int(f.name, value)
            if f.name in _FRACTION_FIELDS:
                check_fraction(f.name, value)
            else:
                check_non_negative(f.name, value)
        check_positive("days_per_month", self.days_per_month)
        if self.provisioned_hours_per_day > 24:
            raise PlanningInputError("provisioned_hours_per_day", "must be ≤ 24")
        split = (
            self.hybrid_provisioned_share
            + self.hybrid_haiku_share
            + self.hybrid_sonnet_share
            + self.hybrid_sagemaker_share
        )
        if not math.isclose(split, 1.0, abs_tol=1e-9):
            raise PlanningInputError(
                "hybrid_provisioned_share", f"hybrid shares must sum to 1, got {split:g}"
            )


@dataclass(frozen=True)
class TcoResult:
    """Monthly USD for one pattern, split into compute, tokens and operations."""

    pattern: str
    compute_usd: float
    token_usd: float
    ops_usd: float
    total_usd: float
    cost_per_message_usd: float
    breakdown: tuple[tuple[str, float], ...]
    quantities: tuple[tuple[str, float], ...] = ()


def _result(
    pattern: str,
    traffic: TrafficProfile,
    prices: Prices,
    assumptions: TcoAssumptions,
    *,
    compute: float,
    tokens: float,
    ops_hours: float,
    breakdown: tuple[tuple[str, float], ...],
    quantities: tuple[tuple[str, float], ...] = (),
) -> TcoResult:
    """One pattern's month: its compute and tokens, ``ops_hours`` of engineer time, and the
    total over the month's messages (every pattern carries the whole day's traffic)."""
    ops = ops_hours * prices.engineer_hourly
    total = compute + tokens + ops
    messages = traffic.daily_messages * assumptions.days_per_month
    return TcoResult(pattern, compute, tokens, ops, total, total / messages, breakdown, quantities)


def lambda_on_demand_tco(
    traffic: TrafficProfile,
    prices: Prices,
    assumptions: TcoAssumptions,
    capacity: CapacityAssumptions,
) -> TcoResult:
    """Lambda in front of Bedrock on demand: tokens + GB-seconds + requests + 2 h ops."""
    messages = traffic.daily_messages * assumptions.days_per_month
    haiku = messages * assumptions.lambda_haiku_share
    sonnet = messages - haiku
    inp, out = traffic.avg_input_tokens, traffic.avg_output_tokens
    haiku_usd = haiku * prices.haiku_message_usd(inp, out)
    sonnet_usd = sonnet * prices.sonnet_message_usd(inp, out)
    gb_seconds = messages * capacity.lambda_memory_mb / 1024 * capacity.lambda_avg_duration_s
    compute_usd = gb_seconds * prices.lambda_gb_second
    requests_usd = messages / 1_000_000 * prices.lambda_per_million_requests
    return _result(
        "lambda_on_demand",
        traffic,
        prices,
        assumptions,
        compute=compute_usd + requests_usd,
        tokens=haiku_usd + sonnet_usd,
        ops_hours=assumptions.ops_hours_lambda_on_demand,
        breakdown=(
            ("haiku_tokens", haiku_usd),
            ("sonnet_tokens", sonnet_usd),
            ("lambda_compute", compute_usd),
            ("lambda_requests", requests_usd),
        ),
    )


def provisioned_sonnet_mus(
    traffic: TrafficProfile, assumptions: TcoAssumptions, capacity: CapacityAssumptions
) -> int:
    """The Sonnet MU count the provisioned TCO uses: the input, or the sized one if asked."""
    if assumptions.use_sized_sonnet_mus:
        return size_capacity(traffic, capacity).bedrock_provisioned.sonnet_mus
    return assumptions.provisioned_sonnet_mus


def bedrock_provisioned_tco(
    traffic: TrafficProfile,
    prices: Prices,
    assumptions: TcoAssumptions,
    capacity: CapacityAssumptions,
) -> TcoResult:
    """Sonnet MUs over the peak, Haiku MUs over the rest of the provisioned day, on-demand
    Haiku for ``daily × off_peak_ratio × off-hours/24`` messages, 4 h ops."""
    hours = assumptions.provisioned_hours_per_day
    if traffic.peak_hours > hours:
        raise PlanningInputError(
            "provisioned_hours_per_day",
            f"must cover the {traffic.peak_hours} peak hours, got {hours}",
        )
    days = assumptions.days_per_month
    sonnet_mus = provisioned_sonnet_mus(traffic, assumptions, capacity)
    sized = size_capacity(traffic, capacity).bedrock_provisioned
    sonnet_daily = sonnet_mus * prices.sonnet_mu_hourly * traffic.peak_hours
    haiku_daily = (
        assumptions.provisioned_haiku_mus * prices.haiku_mu_hourly * (hours - traffic.peak_hours)
    )
    off_hours = 24 - hours
    off_messages = traffic.daily_messages * assumptions.off_peak_ratio * off_hours / 24
    off_daily = off_messages * prices.haiku_message_usd(
        traffic.avg_input_tokens, traffic.avg_output_tokens
    )
    return _result(
        "bedrock_provisioned",
        traffic,
        prices,
        assumptions,
        compute=(sonnet_daily + haiku_daily) * days,
        tokens=off_daily * days,
        ops_hours=assumptions.ops_hours_bedrock_provisioned,
        breakdown=(
            ("sonnet_provisioned", sonnet_daily * days),
            ("haiku_provisioned", haiku_daily * days),
            ("off_peak_on_demand", off_daily * days),
        ),
        quantities=(
            ("sonnet_mus", float(sonnet_mus)),
            ("haiku_mus", float(assumptions.provisioned_haiku_mus)),
            ("sized_sonnet_mus", float(sized.sonnet_mus)),
        ),
    )


def sagemaker_realtime_tco(
    traffic: TrafficProfile,
    prices: Prices,
    assumptions: TcoAssumptions,
    capacity: CapacityAssumptions,
) -> TcoResult:
    """Instance-hours (base off-peak, more at peak) × hourly price; no token cost; 12 h ops."""
    days = assumptions.days_per_month
    sized = size_capacity(traffic, capacity).sagemaker_realtime
    base_hours = (24 - traffic.peak_hours) * assumptions.sagemaker_base_instances * days
    peak_hours = traffic.peak_hours * assumptions.sagemaker_peak_instances * days
    return _result(
        "sagemaker_realtime",
        traffic,
        prices,
        assumptions,
        compute=(base_hours + peak_hours) * prices.sagemaker_instance_hourly,
        tokens=0.0,
        ops_hours=assumptions.ops_hours_sagemaker_realtime,
        breakdown=(
            ("base_instances", base_hours * prices.sagemaker_instance_hourly),
            ("peak_instances", peak_hours * prices.sagemaker_instance_hourly),
        ),
        quantities=(
            ("base_instance_hours", float(base_hours)),
            ("peak_instance_hours", float(peak_hours)),
            ("sized_min_instances", float(sized.min_instances)),
            ("sized_max_instances", float(sized.max_instances)),
        ),
    )


def hybrid_tco(
    traffic: TrafficProfile,
    prices: Prices,
    assumptions: TcoAssumptions,
    capacity: CapacityAssumptions,
) -> TcoResult:
    """MangaAssist production mix: provisioned Sonnet at peak, on-demand Haiku and Sonnet,
    one SageMaker instance for manga-specific questions, 8 h ops.

    The provisioned share is paid by the MU-hour whatever it carries, and the SageMaker share by
    the instance-hour, so only the two on-demand shares have token costs.
    """
    days = assumptions.days_per_month
    messages = traffic.daily_messages * days
    inp, out = traffic.avg_input_tokens, traffic.avg_output_tokens
    provisioned = (
        assumptions.hybrid_sonnet_mus * prices.sonnet_mu_hourly * traffic.peak_hours * days
    )
    sagemaker = (
        assumptions.hybrid_sagemaker_instances * prices.sagemaker_instance_hourly * 24 * days
    )
    haiku = messages * assumptions.hybrid_haiku_share * prices.haiku_message_usd(inp, out)
    sonnet = messages * assumptions.hybrid_sonnet_share * prices.sonnet_message_usd(inp, out)
    return _result(
        "hybrid",
        traffic,
        prices,
        assumptions,
        compute=provisioned + sagemaker,
        tokens=haiku + sonnet,
        ops_hours=assumptions.ops_hours_hybrid,
        breakdown=(
            ("provisioned_compute", provisioned),
            ("haiku_on_demand", haiku),
            ("sonnet_on_demand", sonnet),
            ("sagemaker_instance", sagemaker),
        ),
        quantities=(
            ("sonnet_mus_for_share", float(_hybrid_mus_needed(traffic, assumptions, capacity))),
        ),
    )


def _hybrid_mus_needed(
    traffic: TrafficProfile, assumptions: TcoAssumptions, capacity: CapacityAssumptions
) -> int:
    """Sonnet MUs the hybrid's provisioned share needs if it all arrives in the peak hours."""
    rps = (
        traffic.daily_messages * assumptions.hybrid_provisioned_share / (traffic.peak_hours * 3600)
    )
    tokens_per_minute = rps * 60 * traffic.tokens_per_message
    return math.ceil(tokens_per_minute / capacity.sonnet_tokens_per_minute_per_mu)


def compare_tco(
    traffic: TrafficProfile,
    prices: Prices | None = None,
    assumptions: TcoAssumptions | None = None,
    capacity: CapacityAssumptions | None = None,
) -> tuple[TcoResult, ...]:
    """All four patterns, cheapest first (seed ``calculate_all``)."""
    args = (
        traffic,
        prices or Prices(),
        assumptions or TcoAssumptions(),
        capacity or CapacityAssumptions(),
    )
    results = (
        lambda_on_demand_tco(*args),
        bedrock_provisioned_tco(*args),
        sagemaker_realtime_tco(*args),
        hybrid_tco(*args),
    )
    return tuple(sorted(results, key=lambda r: r.total_usd))
