"""Log-scale histograms: percentile estimates within the stated relative error."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mangaroute.core.histogram import LogScale, histogram_of, subtract_counts

latencies = st.floats(min_value=0.01, max_value=3_600_000.0, allow_nan=False)
quantiles = st.sampled_from([0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0])


def exact_nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


@given(
    st.lists(latencies, min_size=1, max_size=400),
    quantiles,
    st.sampled_from([0.005, 0.01, 0.02, 0.05]),
)
@settings(max_examples=300, deadline=None)
def test_quantile_is_within_relative_error_of_the_exact_percentile(
    values: list[float], q: float, alpha: float
) -> None:
    scale = LogScale(alpha)
    (estimate,) = scale.quantiles(histogram_of(scale, values), [q])
    exact = exact_nearest_rank(values, q)
    assert abs(estimate - exact) <= alpha * exact * (1 + 1e-9)


@given(st.lists(latencies, min_size=1, max_size=200))
def test_several_quantiles_in_one_pass_match_single_queries(values: list[float]) -> None:
    scale = LogScale(0.01)
    counts = histogram_of(scale, values)
    qs = [0.99, 0.5, 0.9]
    assert scale.quantiles(counts, qs) == [scale.quantiles(counts, [q])[0] for q in qs]


def test_bin_representative_bounds_every_value_in_the_bin() -> None:
    scale = LogScale(0.01)
    for value in (0.02, 1.0, 37.5, 640.0, 1499.9, 2500.0, 86_400.0):
        estimate = scale.value(scale.index(value))
        assert abs(estimate - value) / value <= 0.01 + 1e-12


def test_values_outside_the_range_are_clamped_so_memory_is_bounded() -> None:
    scale = LogScale(0.01, min_value=1.0, max_value=1000.0)
    counts = histogram_of(scale, [0.0, 0.5, 1e9, float(10**12), 10.0])
    assert set(counts) <= set(range(scale.min_index, scale.max_index + 1))
    assert scale.bin_count == scale.max_index - scale.min_index + 1
    low, high = scale.quantiles(counts, [0.2, 1.0])
    assert low == pytest.approx(1.0, rel=0.01)
    assert high == pytest.approx(1000.0, rel=0.01)


def test_empty_histogram_has_no_quantiles() -> None:
    assert all(math.isnan(v) for v in LogScale().quantiles({}, [0.5, 0.99]))


@given(st.lists(latencies, max_size=100), st.lists(latencies, max_size=100))
def test_histograms_unmerge_exactly(a: list[float], b: list[float]) -> None:
    scale = LogScale(0.02)
    merged = histogram_of(scale, a + b)
    subtract_counts(merged, histogram_of(scale, b))
    assert merged == histogram_of(scale, a)


@pytest.mark.parametrize("bad", [0.0, -0.1, 0.5, 1.0])
def test_relative_error_outside_its_range_is_rejected(bad: float) -> None:
    with pytest.raises(ValueError, match="relative_error"):
        LogScale(bad)
