"""Latency-fit recommendation: MangaAssist ranking by hand, the seed's latency-score bug,
live profiles, and monotonicity of every component score."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from mangaroute.core.scoring import ScoreWeights as CoreScoreWeights
from mangaroute.planning import (
    LatencyProfile,
    PlanningInputError,
    Requirement,
    ScoreWeights,
    cost_score,
    latency_score,
    recommend,
    throughput_score,
)
from mangaroute.planning.render import recommendation_text

PEAK_RPS = 1_000_000 / 86_400 * 3.5  # MangaAssist peak, 40.509 req/s
MANGA = Requirement(max_p99_ms=1500, min_throughput_rps=PEAK_RPS, max_monthly_cost_usd=50_000)


def test_mangaassist_ranking_and_component_scores() -> None:
    rec = recommend(MANGA)
    assert [s.pattern for s in rec.ranked] == [
        "bedrock_provisioned",
        "sagemaker_realtime",
        "bedrock_ondemand_haiku",
    ]
    prov, sm, od = rec.ranked
    # provisioned: p99 1400 in [750, 1500] → 100 − 50 × (1400 − 750) / 750
    assert prov.latency_score == pytest.approx(100 - 50 * 650 / 750)  # 56.67
    # 500 req/s ≥ 2 × 40.5 → 100
    assert prov.throughput_score == 100.0
    # cost: 10,800 + 40.509 × 2,592,000 s × $0.0002 = 31,800 ≤ 50,000
    assert prov.estimated_monthly_usd == pytest.approx(10_800 + 105_000_000 * 0.0002)
    assert prov.cost_score == pytest.approx(100 - 60 * (31_800 - 15_000) / 35_000)  # 71.2
    assert prov.ops_score == 85.0
    assert prov.total == pytest.approx(
        0.35 * (100 - 50 * 650 / 750) + 0.25 * 100 + 0.25 * 71.2 + 0.15 * 85
    )  # 75.38
    # SageMaker real-time: latency 100 − 50 × 450/750 = 70; cost 42,000 + 10,500 = 52,500 →
    # 40 × (1 − 2,500/50,000) = 38
    assert (sm.latency_score, sm.cost_score) == (pytest.approx(70.0), pytest.approx(38.0))
    assert sm.total == pytest.approx(0.35 * 70 + 0.25 * 100 + 0.25 * 38 + 0.15 * 40)  # 65.0
    # on-demand Haiku: 1000/60 req/s < 40.5 → 70 × 16.67 / 40.51
    assert od.throughput_score == pytest.approx(70 * (1000 / 60) / PEAK_RPS)  # 28.80
    assert od.total == pytest.approx(0.35 * 70 + 0.25 * od.throughput_score + 0.25 * 38 + 0.15 * 95)
    assert all(s.meets_latency and s.latency_source == "prior" for s in rec.ranked)
    assert rec.latency_scoring == "corrected"


def test_cold_start_candidates_dropped_with_reasons() -> None:
    dropped = {d.pattern: d.reason for d in recommend(MANGA).dropped}
    assert set(dropped) == {"lambda_on_demand", "sagemaker_serverless"}
    assert dropped["lambda_on_demand"] == (
        "effective p99 4500 ms (cold start 4500 ms at 5% ≥ 1% of calls) > 1.5 × max p99 "
        "1500 ms = 2250 ms"
    )
    assert "effective p99 8000 ms" in dropped["sagemaker_serverless"]


def test_seed_exact_latency_score_reproduces_the_seed() -> None:
    rec = recommend(MANGA, seed_exact_latency_score=True)
    scores = {s.pattern: s.latency_score for s in rec.ranked}
    # seed: 100 × (1 − (1400 − 750) / 750) and 100 × (1 − 450 / 750)
    assert scores["bedrock_provisioned"] == pytest.approx(100 * (1 - 650 / 750))  # 13.33
    assert scores["sagemaker_realtime"] == pytest.approx(40.0)
    assert rec.latency_scoring == "seed-exact"


def test_seed_latency_score_is_not_monotone_but_corrected_one_is() -> None:
    # exactly at target the seed gives 0, 1 % over it gives 50 × 0.99
    assert latency_score(1500, 1500, seed_exact=True) == 0.0
    assert latency_score(1515, 1500, seed_exact=True) == pytest.approx(49.5)
    assert latency_score(1500, 1500) == 50.0
    assert latency_score(1515, 1500) == pytest.approx(49.5)
    assert latency_score(750, 1500) == 100.0
    assert latency_score(3000, 1500) == 0.0


def test_custom_model_keeps_only_sagemaker_realtime() -> None:
    rec = recommend(
        Requirement(1500, PEAK_RPS, 50_000, needs_custom_model=True),
    )
    assert [s.pattern for s in rec.ranked] == ["sagemaker_realtime"]
    reasons = {d.pattern: d.reason for d in rec.dropped}
    assert reasons["bedrock_provisioned"].startswith("needs a custom model")
    assert len(reasons) == 4


def test_live_profiles_replace_priors() -> None:
    rec = recommend(
        MANGA,
        profiles={
            "bedrock_provisioned": {"p50_ms": 500, "p90_ms": 600, "p99_ms": 700},
            "sagemaker_serverless": LatencyProfile(400, 800, 1300),
        },
    )
    by_name = {s.pattern: s for s in rec.ranked}
    prov = by_name["bedrock_provisioned"]
    assert prov.latency_source == "observed"
    assert prov.latency_score == 100.0  # 700 ≤ 750
    assert prov.total == pytest.approx(0.35 * 100 + 0.25 * 100 + 0.25 * 71.2 + 0.15 * 85)
    # observed percentiles already contain cold starts: serverless is no longer dropped
    assert by_name["sagemaker_serverless"].effective_p99_ms == 1300
    assert [d.pattern for d in rec.dropped] == ["lambda_on_demand"]


@pytest.mark.parametrize(
    ("profiles", "field"),
    [
        ({"nope": {"p50_ms": 1, "p90_ms": 2, "p99_ms": 3}}, "profiles.nope"),
        (
            {"bedrock_provisioned": {"p50_ms": 1, "p90_ms": 2}},
            "profiles.bedrock_provisioned.p99_ms",
        ),
        (
            {"bedrock_provisioned": {"p50_ms": 1, "p90_ms": 2, "p99_ms": 3, "p95_ms": 2}},
            "profiles.bedrock_provisioned.p95_ms",
        ),
        (
            {"bedrock_provisioned": {"p50_ms": 5, "p90_ms": 2, "p99_ms": 3}},
            "profiles.bedrock_provisioned.p90_ms",
        ),
        (
            {"bedrock_provisioned": {"p50_ms": -1, "p90_ms": 2, "p99_ms": 3}},
            "profiles.bedrock_provisioned.p50_ms",
        ),
    ],
)
def test_bad_live_profiles_name_the_field(
    profiles: dict[str, dict[str, float]], field: str
) -> None:
    with pytest.raises(PlanningInputError) as info:
        recommend(MANGA, profiles=profiles)
    assert info.value.field == field


def test_planning_weighs_with_the_routers_score_weights() -> None:
    # One ScoreWeights for the `score` ranker and for plan recommend (config key names).
    assert ScoreWeights is CoreScoreWeights
    assert ScoreWeights() == ScoreWeights(latency=0.35, throughput=0.25, cost=0.25, ops=0.15)


def test_weights_are_relative() -> None:
    default = [(s.pattern, s.total) for s in recommend(MANGA).ranked]
    doubled = recommend(MANGA, weights=ScoreWeights(0.7, 0.5, 0.5, 0.3)).ranked
    assert [(s.pattern, s.total) for s in doubled] == [(p, pytest.approx(t)) for p, t in default]
    latency_only = recommend(MANGA, weights=ScoreWeights(1, 0, 0, 0)).ranked
    # SageMaker real-time and on-demand Haiku tie at 70 (ties by name), provisioned 56.67.
    assert [s.pattern for s in latency_only] == [
        "bedrock_ondemand_haiku",
        "sagemaker_realtime",
        "bedrock_provisioned",
    ]
    assert [s.total for s in latency_only] == [s.latency_score for s in latency_only]


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"latency": -0.1}, "latency expected a number >= 0"),
        ({"latency": 0, "throughput": 0, "cost": 0, "ops": 0}, "not all zero"),
    ],
)
def test_negative_or_all_zero_weights_are_rejected(weights: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ScoreWeights(**weights)


def test_requirement_validation() -> None:
    with pytest.raises(PlanningInputError) as info:
        Requirement(1500, 0, 50_000)
    assert info.value.field == "min_throughput_rps"


targets = st.floats(1, 100_000)
latencies = st.floats(0, 1_000_000)


@given(targets, latencies, latencies)
def test_corrected_latency_score_is_monotone_and_bounded(t: float, a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    assert 0.0 <= latency_score(hi, t) <= latency_score(lo, t) <= 100.0


@given(targets, st.floats(0, 2))
def test_corrected_latency_score_is_continuous(t: float, x: float) -> None:
    eps = t * 1e-9
    assert abs(latency_score(t * x, t) - latency_score(t * x + eps, t)) < 1e-4


@given(st.floats(1, 1e6), st.floats(0, 1e6), st.floats(0, 1e6))
def test_throughput_score_non_decreasing_in_capacity(target: float, a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    assert 0.0 <= throughput_score(lo, target) <= throughput_score(hi, target) <= 100.0


@given(st.floats(1, 1e7), st.floats(0, 1e8), st.floats(0, 1e8))
def test_cost_score_non_increasing_in_cost(budget: float, a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    assert 0.0 <= cost_score(hi, budget) <= cost_score(lo, budget) <= 100.0


@given(st.floats(10, 10_000), st.floats(0.01, 0.5))
def test_seed_formula_jumps_up_just_over_the_target(t: float, over: float) -> None:
    assume(over > 1e-6)
    assert latency_score(t * (1 + over), t, seed_exact=True) > latency_score(t, t, seed_exact=True)


def test_the_recommendation_text_states_the_weights_it_used() -> None:
    rec = recommend(MANGA, weights=ScoreWeights(latency=0.5, throughput=0.1, cost=0.3, ops=0.1))
    assert rec.weights == ScoreWeights(0.5, 0.1, 0.3, 0.1)
    text = recommendation_text(rec)
    assert "weights latency 0.5, throughput 0.1, cost 0.3, operations 0.1" in text
    assert "latency 0.35" in recommendation_text(recommend(MANGA))
