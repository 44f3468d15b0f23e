"""PutMetricData against moto's server (real boto3 client), batching to the API limits, and a
CloudWatch that hangs or refuses: the request path never waits."""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import time
from collections.abc import Sequence
from typing import Any

import pytest

from mangaroute import Router, parse_config
from mangaroute.core.snapshot import SwitchEvent
from mangaroute.telemetry import CloudWatchMetrics, MetricDatum, PutMetricDataSink
from mangaroute.telemetry import cloudwatch as cw
from mangaroute.telemetry.sinks import ExportError, put_batches
from tests.telemetry.conftest import ClientFactory, HangingServer
from tests.telemetry.helpers import MANGA_CONFIG

NAMESPACE = "MangaAssist/Deployment"


class Recording:
    """Passes datapoints to a real sink and keeps what it sent."""

    def __init__(self, inner: PutMetricDataSink) -> None:
        self.inner = inner
        self.sent: list[MetricDatum] = []

    def export(self, namespace: str, data: Sequence[MetricDatum]) -> None:
        self.inner.export(namespace, data)
        self.sent.extend(data)

    def close(self) -> None:
        self.inner.close()


def traffic(router: Router, metrics: CloudWatchMetrics) -> None:
    rng = random.Random(11)
    for _ in range(300):
        decision = router.choose("chat")
        outcome = "ok" if rng.random() < 0.9 else "error"
        router.record(
            decision,
            outcome,
            latency_ms=rng.lognormvariate(6.2, 0.4),
            input_tokens=rng.randint(100, 900),
            output_tokens=rng.randint(50, 400),
        )
    for _ in range(40):
        router.record("manga", latency_ms=rng.uniform(300, 700), input_tokens=10, output_tokens=10)
    router.eject("slow", "access_denied")
    metrics.on_event(SwitchEvent("fast", "manga", "high_latency(2600ms)", 0, time.time()))


def stats(
    client: Any, datum_name: str, dims: tuple[tuple[str, str], ...], at: float
) -> dict[str, float]:
    """SampleCount, Sum, Minimum and Maximum of one series, over one period around ``at``."""
    start = dt.datetime.fromtimestamp(at - 30, dt.UTC)
    metric = {
        "Namespace": NAMESPACE,
        "MetricName": datum_name,
        "Dimensions": [{"Name": k, "Value": v} for k, v in dims],
    }
    queries = [
        {"Id": stat.lower(), "MetricStat": {"Metric": metric, "Period": 3600, "Stat": stat}}
        for stat in ("SampleCount", "Sum", "Minimum", "Maximum")
    ]
    result = client.get_metric_data(
        MetricDataQueries=queries,
        StartTime=start,
        EndTime=start + dt.timedelta(seconds=3599),
    )
    values = {r["Id"]: r["Values"] for r in result["MetricDataResults"]}
    assert all(len(v) == 1 for v in values.values()), values
    return {key: v[0] for key, v in values.items()}


def expected(data: Sequence[MetricDatum]) -> dict[str, float]:
    minimum = min(d.statistics.minimum if d.statistics else min(d.values) for d in data)
    maximum = max(d.statistics.maximum if d.statistics else max(d.values) for d in data)
    return {
        "samplecount": sum(d.sample_count for d in data),
        "sum": sum(d.total for d in data),
        "minimum": minimum,
        "maximum": maximum,
    }


def test_what_was_emitted_is_what_cloudwatch_holds(moto: str, client_for: ClientFactory) -> None:
    client = client_for(moto)
    config = parse_config(MANGA_CONFIG)
    sink = Recording(PutMetricDataSink(client_for(moto)))
    at = float(int(time.time()))
    metrics = CloudWatchMetrics(sink, targets=config.targets, wall_clock=lambda: at, start=False)
    router = Router(config, observer=metrics, rng=random.Random(4))
    traffic(router, metrics)
    assert metrics.flush()
    metrics.close()
    sent: dict[tuple[str, tuple[tuple[str, str], ...]], list[MetricDatum]] = {}
    for datum in sink.sent:
        sent.setdefault((datum.name, datum.dimensions), []).append(datum)
    listed = {
        (m["MetricName"], tuple((d["Name"], d["Value"]) for d in m["Dimensions"]))
        for page in client.get_paginator("list_metrics").paginate(Namespace=NAMESPACE)
        for m in page["Metrics"]
    }
    assert listed == set(sent)
    assert {name for name, _ in sent} == {
        cw.ROUTING_DECISION,
        cw.INFERENCE_LATENCY,
        cw.INFERENCE_SUCCESS,
        cw.INFERENCE_COST,
        cw.PATTERN_SWITCH,
        cw.BREAKER_STATE,
    }
    for (name, dims), data in sent.items():
        # moto answers a query without dimensions with every series of the metric
        series = data if dims else [d for d in sink.sent if d.name == name]
        assert stats(client, name, dims, at) == pytest.approx(expected(series)), (name, dims)


def test_batches_respect_the_metric_count_limit(moto: str, client_for: ClientFactory) -> None:
    client = client_for(moto)
    calls: list[int] = []
    client.meta.events.register(
        "provide-client-params.cloudwatch.PutMetricData",
        lambda params, **_: calls.append(len(params["MetricData"])),
    )
    now = time.time()
    data = [
        MetricDatum(f"M{i}", (("Target", "t"),), "Count", now, statistics=cw.Statistics(1, 1, 1, 1))
        for i in range(2500)
    ]
    PutMetricDataSink(client).export(NAMESPACE, data)
    assert calls == [1000, 1000, 500]
    names = {
        m["MetricName"]
        for page in client.get_paginator("list_metrics").paginate(Namespace=NAMESPACE)
        for m in page["Metrics"]
    }
    assert len(names) == 2500


def test_batches_respect_the_size_limit() -> None:
    dims = tuple((f"D{i}", "x" * 1024) for i in range(30))
    data = [
        MetricDatum("Big", dims, "Milliseconds", 1.8e9, (1.0, 2.0), (3, 4)) for _ in range(1000)
    ]
    batches = list(put_batches(data))
    assert len(batches) > 1
    assert sum(len(members) for _, members in batches) == 1000
    for first, members in batches:
        assert len(json.dumps(members, default=str)) < 1_000_000
        assert members[0]["Dimensions"][0]["Value"] == data[first].dimensions[0][1]


def test_a_failed_batch_reports_what_is_unsent() -> None:
    class Client:
        calls = 0

        def put_metric_data(self, **params: Any) -> None:
            self.calls += 1
            if self.calls == 2:
                raise ConnectionError("reset")

    data = [MetricDatum(f"M{i}", (), "Count", 1.8e9, (1.0,), (1,)) for i in range(1500)]
    sink = PutMetricDataSink(Client())
    with pytest.raises(ExportError) as caught:
        sink.export(NAMESPACE, data)
    assert list(caught.value.unsent) == data[1000:]
    assert sink.calls == 1
    with pytest.raises(ValueError, match="max_metrics"):
        PutMetricDataSink(Client(), max_metrics=1001)


# -- CloudWatch slow or unreachable -----------------------------------------------------------


@pytest.mark.parametrize("where", ["hanging", "refused"])
def test_a_slow_or_unreachable_cloudwatch_never_blocks_the_request_path(
    where: str,
    request: pytest.FixtureRequest,
    client_for: ClientFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = request.getfixturevalue(where)
    endpoint = url.url if isinstance(url, HangingServer) else url
    # a request path that waited on the export would wait out these timeouts (3 s); the
    # slowest call is held far below that, with room for a loaded machine's scheduling
    client = client_for(endpoint, connect_timeout=3.0, read_timeout=3.0)
    config = parse_config(MANGA_CONFIG)
    metrics = CloudWatchMetrics(
        PutMetricDataSink(client), targets=config.targets, interval_s=0.05, max_pending=40
    )
    router = Router(config, observer=metrics, rng=random.Random(1))
    slowest = 0.0
    calls = 0
    with caplog.at_level(logging.WARNING, logger="mangaroute.telemetry"):
        stop_at = time.monotonic() + 1.5
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            decision = router.choose("chat")
            router.record(decision, latency_ms=500.0, input_tokens=10, output_tokens=10)
            slowest = max(slowest, time.perf_counter() - started)
            calls += 1
            if calls % 200 == 0:
                metrics.on_event(SwitchEvent("fast", "slow", f"r{calls}", 0, time.time()))
                time.sleep(0.01)
        started = time.monotonic()
        metrics.close(timeout_s=0.5)
        closing = time.monotonic() - started
    assert slowest < 1.0, f"a request-path call took {slowest:.3f} s"
    assert closing < 2.0
    assert metrics.pending <= 40
    assert metrics.dropped > 0
    warnings = [r for r in caplog.records if "CloudWatch metrics" in r.getMessage()]
    assert 1 <= len(warnings) <= 3  # once a minute, plus the close report
    if isinstance(url, HangingServer):
        url.stop()  # the stuck read ends; the flush thread exits
    thread = metrics._worker._thread
    assert thread is not None
    thread.join(5)
    assert not thread.is_alive()
