"""Latency-fit recommendation: the seed's weighted score over deployment patterns.

Seed §1.2 ("Latency Analyzer"): hard filters, then four 0-100 component scores combined with
weights latency 0.35, throughput 0.25, cost 0.25, operations 0.15. Inputs are the seed's
reference latency profiles by default, or live p50/p90/p99 numbers (``profiles=``), so the
router's snapshot can feed the same ranking.

One deliberate change: the seed's latency score is not monotone (it is 0 exactly at the
target p99 but ≈50 just above it). :func:`latency_score` uses a corrected continuous curve
by default; ``seed_exact=True`` reproduces the seed's formula.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace

from mangaroute.core.scoring import (
    SECONDS_PER_MONTH,
    ScoreWeights,
    cost_score,
    latency_score,
    throughput_score,
)
from mangaroute.core.targets import BUILTIN_PROFILES, SEED_PROFILES, LatencyProfile
from mangaroute.planning.errors import (
    PlanningInputError,
    check_at_least,
    check_non_negative,
    check_positive,
)

__all__ = [
    "REFERENCE_CANDIDATES",
    "Candidate",
    "Dropped",
    "LatencyProfile",
    "RecommendSettings",
    "Recommendation",
    "Requirement",
    "ScoreWeights",
    "ScoredCandidate",
    "cost_score",
    "latency_score",
    "recommend",
    "throughput_score",
]

COLD_START_RELEVANCE = 0.01
"""Cold starts count toward p99 from 1 % of calls (seed code ``>= 0.01``; comment ">1%")."""


@dataclass(frozen=True)
class Candidate:
    """A deployment pattern with everything the score needs.

    ``max_rps``, the monthly cost model (``fixed + req/s × 30 days × per_request``) and
    ``ops_score`` are the seed's §1.2 estimate tables.
    """

    pattern: str
    latency: LatencyProfile
    max_rps: float
    fixed_monthly_usd: float
    per_request_usd: float
    ops_score: float
    serves_custom_models: bool = False

    def __post_init__(self) -> None:
        check_positive("max_rps", self.max_rps)
        check_non_negative("fixed_monthly_usd", self.fixed_monthly_usd)
        check_non_negative("per_request_usd", self.per_request_usd)
        check_non_negative("ops_score", self.ops_score)

    def monthly_cost_usd(self, rps: float) -> float:
        """The seed's estimate: ``rps`` sustained all month (an upper bound, not a forecast)."""
        return self.fixed_monthly_usd + rps * SECONDS_PER_MONTH * self.per_request_usd


REFERENCE_CANDIDATES: tuple[Candidate, ...] = (
    Candidate(
        "lambda_on_demand",
        SEED_PROFILES["lambda_on_demand"],
        max_rps=1000,
        fixed_monthly_usd=0,
        per_request_usd=0.0005,
        ops_score=95,
    ),
    Candidate(
        "bedrock_provisioned",
        SEED_PROFILES["bedrock_provisioned"],
        max_rps=500,
        fixed_monthly_usd=10_800,
        per_request_usd=0.0002,
        ops_score=85,
    ),
    Candidate(
        "sagemaker_realtime",
        SEED_PROFILES["sagemaker_realtime"],
        max_rps=200,
        fixed_monthly_usd=1400 * 30,
        per_request_usd=0.0001,
        ops_score=40,
        serves_custom_models=True,
    ),
    Candidate(
        "sagemaker_serverless",
        SEED_PROFILES["sagemaker_serverless"],
        max_rps=50,
        fixed_monthly_usd=0,
        per_request_usd=0.0008,
        ops_score=70,
    ),
    # Not in the seed's profiles: its switcher (§5.1) falls back to "bedrock_ondemand_haiku"
    # without defining it. Prior: the router's built-in on-demand profile (p99 1,200 ms is the
    # seed's dashboard figure for on-demand Haiku, §5.2; p50/p90 are our assumption).
    # max_rps 1000/60 assumes an on-demand quota of 1,000 requests/min (quotas are per
    # account, region and model: check Service Quotas). per_request = (500 x $0.25 + 300 x
    # $1.25) / 1M = $0.0005, the Haiku tokens of a MangaAssist message. ops 95: nothing to
    # operate, like Lambda.
    Candidate(
        "bedrock_ondemand_haiku",
        BUILTIN_PROFILES["bedrock_on_demand"],
        max_rps=1000 / 60,
        fixed_monthly_usd=0,
        per_request_usd=0.0005,
        ops_score=95,
    ),
)


@dataclass(frozen=True)
class Requirement:
    """What the workload needs (seed ``recommend_pattern`` arguments).

    MangaAssist: p99 within the 1,500 ms FM-inference share of its 3 s budget (seed §1.1);
    ``latency_headroom`` 1.5 is the seed's hard-filter factor.
    """

    max_p99_ms: float
    min_throughput_rps: float
    max_monthly_cost_usd: float
    needs_custom_model: bool = False
    latency_headroom: float = 1.5

    def __post_init__(self) -> None:
        check_positive("max_p99_ms", self.max_p99_ms)
        check_positive("min_throughput_rps", self.min_throughput_rps)
        check_positive("max_monthly_cost_usd", self.max_monthly_cost_usd)
        check_at_least("latency_headroom", self.latency_headroom, 1.0)


@dataclass(frozen=True)
class ScoredCandidate:
    """A candidate that passed the hard filters, with every component score."""

    pattern: str
    total: float
    latency_score: float
    throughput_score: float
    cost_score: float
    ops_score: float
    effective_p99_ms: float
    meets_latency: bool
    estimated_monthly_usd: float
    latency_source: str


@dataclass(frozen=True)
class Dropped:
    """A candidate removed by a hard filter, and why."""

    pattern: str
    reason: str


@dataclass(frozen=True)
class Recommendation:
    """Candidates ranked best first, plus the dropped ones with their reasons."""

    requirement: Requirement
    latency_scoring: str
    ranked: tuple[ScoredCandidate, ...]
    dropped: tuple[Dropped, ...]
    weights: ScoreWeights = field(default_factory=ScoreWeights)
    """The weights the totals were computed with."""


_PROFILE_KEYS = frozenset(f.name for f in fields(LatencyProfile))
_REQUIRED_PROFILE_KEYS = frozenset({"p50_ms", "p90_ms", "p99_ms"})


def observed_profile(pattern: str, numbers: LatencyProfile | Mapping[str, float]) -> LatencyProfile:
    """Turn live numbers into a profile. Cold starts default to none: observed percentiles
    already contain them, and adding the prior's cold start again would count them twice."""
    if isinstance(numbers, LatencyProfile):
        return numbers
    where = f"profiles.{pattern}"
    unknown = sorted(set(numbers) - _PROFILE_KEYS)
    if unknown:
        raise PlanningInputError(
            f"{where}.{unknown[0]}", f"unknown key (expected {sorted(_PROFILE_KEYS)})"
        )
    missing = sorted(_REQUIRED_PROFILE_KEYS - set(numbers))
    if missing:
        raise PlanningInputError(f"{where}.{missing[0]}", "missing")
    try:
        return LatencyProfile(**{k: float(v) for k, v in numbers.items()})
    except (TypeError, ValueError) as exc:
        # the core names the offending field first: "p90_ms must be >= p50_ms ..."
        field_name, _, message = str(exc).partition(" ")
        if field_name not in _PROFILE_KEYS:
            field_name, message = "value", str(exc)
        raise PlanningInputError(f"{where}.{field_name}", message) from exc


def _with_observed(
    candidates: Sequence[Candidate],
    profiles: Mapping[str, LatencyProfile | Mapping[str, float]],
) -> tuple[tuple[Candidate, ...], frozenset[str]]:
    known = {c.pattern for c in candidates}
    for name in profiles:
        if name not in known:
            raise PlanningInputError(
                f"profiles.{name}", f"unknown pattern (known: {', '.join(sorted(known))})"
            )
    updated = tuple(
        replace(c, latency=observed_profile(c.pattern, profiles[c.pattern]))
        if c.pattern in profiles
        else c
        for c in candidates
    )
    return updated, frozenset(profiles)


def _drop_reason(candidate: Candidate, req: Requirement) -> str | None:
    if req.needs_custom_model and not candidate.serves_custom_models:
        return "needs a custom model: only sagemaker_realtime serves one (seed §1.2)"
    effective = candidate.latency.effective_p99_ms
    limit = req.max_p99_ms * req.latency_headroom
    if effective <= limit:
        return None
    cause = ""
    if effective > candidate.latency.p99_ms:
        cause = (
            f" (cold start {candidate.latency.cold_start_ms:g} ms at "
            f"{candidate.latency.cold_start_probability:.0%} ≥ 1% of calls)"
        )
    return (
        f"effective p99 {effective:g} ms{cause} > {req.latency_headroom:g} × max p99 "
        f"{req.max_p99_ms:g} ms = {limit:g} ms"
    )


def _score(
    candidate: Candidate, req: Requirement, weights: ScoreWeights, seed_exact: bool, source: str
) -> ScoredCandidate:
    effective = candidate.latency.effective_p99_ms
    monthly = candidate.monthly_cost_usd(req.min_throughput_rps)
    lat = latency_score(effective, req.max_p99_ms, seed_exact=seed_exact)
    thr = throughput_score(candidate.max_rps, req.min_throughput_rps)
    cst = cost_score(monthly, req.max_monthly_cost_usd)
    ops = float(candidate.ops_score)
    return ScoredCandidate(
        pattern=candidate.pattern,
        total=weights.total(lat, thr, cst, ops),
        latency_score=lat,
        throughput_score=thr,
        cost_score=cst,
        ops_score=ops,
        effective_p99_ms=effective,
        meets_latency=effective <= req.max_p99_ms,
        estimated_monthly_usd=monthly,
        latency_source=source,
    )


def recommend(
    requirement: Requirement,
    *,
    profiles: Mapping[str, LatencyProfile | Mapping[str, float]] | None = None,
    candidates: Iterable[Candidate] = REFERENCE_CANDIDATES,
    weights: ScoreWeights | None = None,
    seed_exact_latency_score: bool = False,
) -> Recommendation:
    """Rank ``candidates`` for ``requirement``, best first.

    ``profiles`` maps a pattern name to live latency numbers (a :class:`LatencyProfile` or a
    mapping with ``p50_ms``, ``p90_ms``, ``p99_ms`` and optionally the cold-start keys); those
    replace the candidate's prior. Unknown pattern names are an error, not silently ignored.
    """
    weights = weights or ScoreWeights()
    pool, observed = _with_observed(tuple(candidates), profiles or {})
    ranked: list[ScoredCandidate] = []
    dropped: list[Dropped] = []
    for candidate in pool:
        reason = _drop_reason(candidate, requirement)
        if reason is not None:
            dropped.append(Dropped(candidate.pattern, reason))
            continue
        source = "observed" if candidate.pattern in observed else "prior"
        ranked.append(_score(candidate, requirement, weights, seed_exact_latency_score, source))
    ranked.sort(key=lambda s: (-s.total, s.pattern))
    return Recommendation(
        requirement=requirement,
        latency_scoring="seed-exact" if seed_exact_latency_score else "corrected",
        ranked=tuple(ranked),
        dropped=tuple(dropped),
        weights=weights,
    )


@dataclass(frozen=True)
class RecommendSettings:
    """The ``[recommend]`` section.

    ``max_p99_ms`` 1500 is the FM-inference share of MangaAssist's 3 s budget (seed §1.1).
    ``max_monthly_cost_usd`` 50,000 is our assumption (the seed names no budget).
    ``min_throughput_rps`` absent means "the traffic profile's peak req/s". ``observed`` maps a
    pattern to live ``p50_ms`` / ``p90_ms`` / ``p99_ms`` numbers that replace its prior.
    """

    max_p99_ms: float = 1500.0
    max_monthly_cost_usd: float = 50_000.0
    needs_custom_model: bool = False
    seed_exact_latency_score: bool = False
    min_throughput_rps: float | None = None
    observed: Mapping[str, Mapping[str, float]] | None = None

    def __post_init__(self) -> None:
        check_positive("max_p99_ms", self.max_p99_ms)
        check_positive("max_monthly_cost_usd", self.max_monthly_cost_usd)
        if self.min_throughput_rps is not None:
            check_positive("min_throughput_rps", self.min_throughput_rps)
        known = {c.pattern for c in REFERENCE_CANDIDATES}
        for pattern, numbers in (self.observed or {}).items():
            if pattern not in known:
                raise PlanningInputError(
                    f"observed.{pattern}", f"unknown pattern (known: {', '.join(sorted(known))})"
                )
            try:
                observed_profile(pattern, numbers)
            except PlanningInputError as exc:
                where = "observed." + exc.field.removeprefix("profiles.")
                raise PlanningInputError(where, exc.message) from exc
