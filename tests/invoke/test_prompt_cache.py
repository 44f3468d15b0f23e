"""Prompt caching counted everywhere, end to end: the stand-in answers with cache usage, a real
boto3 client reads it, and the router's spend and capacity, the spans, the OpenTelemetry
metrics and the CloudWatch metrics all see it."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mangaroute import Router, parse_config
from mangaroute.core.observer import Observers
from mangaroute.invoke import InvokeSettings, RoutedClient
from mangaroute.invoke.attempt import usage_of
from mangaroute.invoke.client_cache import ClientCache
from mangaroute.telemetry import CloudWatchMetrics, EmfSink, OTelObserver, RoutingTelemetry
from mangaroute.testing import StandIn, TargetScript
from tests.invoke.support import HAIKU, MESSAGES, REGION, SCALE, scaled_clock, session

READ, WRITE, OUT = 1800, 200, 5
IN = 9  # the stand-in's estimate for MESSAGES (35 characters at ~4 per token)

CONFIG = f"""
[router]
default_class = "chat"

[targets.haiku]
pattern = "bedrock_on_demand"
model_id = "{HAIKU}"
region = "{REGION}"
input_per_million_usd = 0.8
output_per_million_usd = 4.0
cache_read_per_million_usd = 0.08
cache_write_per_million_usd = 1.0

[classes.chat]
targets = ["haiku"]
"""
USAGE_KEYS = ("inputTokens", "outputTokens", "cacheReadInputTokens", "cacheWriteInputTokens")
COST = (IN * 0.8 + OUT * 4.0 + READ * 0.08 + WRITE * 1.0) / 1e6


@pytest.fixture
def standin() -> Iterator[StandIn]:
    script = TargetScript(output_tokens=OUT, cache_read_tokens=READ, cache_write_tokens=WRITE)
    with StandIn(models={HAIKU: script}, time_scale=SCALE, clock=scaled_clock) as server:
        yield server


class Wired:
    """A router with OpenTelemetry and CloudWatch observers and a traced RoutedClient."""

    def __init__(self, standin: StandIn) -> None:
        config = parse_config(CONFIG)
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.otel = OTelObserver(self.meter_provider, targets=config.targets, start=False)
        self.emf = io.StringIO()
        self.cloudwatch = CloudWatchMetrics(EmfSink(self.emf), targets=config.targets, start=False)
        self.router = Router(config, observer=Observers(self.otel, self.cloudwatch))
        self.cache = ClientCache(session(), endpoint_url=standin.endpoint_url)
        self.client = RoutedClient(
            self.router,
            clients=self.cache,
            clock=scaled_clock,
            settings=InvokeSettings(time_scale=SCALE),
            telemetry=RoutingTelemetry(self.tracer_provider, self.meter_provider),
            refresh_snapshots=False,
        )

    def close(self) -> None:
        self.client.close()
        self.cache.close()
        self.otel.close()
        self.cloudwatch.close()
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()

    def attempt_span(self) -> Any:
        return next(s for s in self.spans.get_finished_spans() if s.name.startswith("chat "))

    def metric_points(self) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        data = self.reader.get_metrics_data()
        assert data is not None
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    out.setdefault(metric.name, []).extend(metric.data.data_points)
        return out

    def emf_metrics(self) -> dict[str, Any]:
        """Every EMF value by metric name (the per-target series)."""
        values: dict[str, Any] = {}
        for line in self.emf.getvalue().splitlines():
            record = json.loads(line)
            for directive in record["_aws"]["CloudWatchMetrics"]:
                for metric in directive["Metrics"]:
                    if "Target" in record:
                        values[metric["Name"]] = record[metric["Name"]]
        return values


@pytest.fixture
def wired(standin: StandIn) -> Iterator[Wired]:
    made = Wired(standin)
    yield made
    made.close()


def _check_counted(wired: Wired) -> None:
    router = wired.router
    assert router.local_sample().spend_usd == pytest.approx(COST)
    # capacity counts the uncached input, the cache writes and the output - not the reads
    assert router.local_sample().tokens == {"haiku": IN + WRITE + OUT}
    view = router.snapshot().target("haiku")
    assert view.tokens_per_call == IN + WRITE + OUT

    span = wired.attempt_span()
    attributes = dict(span.attributes)
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == READ
    assert attributes["gen_ai.usage.cache_creation.input_tokens"] == WRITE
    assert attributes["gen_ai.usage.input_tokens"] == IN + READ + WRITE
    assert attributes["gen_ai.usage.output_tokens"] == OUT

    wired.otel.drain()
    points = wired.metric_points()
    cached = {
        p.attributes["mangaroute.cache.kind"]: p.value for p in points["mangaroute.cache.tokens"]
    }
    assert cached == {"read": READ, "write": WRITE}
    assert sum(p.value for p in points["mangaroute.spend"]) == pytest.approx(COST)

    wired.cloudwatch.flush()
    emf = wired.emf_metrics()
    assert emf["CacheReadInputTokens"] == READ  # one call: its statistic set is one value
    assert emf["CacheWriteInputTokens"] == WRITE
    assert emf["InferenceCost"] == pytest.approx(COST)


def test_a_cached_converse_is_priced_counted_and_reported(wired: Wired) -> None:
    reply = wired.client.converse(messages=MESSAGES)
    usage = reply["usage"]
    assert (usage["cacheReadInputTokens"], usage["cacheWriteInputTokens"]) == (READ, WRITE)
    _check_counted(wired)


def test_a_cached_stream_is_priced_counted_and_reported(wired: Wired) -> None:
    with wired.client.converse_stream(messages=MESSAGES) as stream:
        events = list(stream)
    assert "metadata" in events[-1]
    assert stream.usage == {
        "inputTokens": IN,
        "outputTokens": OUT,
        "cacheReadInputTokens": READ,
        "cacheWriteInputTokens": WRITE,
    }
    _check_counted(wired)


_COUNT = st.one_of(
    st.integers(-5, 10**9), st.floats(), st.text(max_size=3), st.none(), st.booleans()
)


@given(st.dictionaries(st.sampled_from(USAGE_KEYS), _COUNT))
def test_usage_of_reads_any_usage_as_non_negative_integers(usage: dict[str, Any]) -> None:
    counts = usage_of({"usage": usage})
    assert all(type(n) is int and n >= 0 for n in counts)
    tokens_in, tokens_out = usage.get("inputTokens", 0), usage.get("outputTokens", 0)
    if type(tokens_in) is int and type(tokens_out) is int:
        assert counts[:2] == (max(tokens_in, 0), max(tokens_out, 0))
    else:
        assert counts[:2] == (0, 0)
    for key, n in zip(USAGE_KEYS[2:], counts[2:], strict=True):
        value = usage.get(key)
        assert n == (max(value, 0) if type(value) is int else 0)


def test_usage_of_reads_a_cached_response_exactly() -> None:
    usage = {
        "inputTokens": IN,
        "outputTokens": OUT,
        "totalTokens": IN + OUT + READ + WRITE,
        "cacheReadInputTokens": READ,
        "cacheWriteInputTokens": WRITE,
    }
    assert usage_of({"usage": usage}) == (IN, OUT, READ, WRITE)
    assert usage_of({}) == (0, 0, 0, 0)
