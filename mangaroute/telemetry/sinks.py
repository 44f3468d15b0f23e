"""Where CloudWatch datapoints go: EMF log lines, or batched ``PutMetricData`` calls.

**EMF** (Embedded Metric Format) writes one JSON object per line to stdout or a file. On ECS
Fargate with the ``awslogs`` log driver (or Lambda, or the CloudWatch agent) CloudWatch Logs
extracts the metrics from those lines: no API call, no credentials, no extra latency - the
default. The format (CloudWatch User Guide, "Specification: Embedded metric format"): a root
``_aws`` object with ``Timestamp`` (ms) and ``CloudWatchMetrics`` - directives of
``Namespace``, ``Dimensions`` (arrays of dimension keys) and ``Metrics`` (at most 100
definitions); dimension values and metric values are root members, a metric value being a
number or an array of at most 100 numbers. EMF has no counts, so a value seen ``n`` times is
written ``n`` times (chunked over as many lines as needed), and a statistic set is written as
its sum: ``Sum`` is exact for counters and cost, ``SampleCount`` then counts flushes.

**PutMetricData** sends the same datapoints with ``Values``/``Counts`` or ``StatisticValues``
(exact for every statistic), batched to the API's limits (CloudWatch API reference,
``PutMetricData``: at most 1,000 metrics and 1 MB per request, 150 values per datum).
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import IO, Any

from mangaroute.telemetry.datum import MetricDatum

__all__ = [
    "EMF_MAX_METRICS",
    "EMF_MAX_VALUES",
    "PUT_MAX_BYTES",
    "PUT_MAX_METRICS",
    "EmfSink",
    "ExportError",
    "PutMetricDataSink",
    "emf_events",
    "put_batches",
]

EMF_MAX_METRICS = 100
EMF_MAX_VALUES = 100
PUT_MAX_METRICS = 1000
PUT_MAX_BYTES = 1_000_000
_ENVELOPE_BYTES = 16_384
"""Room kept for the request envelope (namespace, protocol framing) under the 1 MB limit."""


class ExportError(Exception):
    """A sink sent part of the data; ``unsent`` is the rest, in order."""

    def __init__(self, message: str, unsent: Sequence[MetricDatum]) -> None:
        super().__init__(message)
        self.unsent = unsent


# -- EMF ------------------------------------------------------------------------------------


def emf_events(namespace: str, data: Sequence[MetricDatum]) -> Iterator[dict[str, Any]]:
    """The EMF documents for ``data``: one per dimension set and timestamp, split so that no
    document holds more than 100 metrics or more than 100 values per metric."""
    groups: dict[
        tuple[tuple[tuple[str, str], ...], int], dict[str, tuple[MetricDatum, list[float]]]
    ]
    groups = {}
    for datum in data:
        key = (datum.dimensions, round(datum.timestamp * 1000))
        metrics = groups.setdefault(key, {})
        entry = metrics.get(datum.name)
        if entry is None:
            entry = metrics[datum.name] = (datum, [])
        entry[1].extend(_emf_values(datum))
    for (dimensions, timestamp_ms), metrics in groups.items():
        names = list(metrics)
        for start in range(0, len(names), EMF_MAX_METRICS):
            chosen = names[start : start + EMF_MAX_METRICS]
            chunks = max(_chunk_count(len(metrics[n][1])) for n in chosen)
            for index in range(chunks):
                yield _emf_document(namespace, dimensions, timestamp_ms, metrics, chosen, index)


def _emf_values(datum: MetricDatum) -> list[float]:
    if datum.statistics is not None:
        return [datum.statistics.total]
    values: list[float] = []
    for value, count in zip(datum.values, datum.counts, strict=True):
        values.extend([value] * count)
    return values


def _chunk_count(length: int) -> int:
    return max(1, -(-length // EMF_MAX_VALUES))


def _emf_document(
    namespace: str,
    dimensions: tuple[tuple[str, str], ...],
    timestamp_ms: int,
    metrics: dict[str, tuple[MetricDatum, list[float]]],
    names: list[str],
    index: int,
) -> dict[str, Any]:
    definitions: list[dict[str, Any]] = []
    document: dict[str, Any] = {
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": [[key for key, _ in dimensions]],
                    "Metrics": definitions,
                }
            ],
        }
    }
    for key, value in dimensions:
        document[key] = value
    for name in names:
        datum, values = metrics[name]
        chunk = values[index * EMF_MAX_VALUES : (index + 1) * EMF_MAX_VALUES]
        if not chunk:
            continue
        definition: dict[str, Any] = {"Name": name, "Unit": datum.unit}
        if datum.storage_resolution == 1:
            definition["StorageResolution"] = 1
        definitions.append(definition)
        document[name] = chunk[0] if len(chunk) == 1 else chunk
    return document


class EmfSink:
    """Writes EMF lines to a text stream (default stdout) or appends them to a file."""

    def __init__(self, stream: IO[str] | None = None, *, path: str | None = None) -> None:
        if stream is not None and path is not None:
            raise ValueError("give a stream or a path, not both")
        self._path = path
        self._owned: IO[str] | None = None
        self._stream = stream
        self._lock = threading.Lock()

    def export(self, namespace: str, data: Sequence[MetricDatum]) -> None:
        lines = [
            json.dumps(event, separators=(",", ":"), allow_nan=False) + "\n"
            for event in emf_events(namespace, data)
        ]
        with self._lock:
            stream = self._target()
            stream.writelines(lines)
            stream.flush()

    def _target(self) -> IO[str]:
        if self._stream is not None:
            return self._stream
        if self._path is not None:
            if self._owned is None:
                self._owned = open(self._path, "a", encoding="utf-8")  # noqa: SIM115 - kept open
            return self._owned
        return sys.stdout

    def close(self) -> None:
        with self._lock:
            if self._owned is not None:
                self._owned.close()
                self._owned = None


# -- PutMetricData --------------------------------------------------------------------------


def put_batches(
    data: Sequence[MetricDatum],
    *,
    max_metrics: int = PUT_MAX_METRICS,
    max_bytes: int = PUT_MAX_BYTES,
) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """Split ``data`` into ``PutMetricData`` batches: ``(index of the first datum, members)``.

    A member's size is estimated by its JSON encoding, larger than what botocore sends (CBOR
    or query encoding of the same fields), so a batch under ``max_bytes`` minus an envelope
    allowance is under the API's 1 MB.
    """
    budget = max_bytes - _ENVELOPE_BYTES
    batch: list[dict[str, Any]] = []
    size = 0
    first = 0
    for index, datum in enumerate(data):
        member = datum.to_put_metric_data()
        member_size = len(json.dumps(member, default=str)) + 8
        if batch and (len(batch) >= max_metrics or size + member_size > budget):
            yield first, batch
            batch, size, first = [], 0, index
        batch.append(member)
        size += member_size
    if batch:
        yield first, batch


class PutMetricDataSink:
    """Sends datapoints with ``cloudwatch.put_metric_data``, batched to the API limits.

    Pass a boto3 CloudWatch ``client``, or let the sink make one with short timeouts and few
    retries (``connect_timeout_s``, ``read_timeout_s``, ``max_attempts``): a slow CloudWatch
    then costs the flush thread seconds, never the request path, and what was not sent stays
    buffered for the next flush.
    """

    def __init__(
        self,
        client: Any = None,
        *,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        connect_timeout_s: float = 2.0,
        read_timeout_s: float = 5.0,
        max_attempts: int = 2,
        max_metrics: int = PUT_MAX_METRICS,
        max_bytes: int = PUT_MAX_BYTES,
    ) -> None:
        if not 1 <= max_metrics <= PUT_MAX_METRICS:
            raise ValueError(f"max_metrics must be in [1, {PUT_MAX_METRICS}], got {max_metrics}")
        self._owns_client = client is None
        if client is None:
            import boto3  # noqa: PLC0415 - only this sink needs the AWS SDK
            from botocore.config import Config  # noqa: PLC0415

            client = boto3.client(
                "cloudwatch",
                region_name=region_name,
                endpoint_url=endpoint_url,
                config=Config(
                    connect_timeout=connect_timeout_s,
                    read_timeout=read_timeout_s,
                    retries={"mode": "standard", "total_max_attempts": max_attempts},
                ),
            )
        self.client = client
        self._max_metrics = max_metrics
        self._max_bytes = max_bytes
        self.calls = 0
        """``PutMetricData`` calls that succeeded."""

    def export(self, namespace: str, data: Sequence[MetricDatum]) -> None:
        for first, members in put_batches(
            data, max_metrics=self._max_metrics, max_bytes=self._max_bytes
        ):
            try:
                self.client.put_metric_data(Namespace=namespace, MetricData=members)
            except Exception as exc:
                raise ExportError(
                    f"PutMetricData failed ({type(exc).__name__}); "
                    f"{len(data) - first} datapoints unsent",
                    data[first:],
                ) from exc
            self.calls += 1

    def close(self) -> None:
        if self._owns_client:
            self.client.close()
