"""Planning's TrafficProfile and the simulator's TrafficModel describe one day both ways."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mangaroute.planning.traffic import TrafficProfile, compute_load
from mangaroute.simulate import FlashSale, TokenShape, TrafficModel, generate
from mangaroute.simulate.traffic_profile import (
    profile_from_traffic_model,
    traffic_model_from_profile,
)


@st.composite
def profiles(draw: st.DrawFn) -> TrafficProfile:
    peak_hours = draw(st.integers(1, 23))
    peak = draw(st.floats(1.01, 24 / peak_hours))
    return TrafficProfile(
        daily_messages=draw(st.integers(1, 10_000_000)),
        peak_multiplier=peak,
        peak_hours=peak_hours,
        burst_factor=draw(st.floats(1.0, 5.0)),
        avg_input_tokens=draw(st.integers(1, 20_000)),
        avg_output_tokens=draw(st.integers(1, 4_000)),
    )


@given(profiles(), st.booleans())
def test_a_profile_survives_the_round_trip(profile: TrafficProfile, with_sale: bool) -> None:
    model = traffic_model_from_profile(profile, flash_sale_start_s=75_600.0 if with_sale else None)
    back = profile_from_traffic_model(model)
    assert back.daily_messages == profile.daily_messages
    assert back.peak_hours == profile.peak_hours
    assert math.isclose(back.peak_multiplier, profile.peak_multiplier, rel_tol=1e-9)
    assert back.avg_input_tokens == profile.avg_input_tokens
    assert back.avg_output_tokens == profile.avg_output_tokens
    assert back.burst_factor == (profile.burst_factor if with_sale else 1.0)


@given(profiles())
def test_the_model_holds_the_profile_peak_for_its_peak_hours(profile: TrafficProfile) -> None:
    model = traffic_model_from_profile(profile)
    assert math.isclose(sum(model.curve) / 24, 1.0, rel_tol=1e-9)
    evening = model.curve[24 - profile.peak_hours :]
    assert all(math.isclose(w, profile.peak_multiplier) for w in evening)
    assert max(model.curve[: 24 - profile.peak_hours]) < 1.0


def test_the_mangaassist_day_reads_as_the_seed_profile() -> None:
    profile = profile_from_traffic_model(TrafficModel())
    # 1M messages; 18:00-24:00 above the mean, 21:00 at 3.5 / 1.0104 of it; 495 in / 295 out
    assert profile.daily_messages == 1_000_000
    assert profile.peak_hours == 6
    assert profile.peak_multiplier == pytest.approx(3.4639, abs=1e-4)
    assert (profile.avg_input_tokens, profile.avg_output_tokens) == (495, 295)
    assert profile.burst_factor == 1.0
    assert compute_load(profile).peak_rps == pytest.approx(
        compute_load(TrafficProfile()).peak_rps, rel=0.02
    )


def test_a_generated_day_has_the_profile_volume_and_tokens() -> None:
    profile = TrafficProfile(daily_messages=200_000, avg_input_tokens=800, avg_output_tokens=200)
    day = generate(traffic_model_from_profile(profile), seed=3)
    assert abs(len(day.time_ns) - 200_000) < 200_000 * 0.01
    mean_in = sum(day.input_tokens) / len(day.input_tokens)
    mean_out = sum(day.output_tokens) / len(day.output_tokens)
    assert mean_in == pytest.approx(800, rel=0.03)
    assert mean_out == pytest.approx(200, rel=0.03)
    # the simulator interpolates between hour centres, so the step is smoothed over the half
    # hours around 18:00 and midnight: 18:30-23:30 run at the peak, 18:00-24:00 carry 84 %
    # rather than the profile's 87.5 %
    assert traffic_model_from_profile(profile).peak_rate_per_s() == pytest.approx(
        compute_load(profile).peak_rps, rel=1e-9
    )
    evening = sum(1 for t in day.time_ns if t >= 18 * 3600 * 10**9)
    assert evening / len(day.time_ns) == pytest.approx(0.842, abs=0.005)


def test_the_flash_sale_carries_the_burst_factor() -> None:
    model = traffic_model_from_profile(TrafficProfile(burst_factor=2.5), flash_sale_start_s=72_000)
    assert model.flash_sales == (FlashSale(72_000, 10.0, 2.5),)


def test_impossible_conversions_say_why() -> None:
    with pytest.raises(ValueError, match=r"more than the whole day's traffic \(28 > 24"):
        traffic_model_from_profile(TrafficProfile(peak_multiplier=4.0, peak_hours=7))
    with pytest.raises(ValueError, match="at least 1 input and 1 output token"):
        traffic_model_from_profile(TrafficProfile(avg_input_tokens=0))
    replayed = TrafficModel(mix={"a": 1.0}, tokens={"a": TokenShape()})
    assert profile_from_traffic_model(replayed).avg_input_tokens == 500
