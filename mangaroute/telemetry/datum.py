"""CloudWatch datapoints as plain values, shared by the aggregator and the sinks.

A :class:`MetricDatum` is either a distribution (``values`` with ``counts``, which keeps
percentiles available) or a statistic set (:class:`Statistics`: exact for every statistic but
percentiles); :meth:`MetricDatum.to_put_metric_data` gives the ``PutMetricData`` member, and
:func:`mangaroute.telemetry.sinks.emf_events` the EMF form.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol

__all__ = ["MAX_VALUES_PER_DATUM", "Dimensions", "MetricDatum", "MetricSink", "Statistics"]

MAX_VALUES_PER_DATUM = 150
"""PutMetricData accepts up to 150 distinct values per ``Values``/``Counts`` datum."""

Dimensions = tuple[tuple[str, str], ...]


class Statistics(NamedTuple):
    """A statistic set: what ``samples`` datapoints summing to ``total`` tell CloudWatch."""

    samples: float
    total: float
    minimum: float
    maximum: float


@dataclass(frozen=True, slots=True)
class MetricDatum:
    """One CloudWatch datapoint, sink-neutral: either values with counts, or a statistic set."""

    name: str
    dimensions: Dimensions
    unit: str
    timestamp: float
    """Unix seconds."""
    values: tuple[float, ...] = ()
    counts: tuple[int, ...] = ()
    statistics: Statistics | None = None
    storage_resolution: int = 60

    @property
    def sample_count(self) -> float:
        if self.statistics is not None:
            return self.statistics.samples
        return float(sum(self.counts))

    @property
    def total(self) -> float:
        if self.statistics is not None:
            return self.statistics.total
        return sum(v * c for v, c in zip(self.values, self.counts, strict=True))

    def to_put_metric_data(self) -> dict[str, Any]:
        """The ``MetricData`` member for ``PutMetricData``."""
        datum: dict[str, Any] = {
            "MetricName": self.name,
            "Dimensions": [{"Name": k, "Value": v} for k, v in self.dimensions],
            "Timestamp": datetime.fromtimestamp(self.timestamp, UTC),
            "Unit": self.unit,
            "StorageResolution": self.storage_resolution,
        }
        if self.statistics is not None:
            s = self.statistics
            datum["StatisticValues"] = {
                "SampleCount": s.samples,
                "Sum": s.total,
                "Minimum": s.minimum,
                "Maximum": s.maximum,
            }
        else:
            datum["Values"] = list(self.values)
            datum["Counts"] = [float(c) for c in self.counts]
        return datum


class MetricSink(Protocol):
    """Where flushed datapoints go. ``export`` may raise; an exception with an ``unsent``
    attribute (a sequence of datums) tells which part still needs sending."""

    def export(self, namespace: str, data: Sequence[MetricDatum]) -> None: ...

    def close(self) -> None: ...
