"""Log-scale latency histograms with a bounded relative error.

Values are mapped to bins whose bounds grow geometrically by ``gamma = (1 + a) / (1 - a)``;
reporting a bin by ``2 * gamma**i / (gamma + 1)`` is within relative error ``a`` of every value
in it. This is the mapping of DDSketch (Masson, Rim & Lee, "DDSketch: A Fast and Fully-Mergeable
Quantile Sketch with Relative-Error Guarantees", VLDB 2019). Values are clamped to
``[min_value, max_value]``, so a histogram never holds more than
``LogScale.bin_count`` bins, whatever the traffic: memory is constant.

Counts are plain ``dict[int, int]`` (bin index to count): sparse, mergeable by addition and
cheap to update from Python.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence


class LogScale:
    """The bin mapping shared by every histogram of a router."""

    __slots__ = (
        "_inv_log_gamma",
        "gamma",
        "max_index",
        "max_value",
        "min_index",
        "min_value",
        "relative_error",
    )

    def __init__(
        self,
        relative_error: float = 0.01,
        *,
        min_value: float = 0.01,
        max_value: float = 3_600_000.0,
    ) -> None:
        if not 0.0 < relative_error < 0.5:
            raise ValueError(f"relative_error must be in (0, 0.5), got {relative_error}")
        if not 0.0 < min_value < max_value or not math.isfinite(max_value):
            raise ValueError(f"need 0 < min_value < max_value, got {min_value}, {max_value}")
        self.relative_error = relative_error
        self.gamma = (1.0 + relative_error) / (1.0 - relative_error)
        self._inv_log_gamma = 1.0 / math.log(self.gamma)
        self.min_value = min_value
        self.max_value = max_value
        self.min_index = math.ceil(math.log(min_value) * self._inv_log_gamma)
        self.max_index = math.ceil(math.log(max_value) * self._inv_log_gamma)

    @property
    def bin_count(self) -> int:
        return self.max_index - self.min_index + 1

    def index(self, value: float) -> int:
        """The bin of ``value`` (clamped into ``[min_value, max_value]``)."""
        if value <= self.min_value:
            return self.min_index
        if value >= self.max_value:
            return self.max_index
        return math.ceil(math.log(value) * self._inv_log_gamma)

    def value(self, index: int) -> float:
        """The representative of a bin: within ``relative_error`` of any value in it."""
        return 2.0 * self.gamma**index / (self.gamma + 1.0)

    def quantiles(self, counts: Mapping[int, int], qs: Sequence[float]) -> list[float]:
        """Nearest-rank quantiles (``q`` in ``(0, 1]``) of a histogram, in one pass.

        The bin found for rank ``ceil(q * n)`` is the bin of the exact ``ceil(q * n)``-th
        smallest value, so each estimate is within ``relative_error`` of the exact
        nearest-rank percentile. An empty histogram yields NaN.
        """
        total = sum(counts.values())
        if total == 0:
            return [math.nan] * len(qs)
        ranks = [max(1, math.ceil(q * total)) for q in qs]
        order = sorted(range(len(qs)), key=ranks.__getitem__)
        result = [math.nan] * len(qs)
        seen = 0
        pending = iter(order)
        slot = next(pending)
        for index in sorted(counts):
            seen += counts[index]
            while seen >= ranks[slot]:
                result[slot] = self.value(index)
                next_slot = next(pending, None)
                if next_slot is None:
                    return result
                slot = next_slot
        return result  # pragma: no cover - ranks never exceed the total


def subtract_counts(into: dict[int, int], other: Mapping[int, int]) -> None:
    """Remove ``other`` from ``into``; bins that reach zero are dropped."""
    for index, count in other.items():
        left = into[index] - count
        if left:
            into[index] = left
        else:
            del into[index]


def histogram_of(scale: LogScale, values: Iterable[float]) -> dict[int, int]:
    """Build a histogram from raw values (tests, the simulator's oracle)."""
    counts: dict[int, int] = {}
    for value in values:
        index = scale.index(value)
        counts[index] = counts.get(index, 0) + 1
    return counts
