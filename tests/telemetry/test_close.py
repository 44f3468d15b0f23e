"""``CloudWatchMetrics.close(timeout_s)`` returns within its timeout when CloudWatch hangs, and
counts every datapoint that did not leave: the batch in flight, the ones waiting, the ones
never collected. Against a local server that never answers and against moto."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator

import pytest

from mangaroute import Router, parse_config
from mangaroute.core.observer import Observers
from mangaroute.telemetry import CloudWatchMetrics, PutMetricDataSink
from tests.telemetry.conftest import REGION, ClientFactory, HangingServer
from tests.telemetry.helpers import MANGA_CONFIG

NAMESPACE = "MangaAssist/Deployment"
SLACK_S = 2.5
"""Allowance over the timeout for thread scheduling on a loaded 2-core machine; the sink's
own timeouts (2 attempts x 5 s read timeout) are far beyond it."""


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def hung(hanging: HangingServer) -> Iterator[HangingServer]:
    """The hanging server; stopped at the end, then the close threads stuck on it end."""
    yield hanging
    hanging.stop()
    for thread in threading.enumerate():
        if thread.name.startswith("mangaroute-cloudwatch"):
            thread.join(30)


class Twin:
    """A second aggregate fed the same observations: how many datapoints they make."""

    def __init__(self, config_targets: object) -> None:
        self.metrics = CloudWatchMetrics(targets=config_targets, start=False)  # type: ignore[arg-type]

    def count(self) -> int:
        return len(self.metrics.collect())


def _router(metrics: CloudWatchMetrics, twin: Twin) -> Router:
    config = parse_config(MANGA_CONFIG)
    return Router(config, observer=Observers(metrics, twin.metrics), rng=random.Random(3))


def _traffic(router: Router, calls: int) -> None:
    for _ in range(calls):
        decision = router.choose("chat")
        router.record(decision, latency_ms=500.0, input_tokens=10, output_tokens=10)


def test_close_returns_within_its_timeout_and_counts_what_never_left(
    hung: HangingServer, aws_env: None
) -> None:
    config = parse_config(MANGA_CONFIG)
    sink = PutMetricDataSink(endpoint_url=hung.url, region_name=REGION)  # 2 s / 5 s x 2 tries
    metrics = CloudWatchMetrics(sink, targets=config.targets, interval_s=3600)
    twin = Twin(config.targets)
    _traffic(_router(metrics, twin), 50)
    expected = twin.count()
    assert expected >= 9  # decisions, latency, success, cost, breaker states

    started = time.monotonic()
    metrics.close(timeout_s=1.0)
    took = time.monotonic() - started
    assert took < 1.0 + SLACK_S, f"close took {took:.2f} s"
    assert hung.accepted >= 1  # the final flush did try
    assert metrics.dropped == expected
    assert metrics.pending == 0


def test_a_batch_in_flight_at_close_and_everything_after_it_count_as_dropped(
    hung: HangingServer, aws_env: None
) -> None:
    config = parse_config(MANGA_CONFIG)
    sink = PutMetricDataSink(endpoint_url=hung.url, region_name=REGION)
    metrics = CloudWatchMetrics(sink, targets=config.targets, interval_s=3600)
    twin = Twin(config.targets)
    router = _router(metrics, twin)
    _traffic(router, 30)
    in_flight = twin.count()
    flushing = threading.Thread(target=metrics.flush, name="mangaroute-cloudwatch-test")
    flushing.start()  # what the background thread does every interval
    deadline = time.monotonic() + 10
    while hung.accepted == 0:  # the batch is on the wire, unanswered
        assert time.monotonic() < deadline, "the flush never reached the server"
        time.sleep(0.01)
    assert metrics.pending == 0
    _traffic(router, 20)
    router.record("slow", "error", latency_ms=2500.0, input_tokens=5, output_tokens=0)
    not_collected = twin.count()

    started = time.monotonic()
    metrics.close(timeout_s=1.0)
    took = time.monotonic() - started
    assert took < 1.0 + SLACK_S, f"close took {took:.2f} s"
    assert metrics.dropped == in_flight + not_collected
    assert metrics.pending == 0
    hung.stop()
    flushing.join(30)  # the stuck export fails now; nothing comes back to life
    assert not flushing.is_alive()
    assert metrics.pending == 0
    assert metrics.dropped == in_flight + not_collected


def test_close_sends_everything_when_cloudwatch_answers(
    moto: str, client_for: ClientFactory
) -> None:
    config = parse_config(MANGA_CONFIG)
    metrics = CloudWatchMetrics(
        PutMetricDataSink(client_for(moto)), targets=config.targets, interval_s=3600
    )
    twin = Twin(config.targets)
    _traffic(_router(metrics, twin), 40)
    sent = twin.metrics.collect()
    metrics.close(timeout_s=10.0)
    assert metrics.dropped == 0 and metrics.pending == 0
    listed = {
        (m["MetricName"], tuple((d["Name"], d["Value"]) for d in m["Dimensions"]))
        for page in client_for(moto).get_paginator("list_metrics").paginate(Namespace=NAMESPACE)
        for m in page["Metrics"]
    }
    assert listed == {(d.name, d.dimensions) for d in sent}
