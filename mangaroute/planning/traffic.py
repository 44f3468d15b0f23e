"""Traffic → capacity: request and token rates, and what each deployment pattern needs.

The arithmetic follows the seed's §2.2 "Throughput Calculator"; where the seed's comment
disagrees with its own arithmetic (its "2 Sonnet MUs" for MangaAssist), the arithmetic wins
and ``docs/planning.md`` explains the difference. Nothing here picks a single "answer":
every pattern is sized, and the seed's own decision rule is replayed check by check.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from mangaroute.planning.errors import (
    PlanningInputError,
    check_at_least,
    check_fraction,
    check_int,
    check_non_negative,
    check_positive,
)
from mangaroute.planning.prices import Prices

__all__ = [
    "CapacityAssumptions",
    "CapacityPlan",
    "LambdaSizing",
    "Load",
    "ProvisionedSizing",
    "SageMakerSizing",
    "SeedCheck",
    "TrafficProfile",
    "compute_load",
    "seed_decision",
    "size_capacity",
]

SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class TrafficProfile:
    """A day of chatbot traffic (seed §2.2 ``TrafficProfile``; MangaAssist values by default).

    ``peak_multiplier`` is peak req/s over average req/s, held for ``peak_hours`` (MangaAssist:
    18:00-24:00 JST, §2.1); ``burst_factor`` is the flash-sale instantaneous rate over peak.
    """

    daily_messages: int = 1_000_000
    peak_multiplier: float = 3.5
    peak_hours: int = 6
    burst_factor: float = 2.0
    avg_input_tokens: int = 500
    avg_output_tokens: int = 300

    def __post_init__(self) -> None:
        check_int("daily_messages", self.daily_messages)
        check_positive("daily_messages", self.daily_messages)
        check_at_least("peak_multiplier", self.peak_multiplier, 1.0)
        check_int("peak_hours", self.peak_hours)
        check_positive("peak_hours", self.peak_hours)
        if self.peak_hours > 24:
            raise PlanningInputError("peak_hours", f"must be ≤ 24, got {self.peak_hours}")
        check_at_least("burst_factor", self.burst_factor, 1.0)
        check_int("avg_input_tokens", self.avg_input_tokens)
        check_int("avg_output_tokens", self.avg_output_tokens)
        check_non_negative("avg_input_tokens", self.avg_input_tokens)
        check_non_negative("avg_output_tokens", self.avg_output_tokens)
        if self.avg_input_tokens + self.avg_output_tokens == 0:
            raise PlanningInputError("avg_input_tokens", "input + output tokens must be > 0")

    @property
    def tokens_per_message(self) -> int:
        """Input plus output tokens of an average message."""
        return self.avg_input_tokens + self.avg_output_tokens


def _default_instance_rps() -> Mapping[str, float]:
    return MappingProxyType(
        {"ml.g5.xlarge": 5.0, "ml.g5.2xlarge": 8.0, "ml.g5.12xlarge": 25.0, "ml.p4d.24xlarge": 50.0}
    )


@dataclass(frozen=True)
class CapacityAssumptions:
    """Per-unit capacity figures, all from seed §2.2 unless noted.

    - Bedrock model unit: Sonnet 40,000 and Haiku 80,000 tokens/min. These are the seed's
      estimates: AWS does not publish per-MU token rates ("For more information about what
      an MU specifies, contact your AWS account manager" — Bedrock user guide,
      *Provisioned Throughput*).
    - Lambda: 1,000 concurrent executions (the default per-region account quota), 2 s per
      call, burst must stay under 70 % of capacity, reserved concurrency carries a 1.2 margin,
      1,024 MB memory and a 30 s timeout.
    - SageMaker: requests/s one instance sustains (g5.xlarge 5, g5.2xlarge 8, g5.12xlarge 25,
      p4d.24xlarge 50), the instance type sized by default, and 2 spare instances above the
      burst count for ``MaxCapacity``.
    - The seed prefers provisioned throughput only up to 10 Sonnet MUs, and commits for a month
      when peak exceeds 20 req/s.
    """

    sonnet_tokens_per_minute_per_mu: float = 40_000.0
    haiku_tokens_per_minute_per_mu: float = 80_000.0
    lambda_max_concurrency: int = 1000
    lambda_avg_duration_s: float = 2.0
    lambda_burst_headroom: float = 0.7
    lambda_reserved_margin: float = 1.2
    lambda_memory_mb: int = 1024
    lambda_timeout_s: int = 30
    sagemaker_instance_rps: Mapping[str, float] = field(default_factory=_default_instance_rps)
    sagemaker_instance_type: str = "ml.g5.2xlarge"
    sagemaker_spare_instances: int = 2
    seed_provisioned_max_mus: int = 10
    commitment_min_peak_rps: float = 20.0

    def __post_init__(self) -> None:
        check_positive("sonnet_tokens_per_minute_per_mu", self.sonnet_tokens_per_minute_per_mu)
        check_positive("haiku_tokens_per_minute_per_mu", self.haiku_tokens_per_minute_per_mu)
        for name in ("lambda_max_concurrency", "lambda_memory_mb", "lambda_timeout_s"):
            check_int(name, getattr(self, name))
            check_positive(name, getattr(self, name))
        check_positive("lambda_avg_duration_s", self.lambda_avg_duration_s)
        check_fraction("lambda_burst_headroom", self.lambda_burst_headroom)
        check_at_least("lambda_reserved_margin", self.lambda_reserved_margin, 1.0)
        if not self.sagemaker_instance_rps:
            raise PlanningInputError("sagemaker_instance_rps", "needs at least one instance type")
        for name, rps in self.sagemaker_instance_rps.items():
            check_positive(f"sagemaker_instance_rps.{name}", rps)
        if self.sagemaker_instance_type not in self.sagemaker_instance_rps:
            known = ", ".join(sorted(self.sagemaker_instance_rps))
            raise PlanningInputError(
                "sagemaker_instance_type",
                f"{self.sagemaker_instance_type!r} has no req/s figure (known: {known})",
            )
        check_int("sagemaker_spare_instances", self.sagemaker_spare_instances)
        check_non_negative("sagemaker_spare_instances", self.sagemaker_spare_instances)
        check_int("seed_provisioned_max_mus", self.seed_provisioned_max_mus)
        check_non_negative("commitment_min_peak_rps", self.commitment_min_peak_rps)

    @property
    def lambda_capacity_rps(self) -> float:
        """Requests/s the concurrency quota sustains (Little's law: concurrency / duration)."""
        return self.lambda_max_concurrency / self.lambda_avg_duration_s


@dataclass(frozen=True)
class Load:
    """Request and token rates implied by a traffic profile (seed §2.2 ``calculate``).

    ``peak_hour_tokens`` is the seed's ``sustained_tokens_per_hour``: despite the name it is
    computed from the *peak* rate. ``peak_window_share`` is the fraction of the day's messages
    that the peak window alone would carry (peak_multiplier × peak_hours / 24); above 1 the
    profile asks for more traffic in the peak than in the whole day.
    """

    avg_rps: float
    peak_rps: float
    burst_rps: float
    peak_tokens_per_minute: int
    peak_hour_tokens: int
    peak_window_share: float


@dataclass(frozen=True)
class LambdaSizing:
    """Lambda + Bedrock on-demand sizing (seed §2.2, Lambda branch)."""

    capacity_rps: float
    burst_limit_rps: float
    fits: bool
    reserved_concurrency: int
    provisioned_concurrency: int
    memory_mb: int
    timeout_s: int


@dataclass(frozen=True)
class ProvisionedSizing:
    """Bedrock provisioned-throughput sizing: either model alone carries the whole peak."""

    sonnet_mus: int
    haiku_mus: int
    sonnet_hourly_usd: float
    haiku_hourly_usd: float
    commitment: str
    within_seed_threshold: bool


@dataclass(frozen=True)
class SageMakerSizing:
    """SageMaker real-time sizing for one instance type.

    ``min_instances`` carries the peak, ``max_instances`` the burst plus spares. The
    auto-scaling target is expressed both in req/s per instance (the seed's
    ``auto_scaling_target``) and in the unit the ``SageMakerVariantInvocationsPerInstance``
    metric uses: invocations per instance *per minute*.
    """

    instance_type: str
    instance_rps: float
    min_instances: int
    max_instances: int
    target_rps_per_instance: float
    target_invocations_per_minute: float


@dataclass(frozen=True)
class SeedCheck:
    """One step of the seed's decision rule, in its order, with what the numbers say."""

    pattern: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class CapacityPlan:
    """Everything ``plan throughput`` reports."""

    traffic: TrafficProfile
    load: Load
    lambda_on_demand: LambdaSizing
    bedrock_provisioned: ProvisionedSizing
    sagemaker_realtime: SageMakerSizing
    sagemaker_options: tuple[SageMakerSizing, ...]
    seed_checks: tuple[SeedCheck, ...]

    @property
    def seed_pattern(self) -> str:
        """The pattern the seed's ``_recommend`` returns: the first check that passes."""
        return next(check.pattern for check in self.seed_checks if check.passed)


def compute_load(traffic: TrafficProfile) -> Load:
    """Average / peak / burst req/s and peak token rates; token counts truncate like the seed."""
    avg_rps = traffic.daily_messages / SECONDS_PER_DAY
    peak_rps = avg_rps * traffic.peak_multiplier
    return Load(
        avg_rps=avg_rps,
        peak_rps=peak_rps,
        burst_rps=peak_rps * traffic.burst_factor,
        peak_tokens_per_minute=int(peak_rps * 60 * traffic.tokens_per_message),
        peak_hour_tokens=int(peak_rps * 3600 * traffic.tokens_per_message),
        peak_window_share=traffic.peak_multiplier * traffic.peak_hours / 24,
    )


def size_lambda(load: Load, capacity: CapacityAssumptions) -> LambdaSizing:
    """Concurrency = req/s × duration; reserved covers the burst with a margin."""
    limit = capacity.lambda_capacity_rps * capacity.lambda_burst_headroom
    reserved = math.ceil(
        load.burst_rps * capacity.lambda_avg_duration_s * capacity.lambda_reserved_margin
    )
    return LambdaSizing(
        capacity_rps=capacity.lambda_capacity_rps,
        burst_limit_rps=limit,
        fits=load.burst_rps < limit,
        reserved_concurrency=min(reserved, capacity.lambda_max_concurrency),
        provisioned_concurrency=math.ceil(load.peak_rps * capacity.lambda_avg_duration_s),
        memory_mb=capacity.lambda_memory_mb,
        timeout_s=capacity.lambda_timeout_s,
    )


def size_provisioned(
    load: Load, capacity: CapacityAssumptions, prices: Prices
) -> ProvisionedSizing:
    """Model units = ceil(peak tokens/min ÷ tokens/min per MU), per model."""
    sonnet = math.ceil(load.peak_tokens_per_minute / capacity.sonnet_tokens_per_minute_per_mu)
    haiku = math.ceil(load.peak_tokens_per_minute / capacity.haiku_tokens_per_minute_per_mu)
    commit = load.peak_rps > capacity.commitment_min_peak_rps
    return ProvisionedSizing(
        sonnet_mus=sonnet,
        haiku_mus=haiku,
        sonnet_hourly_usd=sonnet * prices.sonnet_mu_hourly,
        haiku_hourly_usd=haiku * prices.haiku_mu_hourly,
        commitment="OneMonth" if commit else "NoCommitment",
        within_seed_threshold=sonnet <= capacity.seed_provisioned_max_mus,
    )


def size_sagemaker(
    load: Load, capacity: CapacityAssumptions, instance_type: str
) -> SageMakerSizing:
    """Instances for the peak (min) and for the burst plus spares (max)."""
    rps = capacity.sagemaker_instance_rps[instance_type]
    return SageMakerSizing(
        instance_type=instance_type,
        instance_rps=rps,
        min_instances=math.ceil(load.peak_rps / rps),
        max_instances=math.ceil(load.burst_rps / rps) + capacity.sagemaker_spare_instances,
        target_rps_per_instance=rps,
        target_invocations_per_minute=rps * 60,
    )


def seed_decision(
    load: Load,
    lam: LambdaSizing,
    prov: ProvisionedSizing,
    capacity: CapacityAssumptions,
) -> tuple[SeedCheck, ...]:
    """Replay seed §2.2 ``_recommend``: Lambda if the burst fits, else provisioned if ≤ 10
    Sonnet MUs, else SageMaker. Each check is reported, not just the winner."""
    return (
        SeedCheck(
            "lambda_on_demand",
            lam.fits,
            f"burst {load.burst_rps:.2f} req/s {'<' if lam.fits else '≥'} "
            f"{lam.burst_limit_rps:.2f} req/s ({capacity.lambda_burst_headroom:.0%} of "
            f"{lam.capacity_rps:.0f} req/s Lambda capacity)",
        ),
        SeedCheck(
            "bedrock_provisioned",
            prov.within_seed_threshold,
            f"{prov.sonnet_mus} Sonnet MUs {'≤' if prov.within_seed_threshold else '>'} "
            f"the seed's threshold of {capacity.seed_provisioned_max_mus}",
        ),
        SeedCheck("sagemaker_realtime", True, "fallback: always sized"),
    )


def size_capacity(
    traffic: TrafficProfile,
    capacity: CapacityAssumptions | None = None,
    prices: Prices | None = None,
) -> CapacityPlan:
    """Size every pattern for ``traffic`` and replay the seed's decision rule."""
    capacity = capacity or CapacityAssumptions()
    prices = prices or Prices()
    load = compute_load(traffic)
    lam = size_lambda(load, capacity)
    prov = size_provisioned(load, capacity, prices)
    options = tuple(
        size_sagemaker(load, capacity, name)
        for name in sorted(
            capacity.sagemaker_instance_rps, key=lambda n: capacity.sagemaker_instance_rps[n]
        )
    )
    return CapacityPlan(
        traffic=traffic,
        load=load,
        lambda_on_demand=lam,
        bedrock_provisioned=prov,
        sagemaker_realtime=size_sagemaker(load, capacity, capacity.sagemaker_instance_type),
        sagemaker_options=options,
        seed_checks=seed_decision(load, lam, prov, capacity),
    )
