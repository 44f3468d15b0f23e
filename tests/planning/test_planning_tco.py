"""TCO: each pattern against a hand computation written as arithmetic on literals."""

from __future__ import annotations

import dataclasses

import pytest

from mangaroute.planning import (
    CapacityAssumptions,
    PlanningInputError,
    Prices,
    TcoAssumptions,
    TrafficProfile,
    compare_tco,
)
from mangaroute.planning.tco import (
    bedrock_provisioned_tco,
    hybrid_tco,
    lambda_on_demand_tco,
    sagemaker_realtime_tco,
)

MANGA = TrafficProfile()
ARGS = (MANGA, Prices(), TcoAssumptions(), CapacityAssumptions())


def test_lambda_on_demand_by_hand() -> None:
    r = lambda_on_demand_tco(*ARGS)
    # 30M messages: 70 % Haiku at (500 × 0.25 + 300 × 1.25) / 1M = $0.0005 each,
    # 30 % Sonnet at (500 × 3 + 300 × 15) / 1M = $0.006 each
    tokens = 21_000_000 * 0.0005 + 9_000_000 * 0.006  # 10,500 + 54,000
    # 30M invocations × 1 GB × 2 s × $0.0000167, plus 30 × $0.20 per million requests
    compute = 30_000_000 * 1 * 2 * 0.0000167 + 30 * 0.20  # 1,002 + 6
    ops = 2 * 100.0
    assert r.token_usd == pytest.approx(tokens)
    assert r.compute_usd == pytest.approx(compute)
    assert r.ops_usd == ops
    assert r.total_usd == pytest.approx(65_708.0)
    assert r.cost_per_message_usd == pytest.approx(65_708.0 / 30_000_000)
    assert dict(r.breakdown)["sonnet_tokens"] == pytest.approx(54_000.0)


def test_bedrock_provisioned_by_hand_with_seed_mus() -> None:
    r = bedrock_provisioned_tco(*ARGS)
    # 2 Sonnet MUs × $23 × 6 peak h + 1 Haiku MU × $5 × (12 − 6) h, per day, × 30 days
    compute = (2 * 23 * 6 + 1 * 5 * 6) * 30  # 9,180
    # off-peak: 1M × 0.3 × 12/24 messages a day on demand Haiku at $0.0005, × 30 days
    tokens = 1_000_000 * 0.3 * 12 / 24 * 0.0005 * 30  # 2,250
    assert r.compute_usd == pytest.approx(compute)
    assert r.token_usd == pytest.approx(tokens)
    assert r.ops_usd == 4 * 100.0
    assert r.total_usd == pytest.approx(11_830.0)
    assert dict(r.quantities) == {"sonnet_mus": 2, "haiku_mus": 1, "sized_sonnet_mus": 49}


def test_bedrock_provisioned_with_sized_mus() -> None:
    sized = TcoAssumptions(use_sized_sonnet_mus=True)
    r = bedrock_provisioned_tco(MANGA, Prices(), sized, CapacityAssumptions())
    compute = (49 * 23 * 6 + 1 * 5 * 6) * 30  # 203,760
    assert r.compute_usd == pytest.approx(compute)
    assert r.total_usd == pytest.approx(compute + 2_250 + 400)  # 206,410
    explicit = TcoAssumptions(provisioned_sonnet_mus=10)
    r10 = bedrock_provisioned_tco(MANGA, Prices(), explicit, CapacityAssumptions())
    assert r10.compute_usd == pytest.approx((10 * 23 * 6 + 30) * 30)


def test_sagemaker_realtime_by_hand() -> None:
    r = sagemaker_realtime_tco(*ARGS)
    # (18 off-peak h × 2 instances + 6 peak h × 4 instances) × 30 days × $1.89
    compute = (18 * 2 + 6 * 4) * 30 * 1.89  # 3,402
    assert r.compute_usd == pytest.approx(compute)
    assert r.token_usd == 0.0
    assert r.ops_usd == 12 * 100.0
    assert r.total_usd == pytest.approx(4_602.0)
    q = dict(r.quantities)
    assert (q["base_instance_hours"], q["peak_instance_hours"]) == (1080, 720)
    assert (q["sized_min_instances"], q["sized_max_instances"]) == (6, 13)


def test_hybrid_by_hand() -> None:
    r = hybrid_tco(*ARGS)
    # 1 Sonnet MU × $23 × 6 h × 30 days + 1 ml.g5.2xlarge × $1.89 × 24 h × 30 days
    compute = 23 * 1 * 6 * 30 + 1.89 * 24 * 30  # 4,140 + 1,360.80
    # 50 % of 30M on-demand Haiku at $0.0005 + 15 % on-demand Sonnet at $0.006
    tokens = 15_000_000 * 0.0005 + 4_500_000 * 0.006  # 7,500 + 27,000
    assert r.compute_usd == pytest.approx(compute)
    assert r.token_usd == pytest.approx(tokens)
    assert r.ops_usd == 8 * 100.0
    assert r.total_usd == pytest.approx(40_800.80)
    # its 25 % provisioned share at peak: 250,000 / 21,600 s × 60 × 800 tokens / 40,000 → 14 MUs
    assert dict(r.quantities)["sonnet_mus_for_share"] == 14


def test_compare_sorts_cheapest_first() -> None:
    results = compare_tco(MANGA)
    assert [(r.pattern, round(r.total_usd, 2)) for r in results] == [
        ("sagemaker_realtime", 4_602.0),
        ("bedrock_provisioned", 11_830.0),
        ("hybrid", 40_800.8),
        ("lambda_on_demand", 65_708.0),
    ]


def test_every_price_is_an_input() -> None:
    doubled = Prices(sonnet_input_per_mtok=6.0, sonnet_output_per_mtok=30.0, engineer_hourly=0.0)
    r = lambda_on_demand_tco(MANGA, doubled, TcoAssumptions(), CapacityAssumptions())
    assert r.token_usd == pytest.approx(10_500 + 2 * 54_000)
    assert r.ops_usd == 0.0
    split = TcoAssumptions(lambda_haiku_share=1.0)
    assert lambda_on_demand_tco(MANGA, Prices(), split, CapacityAssumptions()).token_usd == (
        pytest.approx(30_000_000 * 0.0005)
    )


def test_hybrid_shares_must_sum_to_one() -> None:
    with pytest.raises(PlanningInputError, match="sum to 1"):
        TcoAssumptions(hybrid_haiku_share=0.6)


def test_peak_longer_than_the_provisioned_day_is_rejected() -> None:
    with pytest.raises(PlanningInputError) as info:
        bedrock_provisioned_tco(
            TrafficProfile(peak_hours=14), Prices(), TcoAssumptions(), CapacityAssumptions()
        )
    assert info.value.field == "provisioned_hours_per_day"


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(Prices)])
def test_negative_prices_rejected(name: str) -> None:
    with pytest.raises(PlanningInputError) as info:
        Prices(**{name: -0.01})
    assert info.value.field == name
