"""CloudWatchMetrics: the in-process aggregate, its datapoints, and the EMF lines."""

from __future__ import annotations

import io
import json
import logging
import math
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from mangaroute import FakeClock, Router, parse_config
from mangaroute.core.snapshot import SwitchEvent
from mangaroute.runtime import RateLimitedLog
from mangaroute.telemetry import CloudWatchMetrics, EmfSink, MetricDatum
from mangaroute.telemetry import cloudwatch as cw
from mangaroute.telemetry.sinks import emf_events
from tests.telemetry.helpers import MANGA_CONFIG

NOW = 1_800_000_000.0


class ListSink:
    def __init__(self) -> None:
        self.exports: list[tuple[str, list[MetricDatum]]] = []
        self.closed = False

    def export(self, namespace: str, data: Sequence[MetricDatum]) -> None:
        self.exports.append((namespace, list(data)))

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def sink() -> ListSink:
    return ListSink()


@pytest.fixture
def metrics(sink: ListSink) -> Iterator[CloudWatchMetrics]:
    config = parse_config(MANGA_CONFIG)
    aggregate = CloudWatchMetrics(sink, targets=config.targets, wall_clock=lambda: NOW, start=False)
    yield aggregate
    aggregate.close()


@pytest.fixture
def router(metrics: CloudWatchMetrics) -> Router:
    return Router(
        parse_config(MANGA_CONFIG), observer=metrics, clock=FakeClock(10**12), rng=random.Random(2)
    )


def index(
    data: Sequence[MetricDatum],
) -> dict[tuple[str, tuple[tuple[str, str], ...]], list[MetricDatum]]:
    out: dict[tuple[str, tuple[tuple[str, str], ...]], list[MetricDatum]] = {}
    for datum in data:
        out.setdefault((datum.name, datum.dimensions), []).append(datum)
    return out


FAST = (("Target", "fast"), ("Pattern", "bedrock_on_demand"))


def test_the_seed_metric_set_aggregated(router: Router, metrics: CloudWatchMetrics) -> None:
    latencies = [480.0, 500.0, 505.0, 1900.0]
    for latency in latencies:
        decision = router.choose("chat")
        router.record(decision, latency_ms=latency, input_tokens=1000, output_tokens=500)
    router.record("fast", "throttled", latency_ms=30.0, error_code="ThrottlingException")
    data = index(metrics.collect())
    [decisions] = data[(cw.ROUTING_DECISION, (*FAST, ("Reason", "best")))]
    assert decisions.statistics == cw.Statistics(4, 4, 1, 1)
    [rollup] = data[(cw.ROUTING_DECISION, FAST)]
    assert rollup.statistics == cw.Statistics(4, 4, 1, 1)
    [latency] = data[(cw.INFERENCE_LATENCY, FAST)]
    assert latency.unit == "Milliseconds"
    assert sum(latency.counts) == 5
    observed = sorted([*latencies, 30.0])
    expanded = [v for v, c in zip(latency.values, latency.counts, strict=True) for _ in range(c)]
    for value, exact in zip(expanded, observed, strict=True):
        assert value == pytest.approx(exact, rel=0.0101)
    [success] = data[(cw.INFERENCE_SUCCESS, FAST)]
    assert (success.values, success.counts) == ((0.0, 1.0), (1, 4))
    [cost] = data[(cw.INFERENCE_COST, FAST)]
    per_call = (1000 * 0.25 + 500 * 1.25) / 1_000_000
    assert cost.statistics == pytest.approx(cw.Statistics(5, 4 * per_call, 0.0, per_call))
    [total] = data[(cw.INFERENCE_COST, ())]
    assert total.statistics == cost.statistics
    assert all(d.timestamp == NOW and d.storage_resolution == 60 for d in metrics.collect())
    assert not [k for k in index(metrics.collect()) if k[0] != cw.BREAKER_STATE]  # swapped out


def test_switches_breakers_and_dimensions(router: Router, metrics: CloudWatchMetrics) -> None:
    router.eject("slow", "access_denied")
    reason = "high_latency(2612ms), high_errors(12.0%)"
    metrics.on_event(SwitchEvent("fast", "manga", reason, 0, NOW))
    metrics.on_event(SwitchEvent("fast", "manga", "unavailable", 0, NOW))
    data = index(metrics.collect())
    switch_dims = (
        ("FromTarget", "fast"),
        ("ToTarget", "manga"),
        ("FromPattern", "bedrock_on_demand"),
        ("ToPattern", "sagemaker_realtime"),
        ("Reason", "high_latency,high_errors"),
    )
    assert data[(cw.PATTERN_SWITCH, switch_dims)][0].statistics == cw.Statistics(1, 1, 1, 1)
    assert data[(cw.PATTERN_SWITCH, ())][0].statistics == cw.Statistics(2, 2, 1, 1)
    states = {d.dimensions[0][1]: d.statistics.total for d in metrics.collect() if d.statistics}
    assert states == {"fast": 0.0, "slow": 2.0, "manga": 0.0}


def test_many_distinct_latencies_split_into_datums_of_at_most_150_values(
    router: Router, metrics: CloudWatchMetrics
) -> None:
    for i in range(1000):
        router.record("fast", latency_ms=1.0 * 1.03**i if i < 600 else 5.0)
    latency = [d for d in metrics.collect() if d.name == cw.INFERENCE_LATENCY]
    assert len(latency) > 1
    assert all(len(d.values) <= cw.MAX_VALUES_PER_DATUM for d in latency)
    assert sum(d.sample_count for d in latency) == 1000


def test_series_beyond_the_cap_are_dropped_and_reported(sink: ListSink) -> None:
    metrics = CloudWatchMetrics(sink, max_series=2, wall_clock=lambda: NOW, start=False)
    for i in range(5):
        metrics.on_event(SwitchEvent(f"a{i}", "b", "unavailable", 0, NOW))
    metrics.on_event(SwitchEvent("a0", "b", "unavailable", 0, NOW))  # an existing series
    assert metrics.dropped == 3
    assert metrics.flush()
    data = index(sink.exports[0][1])
    assert data[(cw.PATTERN_SWITCH, ())][0].statistics == cw.Statistics(3, 3, 1, 1)
    assert data[(cw.DROPPED_DATAPOINTS, ())][0].statistics == cw.Statistics(1, 3, 3, 3)
    assert metrics.flush()
    assert len(sink.exports) == 1  # nothing new: the drops were reported once
    metrics.close()
    assert sink.closed


def test_a_failing_sink_keeps_data_for_the_next_flush_in_order(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Flaky(ListSink):
        failures = 2

        def export(self, namespace: str, data: Sequence[MetricDatum]) -> None:
            if self.failures:
                self.failures -= 1
                raise ConnectionError("CloudWatch unreachable")
            super().export(namespace, data)

    sink = Flaky()
    clock = FakeClock(0)
    metrics = CloudWatchMetrics(sink, wall_clock=lambda: NOW, clock=clock, start=False)
    with caplog.at_level(logging.WARNING, logger="mangaroute.telemetry"):
        metrics.on_event(SwitchEvent("a", "b", "one", 0, NOW))
        assert not metrics.flush()
        metrics.on_event(SwitchEvent("a", "b", "two", 0, NOW))
        assert not metrics.flush()
        assert metrics.pending == 4
        assert metrics.flush()
    assert metrics.pending == 0
    reasons = [dict(d.dimensions).get("Reason") for d in sink.exports[0][1]]
    assert reasons == ["one", None, "two", None]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # at most one a minute
    assert "ConnectionError" in warnings[0].getMessage()
    metrics.close()


def test_the_pending_buffer_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    class Down(ListSink):
        def export(self, namespace: str, data: Sequence[MetricDatum]) -> None:
            raise ConnectionRefusedError("no")

    metrics = CloudWatchMetrics(Down(), max_pending=5, wall_clock=lambda: NOW, start=False)
    for i in range(4):
        metrics.on_event(SwitchEvent(f"a{i}", "b", "r", 0, NOW))
        metrics.flush()
    assert metrics.pending == 5
    assert metrics.dropped >= 3
    with caplog.at_level(logging.WARNING, logger="mangaroute.telemetry"):
        metrics.close(timeout_s=1.0)
    assert "not sent at close" in caplog.text


def test_rate_limited_warning_counts_what_it_suppressed(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock(0)
    warning = RateLimitedLog(60.0, clock, logging.getLogger("mangaroute.telemetry"))
    with caplog.at_level(logging.WARNING, logger="mangaroute.telemetry"):
        assert warning.warn("down %s", 1)
        clock.advance(seconds=30)
        assert not warning.warn("down %s", 2)
        assert not warning.warn("down %s", 3)
        clock.advance(seconds=31)
        assert warning.warn("down %s", 4)
    assert [r.getMessage() for r in caplog.records] == [
        "down 1",
        "down 4 (2 similar warnings suppressed)",
    ]


def test_invalid_settings() -> None:
    with pytest.raises(ValueError, match="namespace"):
        CloudWatchMetrics(ListSink(), namespace="AWS/Bedrock", start=False)
    with pytest.raises(ValueError, match="max_pending"):
        CloudWatchMetrics(ListSink(), max_pending=0, start=False)


# -- EMF ------------------------------------------------------------------------------------


def check_emf(document: dict[str, Any]) -> dict[str, list[float]]:
    """Validate one EMF document against the specification; return its metric values."""
    assert set(document["_aws"]) == {"Timestamp", "CloudWatchMetrics"}
    assert isinstance(document["_aws"]["Timestamp"], int)
    values: dict[str, list[float]] = {}
    for directive in document["_aws"]["CloudWatchMetrics"]:
        assert set(directive) == {"Namespace", "Dimensions", "Metrics"}
        assert 1 <= len(directive["Namespace"]) <= 255
        for dimension_set in directive["Dimensions"]:
            assert len(dimension_set) <= 30
            for key in dimension_set:
                assert isinstance(document[key], str) and 1 <= len(document[key]) <= 1024
        assert 1 <= len(directive["Metrics"]) <= 100
        for definition in directive["Metrics"]:
            assert set(definition) <= {"Name", "Unit", "StorageResolution"}
            assert definition.get("StorageResolution", 60) in (1, 60)
            value = document[definition["Name"]]
            numbers = value if isinstance(value, list) else [value]
            assert 1 <= len(numbers) <= 100
            assert all(isinstance(n, int | float) and math.isfinite(n) for n in numbers)
            values[definition["Name"]] = numbers
    return values


def test_emf_lines_follow_the_specification_and_keep_every_value(
    router: Router, metrics: CloudWatchMetrics
) -> None:
    for i in range(450):
        router.record("fast", latency_ms=100.0 + i, input_tokens=10, output_tokens=10)
    for _ in range(130):
        router.choose("chat")
    data = metrics.collect()
    stream = io.StringIO()
    EmfSink(stream).export("MangaAssist/Deployment", data)
    lines = stream.getvalue().splitlines()
    totals: Counter[tuple[str, tuple[tuple[str, str], ...]]] = Counter()
    samples: Counter[tuple[str, tuple[tuple[str, str], ...]]] = Counter()
    for line in lines:
        document = json.loads(line)
        [directive] = document["_aws"]["CloudWatchMetrics"]
        dims = tuple((k, document[k]) for k in directive["Dimensions"][0])
        for name, numbers in check_emf(document).items():
            totals[(name, dims)] += sum(numbers)
            samples[(name, dims)] += len(numbers)
    for datum in data:
        key = (datum.name, datum.dimensions)
        assert totals[key] == pytest.approx(datum.total)
        if datum.statistics is None:
            assert samples[key] == datum.sample_count  # every value, as often as it was seen
    assert samples[(cw.INFERENCE_LATENCY, FAST)] == 450
    assert len(lines) >= 5  # 450 latencies need 5 lines of at most 100 values


def test_emf_splits_more_than_100_metrics_and_marks_high_resolution() -> None:
    data = [
        MetricDatum(f"M{i}", (("Target", "t"),), "Count", NOW, (1.0,), (1,), None, 1)
        for i in range(150)
    ]
    documents = list(emf_events("NS", data))
    assert len(documents) == 2
    names = [m["Name"] for d in documents for m in d["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
    assert sorted(names) == sorted(f"M{i}" for i in range(150))
    for document in documents:
        check_emf(document)
        assert document["_aws"]["Timestamp"] == int(NOW * 1000)
        for definition in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
            assert definition["StorageResolution"] == 1


def test_emf_to_a_file_and_to_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    datum = MetricDatum("RoutingDecision", (), "Count", NOW, statistics=cw.Statistics(3, 3, 1, 1))
    path = tmp_path / "emf.log"
    sink = EmfSink(path=str(path))
    sink.export("NS", [datum])
    sink.export("NS", [datum])
    sink.close()
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["RoutingDecision"] == 3
    EmfSink().export("NS", [datum])
    assert json.loads(capsys.readouterr().out)["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "NS"
    with pytest.raises(ValueError, match="not both"):
        EmfSink(io.StringIO(), path=str(path))


def test_high_resolution_datapoints(sink: ListSink) -> None:
    metrics = CloudWatchMetrics(sink, high_resolution=True, wall_clock=lambda: NOW, start=False)
    metrics.on_event(SwitchEvent("a", "b", "r", 0, NOW))
    assert {d.storage_resolution for d in metrics.collect()} == {1}
    metrics.close()


def test_config_reloads_by_result_and_admin_actions_are_not_metrics(
    router: Router, metrics: CloudWatchMetrics
) -> None:
    router.reconfigure(parse_config(MANGA_CONFIG))
    router.reject_reload("router.toml", "bad")
    router.reject_reload("router.toml", "still bad")
    router.eject("slow", "deploy", 60.0, by="ops")  # an AdminEvent: no datum of its own
    data = index(metrics.collect())
    assert data[(cw.CONFIG_RELOAD, (("Result", "accepted"),))][0].statistics == cw.Statistics(
        1, 1, 1, 1
    )
    assert data[(cw.CONFIG_RELOAD, (("Result", "rejected"),))][0].statistics == cw.Statistics(
        2, 2, 1, 1
    )
    assert {name for name, _ in data} == {
        cw.CONFIG_RELOAD,
        cw.BREAKER_STATE,
    }
