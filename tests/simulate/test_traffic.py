"""The traffic day: volume, curve, mix, tokens, flash sales, determinism."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mangaroute.simulate.traffic import (
    FlashSale,
    TokenShape,
    TrafficModel,
    class_counts,
    generate,
    hourly_counts,
)


@pytest.fixture(scope="module")
def day() -> object:
    return generate(TrafficModel(messages=100_000), seed=3)


def test_the_day_has_exactly_the_configured_messages_in_time_order(day) -> None:  # type: ignore[no-untyped-def]
    assert len(day) == 100_000
    times = list(day.time_ns)
    assert times == sorted(times)
    assert times[0] >= 0 and times[-1] < 86_400 * 10**9


def test_the_curve_peaks_in_the_evening_at_about_three_and_a_half_times_the_average(day) -> None:  # type: ignore[no-untyped-def]
    hours = hourly_counts(day)
    average = sum(hours) / 24
    assert max(hours) / average == pytest.approx(3.4, abs=0.15)
    assert hours.index(max(hours)) == 21
    assert sum(hours[18:24]) / sum(hours) == pytest.approx(0.717, abs=0.01)
    assert hours[12] > hours[10] and hours[12] > hours[14]  # the lunch bump
    assert min(hours) == min(hours[2:7])  # the quiet night
    model = TrafficModel()
    assert model.peak_rate_per_s() / (1_000_000 / 86_400) == pytest.approx(3.5, abs=0.1)


def test_the_class_mix_and_token_sizes_follow_the_seeds_hybrid(day) -> None:  # type: ignore[no-untyped-def]
    counts = class_counts(day)
    assert counts["simple"] / len(day) == pytest.approx(0.50, abs=0.01)
    assert counts["complex"] / len(day) == pytest.approx(0.40, abs=0.01)
    assert counts["manga"] / len(day) == pytest.approx(0.10, abs=0.01)
    assert sum(day.input_tokens) / len(day) == pytest.approx(495, rel=0.03)
    assert sum(day.output_tokens) / len(day) == pytest.approx(295, rel=0.03)
    assert all(0.0 <= d < 1.0 for d in day.draw)


def test_a_flash_sale_lifts_the_rate_to_twice_the_peak() -> None:
    model = TrafficModel(messages=100_000, flash_sales=(FlashSale(21 * 3600, 10, 2.0),))
    day = generate(model, seed=3)
    assert day.flash_messages > 0
    in_sale = sum(1 for t in day.time_ns if 21 * 3600 * 10**9 <= t < (21 * 3600 + 600) * 10**9)
    assert in_sale / 600 == pytest.approx(2 * model.peak_rate_per_s(), rel=0.08)
    assert len(day) == 100_000 + day.flash_messages


def test_a_window_samples_part_of_the_day_at_the_days_rates() -> None:
    model = TrafficModel(messages=100_000, window=(18 * 3600.0, 24 * 3600.0))
    evening = generate(model, seed=1)
    assert len(evening) == model.window_messages() == 71_675
    assert min(evening.time_ns) >= 18 * 3600 * 10**9
    assert evening.window == (18 * 3600.0, 24 * 3600.0)
    with pytest.raises(ValueError, match="window"):
        TrafficModel(window=(3600.0, 3600.0))


def test_the_same_seed_gives_the_same_day() -> None:
    model = TrafficModel(messages=5_000)
    first, again, other = generate(model, 9), generate(model, 9), generate(model, 10)
    assert first.time_ns == again.time_ns and first.draw == again.draw
    assert first.klass == again.klass and first.session == again.session
    assert first.draw != other.draw


@settings(max_examples=15, deadline=None)
@given(
    st.integers(min_value=1, max_value=1500),
    st.lists(st.floats(min_value=0, max_value=5), min_size=24, max_size=24).filter(
        lambda c: sum(c) > 0
    ),
    st.floats(min_value=0.05, max_value=1.0),
    st.floats(min_value=0.0, max_value=1.5),
    st.integers(min_value=0, max_value=2**32),
)
def test_any_valid_model_generates_a_consistent_day(
    messages: int, curve: list[float], simple: float, spread: float, seed: int
) -> None:
    model = TrafficModel(
        messages=messages,
        curve=tuple(curve),
        mix={"simple": simple, "complex": 1 - simple},
        tokens={"simple": TokenShape(100, 50, spread), "complex": TokenShape(900, 700, spread)},
    )
    day = generate(model, seed)
    assert len(day) == messages
    assert list(day.time_ns) == sorted(day.time_ns)
    hours = hourly_counts(day)
    for hour, count in enumerate(hours):
        if curve[hour - 1] == curve[hour] == curve[(hour + 1) % 24] == 0:
            assert count == 0  # the curve is linear between hour centres
    assert min(day.input_tokens) >= 1 and min(day.output_tokens) >= 1
    assert max(day.output_tokens) <= 16 * 700


def test_bad_models_are_refused() -> None:
    with pytest.raises(ValueError, match="curve"):
        TrafficModel(curve=(1.0,) * 23)
    with pytest.raises(ValueError, match="token shape"):
        TrafficModel(mix={"other": 1.0})
    with pytest.raises(ValueError, match="spread"):
        TokenShape(spread=3)
