"""Deployment targets: where a foundation-model call can run, and what it costs.

A :class:`Target` is one concrete place (a Bedrock model id or provisioned-model ARN, a
SageMaker endpoint, a Lambda function) of one :class:`Pattern`. Each carries its pricing, its
capacity and a prior :class:`LatencyProfile` that stands in for observed latency until the
router has seen enough samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from mangaroute.core.limits import check_fields


class Pattern(StrEnum):
    """How a model is deployed; the seed's four patterns plus Bedrock on-demand.

    The seed's switcher falls back to ``bedrock_ondemand_*`` patterns that its pattern enum
    never defines; here on-demand is a pattern of its own.
    """

    BEDROCK_PROVISIONED = "bedrock_provisioned"
    BEDROCK_ON_DEMAND = "bedrock_on_demand"
    SAGEMAKER_REALTIME = "sagemaker_realtime"
    SAGEMAKER_SERVERLESS = "sagemaker_serverless"
    LAMBDA_ON_DEMAND = "lambda_on_demand"


OPS_SCORE: dict[Pattern, float] = {
    Pattern.LAMBDA_ON_DEMAND: 95.0,
    Pattern.BEDROCK_PROVISIONED: 85.0,
    Pattern.SAGEMAKER_REALTIME: 40.0,
    Pattern.SAGEMAKER_SERVERLESS: 70.0,
    # Not in the seed. A Bedrock on-demand call is the same managed API the seed's Lambda
    # pattern calls, without the function to run, so it gets the seed's top score.
    Pattern.BEDROCK_ON_DEMAND: 95.0,
}
"""Operational simplicity (0-100, higher is simpler); seed section 1.2."""


@dataclass(frozen=True, slots=True)
class LatencyProfile:
    """Latency percentiles in milliseconds, with cold-start behaviour (seed section 1.2)."""

    p50_ms: float
    p90_ms: float
    p99_ms: float
    cold_start_ms: float = 0.0
    cold_start_probability: float = 0.0

    def __post_init__(self) -> None:
        check_fields(self, "profile")
        for lower, higher in (("p50_ms", "p90_ms"), ("p90_ms", "p99_ms")):
            if getattr(self, higher) < getattr(self, lower):
                raise ValueError(
                    f"{higher} must be >= {lower} (percentiles never decrease), got "
                    f"{lower}={getattr(self, lower)} {higher}={getattr(self, higher)}"
                )

    @property
    def effective_p99_ms(self) -> float:
        """p99 with cold starts: once 1 % or more of calls start cold, the cold start *is* the
        tail (seed section 1.2, ``LatencyProfile.effective_p99_ms``)."""
        if self.cold_start_probability >= 0.01:
            return max(self.p99_ms, self.cold_start_ms)
        return self.p99_ms


SEED_PROFILES: dict[str, LatencyProfile] = {
    Pattern.LAMBDA_ON_DEMAND.value: LatencyProfile(1200, 2000, 3500, 4500, 0.05),
    Pattern.BEDROCK_PROVISIONED.value: LatencyProfile(600, 900, 1400),
    Pattern.SAGEMAKER_REALTIME.value: LatencyProfile(500, 800, 1200),
    Pattern.SAGEMAKER_SERVERLESS.value: LatencyProfile(700, 1500, 5000, 8000, 0.10),
}
"""The seed's four reference latency profiles, "measured for MangaAssist" (section 1.2)."""

BUILTIN_PROFILES: dict[str, LatencyProfile] = {
    **SEED_PROFILES,
    # The seed defines no on-demand profile. Its health dashboard (section 5.2) shows
    # on-demand Haiku at p99 1,200 ms; p50 and p90 keep the shape of the seed's provisioned
    # profile (0.43 and 0.64 of p99). An assumption to replace with your own measurements.
    Pattern.BEDROCK_ON_DEMAND.value: LatencyProfile(515, 770, 1200),
}
"""Profiles a config can name without defining them; a target's pattern name is its default."""


@dataclass(frozen=True, slots=True)
class Pricing:
    """What a target costs: per token (on-demand) and/or per hour (model units, instances).

    ``hourly_usd`` is the whole target's hourly price (model units x price per unit-hour, or
    instances x instance-hour price), paid whether or not it serves traffic.

    Prompt caching: Bedrock bills tokens read from the cache (``usage.cacheReadInputTokens``)
    at a reduced rate and tokens written to it (``cacheWriteInputTokens``) at a rate that may
    be above the input rate; every other input token at the input rate (AWS, "Prompt caching
    for faster model inference"). Unset cache prices (``None``) take the input price, so a
    config without them prices cached tokens as ordinary input.
    """

    input_per_million_usd: float = 0.0
    output_per_million_usd: float = 0.0
    hourly_usd: float = 0.0
    cache_read_per_million_usd: float | None = None
    cache_write_per_million_usd: float | None = None

    def __post_init__(self) -> None:
        check_fields(self, "pricing")

    def token_cost_usd(
        self,
        input_tokens: float,
        output_tokens: float,
        cache_read_tokens: float = 0,
        cache_write_tokens: float = 0,
    ) -> float:
        """Marginal price of one call: what the tokens cost beyond any hourly commitment.

        ``input_tokens`` are the uncached ones (Converse's ``usage.inputTokens``); the cache
        counts are priced apart.
        """
        cost = (
            input_tokens * self.input_per_million_usd + output_tokens * self.output_per_million_usd
        )
        if cache_read_tokens or cache_write_tokens:
            read = self.cache_read_per_million_usd
            write = self.cache_write_per_million_usd
            cost += cache_read_tokens * (self.input_per_million_usd if read is None else read)
            cost += cache_write_tokens * (self.input_per_million_usd if write is None else write)
        return cost / 1_000_000


@dataclass(frozen=True, slots=True)
class Capacity:
    """How much a target can carry; ``None`` means unbounded (or unknown) on that axis.

    Bedrock targets are limited in tokens per minute (model units, or the account's on-demand
    quota), SageMaker real-time endpoints in requests per second across their instances,
    Lambda and SageMaker serverless in concurrency.
    """

    tokens_per_minute: float | None = None
    requests_per_second: float | None = None
    concurrency: int | None = None

    def __post_init__(self) -> None:
        check_fields(self, "capacity")


@dataclass(frozen=True, slots=True)
class Target:
    """One deployment target a call can be sent to."""

    name: str
    pattern: Pattern
    model_id: str
    """Bedrock model id, inference-profile id or provisioned-model ARN; SageMaker endpoint
    name; Lambda function name."""
    region: str
    prior: LatencyProfile
    tier: str = "custom"
    """The model class behind the target (``"haiku"``, ``"sonnet"``, ``"custom"`` for a
    fine-tuned model): what the ``tier`` ranker prefers and, ranked by ``[router] quality``,
    the answer quality a class's ``quality_floor`` asks for."""
    pricing: Pricing = field(default_factory=Pricing)
    capacity: Capacity = field(default_factory=Capacity)
    ops_score: float = -1.0
    """Operational simplicity 0-100; ``-1`` takes the pattern's default from the seed."""

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a target needs a non-empty name")
        if self.ops_score == -1:
            object.__setattr__(self, "ops_score", OPS_SCORE[self.pattern])
        check_fields(self, "target", ("ops_score",))

    def identity(self) -> dict[str, str]:
        """What names the target in a decision's or a snapshot's JSON: name, pattern, model
        id, region, tier (its prior, pricing and capacity are the config's)."""
        return {
            "name": self.name,
            "pattern": self.pattern.value,
            "model_id": self.model_id,
            "region": self.region,
            "tier": self.tier,
        }
