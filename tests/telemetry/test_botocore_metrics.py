"""Beside OpenTelemetry's botocore instrumentation: one GenAI metric series per call, the same
``server.address`` as the spans, and the request's conversation id, max tokens and temperature
on the spans. Real SDK (in-memory reader and exporter), real BotocoreInstrumentor, real boto3
clients against the local stand-in."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from opentelemetry.instrumentation.botocore import BotocoreInstrumentor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mangaroute import Observation, Outcome, Router, parse_config
from mangaroute.invoke import RoutedClient
from mangaroute.telemetry import OTelObserver, RoutingTelemetry
from mangaroute.telemetry.instruments import SCHEMA_URL
from mangaroute.testing import StandIn, TargetScript
from tests.telemetry.helpers import MANGA_CONFIG, points

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "Which volume of Frieren comes next?"}]}]
DURATION = "gen_ai.client.operation.duration"
TOKENS = "gen_ai.client.token.usage"


@pytest.fixture
def standin() -> Iterator[StandIn]:
    with StandIn(models={HAIKU: TargetScript(output_tokens=6)}, seed=3) as server:
        yield server


@pytest.fixture
def instrumented(tracer_provider: TracerProvider, meter_provider: MeterProvider) -> Iterator[None]:
    instrumentor = BotocoreInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    try:
        yield
    finally:
        instrumentor.uninstrument()


def _call(
    standin: StandIn,
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    **converse: Any,
) -> None:
    """One routed Converse on the ``fast`` (Haiku) target, then the observer drained."""
    config = parse_config(MANGA_CONFIG)
    otel = OTelObserver(
        meter_provider, targets=config.targets, endpoint_url=standin.endpoint_url, start=False
    )
    router = Router(config, observer=otel)
    bedrock = boto3.client(
        "bedrock-runtime",
        endpoint_url=standin.endpoint_url,
        region_name="ap-northeast-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"total_max_attempts": 1}),
    )
    telemetry = RoutingTelemetry(tracer_provider, meter_provider)
    with RoutedClient(
        router, clients={"bedrock-runtime": bedrock}, telemetry=telemetry, refresh_snapshots=False
    ) as client:
        client.converse(messages=MESSAGES, **converse)
    bedrock.close()
    otel.close()


def _calls(reader: InMemoryMetricReader, name: str) -> list[Any]:
    return [p for p in points(reader).get(name, []) if p.count]


def test_with_the_instrumentation_each_call_is_one_duration_and_one_token_series(
    instrumented: None,
    standin: StandIn,
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    metric_reader: InMemoryMetricReader,
) -> None:
    _call(standin, tracer_provider, meter_provider)
    durations = _calls(metric_reader, DURATION)
    assert sum(p.count for p in durations) == 1  # botocore's; mangaroute left it out
    assert "mangaroute.target" not in durations[0].attributes  # the instrumentation's series
    assert durations[0].attributes["server.address"] == "127.0.0.1"
    tokens = _calls(metric_reader, TOKENS)
    assert sorted(p.sum for p in tokens) == [6, 9]  # one input and one output record
    # mangaroute's own metrics still count the call
    assert sum(p.value for p in points(metric_reader)["mangaroute.decisions"]) == 1


def test_without_it_mangaroute_records_the_call_naming_the_server_the_span_names(
    standin: StandIn,
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    metric_reader: InMemoryMetricReader,
    spans: InMemorySpanExporter,
) -> None:
    _call(standin, tracer_provider, meter_provider)
    durations = _calls(metric_reader, DURATION)
    assert sum(p.count for p in durations) == 1
    attempt = next(s for s in spans.get_finished_spans() if s.name.startswith("chat "))
    assert attempt.attributes is not None
    for key in ("server.address", "server.port", "gen_ai.request.model"):
        assert durations[0].attributes[key] == attempt.attributes[key]
    assert durations[0].attributes["server.address"] == "127.0.0.1"


def test_spans_carry_the_conversation_id_and_the_request_settings(
    standin: StandIn,
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    spans: InMemorySpanExporter,
) -> None:
    _call(
        standin,
        tracer_provider,
        meter_provider,
        session_id="session-42",
        inferenceConfig={"maxTokens": 256, "temperature": 0.2},
    )
    finished = {s.name.split(" ")[0]: s for s in spans.get_finished_spans()}
    route, attempt = finished["route"], finished["chat"]
    assert route.attributes is not None and attempt.attributes is not None
    assert route.attributes["gen_ai.conversation.id"] == "session-42"
    assert attempt.attributes["gen_ai.conversation.id"] == "session-42"
    assert attempt.attributes["gen_ai.request.max_tokens"] == 256
    assert attempt.attributes["gen_ai.request.temperature"] == 0.2
    assert attempt.instrumentation_scope is not None
    assert attempt.instrumentation_scope.schema_url == SCHEMA_URL


def test_a_call_without_them_sets_none_of_them(
    standin: StandIn,
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    spans: InMemorySpanExporter,
) -> None:
    _call(standin, tracer_provider, meter_provider)
    for span in spans.get_finished_spans():
        assert span.attributes is not None
        assert not {
            "gen_ai.conversation.id",
            "gen_ai.request.max_tokens",
            "gen_ai.request.temperature",
        } & set(span.attributes)


def test_sagemaker_calls_keep_mangaroutes_series_while_the_instrumentation_is_on(
    instrumented: None, meter_provider: MeterProvider, metric_reader: InMemoryMetricReader
) -> None:
    config = parse_config(MANGA_CONFIG)
    otel = OTelObserver(meter_provider, targets=config.targets, start=False)
    otel.on_outcome(Observation(config.target("fast"), Outcome.OK, 120.0, None, 9, 6, None))
    otel.on_outcome(Observation(config.target("manga"), Outcome.OK, 80.0, None, 9, 6, None))
    otel.close()
    durations = _calls(metric_reader, DURATION)
    assert [p.attributes["mangaroute.target"] for p in durations] == ["manga"]
    assert {p.attributes["mangaroute.target"] for p in _calls(metric_reader, TOKENS)} == {"manga"}
