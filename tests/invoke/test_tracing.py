"""Every routed call is traced: a ``route`` span and a span per attempt, with a real
OpenTelemetry SDK (in-memory exporter) and real boto3 clients against the stand-in."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from opentelemetry import trace
from opentelemetry.instrumentation.botocore import BotocoreInstrumentor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from mangaroute import FakeClock, Router
from mangaroute.invoke import DeadlineExceeded, HedgePolicy, InvokeSettings, RoutedClient
from mangaroute.telemetry import RoutingTelemetry
from mangaroute.testing import Latency, StandIn, StreamFailure, TargetScript
from tests.invoke.conftest import ClientFactory
from tests.invoke.support import (
    ENDPOINT,
    HAIKU,
    MESSAGES,
    PROFILE,
    PROVISIONED,
    REGION,
    ROOMY_MS,
    SCALE,
    SLOW_MS,
    make_router,
    session,
)

PROMPT_MARKER = "qzvprompt4b7e1"
ANSWER_MARKER = "qzvanswer8d2c6"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    yield exporter
    exporter.shutdown()


@pytest.fixture
def tracer_provider(spans: InMemorySpanExporter) -> Iterator[TracerProvider]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    yield provider
    provider.shutdown()


@pytest.fixture
def metric_reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def meter_provider(metric_reader: InMemoryMetricReader) -> Iterator[MeterProvider]:
    provider = MeterProvider(metric_readers=[metric_reader])
    yield provider
    provider.shutdown()


@pytest.fixture
def telemetry(tracer_provider: TracerProvider, meter_provider: MeterProvider) -> RoutingTelemetry:
    return RoutingTelemetry(tracer_provider, meter_provider)


@pytest.fixture
def traced(make_client: ClientFactory, router: Router, telemetry: RoutingTelemetry) -> RoutedClient:
    return make_client(router, telemetry=telemetry)


def finished(spans: InMemorySpanExporter) -> tuple[ReadableSpan, list[ReadableSpan]]:
    """The one route span exported, and its attempt spans in attempt order."""
    done = spans.get_finished_spans()
    (route,) = [s for s in done if s.name == "route"]
    attempts = [s for s in done if s.parent is not None and s.parent.span_id == span_id(route)]
    assert len(attempts) == len(done) - 1, [s.name for s in done]
    return route, sorted(attempts, key=lambda s: attrs(s)["mangaroute.attempt"])


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.span_id)


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def metric_points(reader: InMemoryMetricReader, name: str) -> list[Any]:
    data = reader.get_metrics_data()
    assert data is not None
    return [
        point
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


def test_a_routed_call_is_a_route_span_and_a_client_attempt_span(
    standin: StandIn, traced: RoutedClient, spans: InMemorySpanExporter
) -> None:
    reply = traced.converse(messages=MESSAGES, budget_ms=ROOMY_MS)
    route, (attempt,) = finished(spans)
    routing = reply.routing

    assert route.kind is SpanKind.INTERNAL and route.status.status_code is StatusCode.UNSET
    decided = attrs(route)
    assert decided["mangaroute.decision.id"] == routing.decision_id
    assert decided["mangaroute.request_class"] == "chat"
    assert decided["mangaroute.reason"] == routing.reason
    assert decided["mangaroute.target"] == "primary"
    assert decided["mangaroute.pattern"] == "bedrock_provisioned"
    assert decided["mangaroute.fallbacks"] == ("haiku", "profile")
    assert decided["mangaroute.candidates"] == ("primary", "haiku", "profile")
    assert decided["mangaroute.excluded"] == ()
    assert decided["mangaroute.budget_ms"] == ROOMY_MS  # all of it: nothing ran before
    assert decided["mangaroute.attempts"] == 1 and decided["mangaroute.failovers"] == 0
    assert decided["mangaroute.answered_by"] == "primary"

    assert attempt.name == f"chat {PROVISIONED}"
    assert attempt.kind is SpanKind.CLIENT and attempt.status.status_code is StatusCode.UNSET
    assert attempt.context is not None and route.context is not None
    assert attempt.context.trace_id == route.context.trace_id
    host = urlsplit(standin.endpoint_url)
    usage = reply["usage"]
    assert attrs(attempt) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "aws.bedrock",
        "gen_ai.request.model": PROVISIONED,
        "gen_ai.usage.input_tokens": usage["inputTokens"],
        "gen_ai.usage.output_tokens": usage["outputTokens"],
        "gen_ai.response.finish_reasons": (reply["stopReason"],),
        "server.address": host.hostname,
        "server.port": host.port,
        "cloud.region": REGION,
        "mangaroute.target": "primary",
        "mangaroute.pattern": "bedrock_provisioned",
        "mangaroute.attempt": 1,
        "mangaroute.attempt.kind": "primary",
        "mangaroute.budget_ms": pytest.approx(ROOMY_MS - routing.attempts[0].started_ms),
        "mangaroute.outcome": "ok",
        "mangaroute.decision.id": routing.decision_id,
    }
    assert attempt.start_time is not None and route.start_time is not None
    assert route.start_time <= attempt.start_time


def test_a_throttled_primary_and_its_failover_are_two_attempt_spans(
    standin: StandIn,
    traced: RoutedClient,
    spans: InMemorySpanExporter,
    metric_reader: InMemoryMetricReader,
) -> None:
    standin.target(PROVISIONED).fail_next("ThrottlingException")
    reply = traced.converse(messages=MESSAGES, budget_ms=ROOMY_MS)
    assert reply.routing.target == "haiku"
    route, (first, second) = finished(spans)

    assert first.name == f"chat {PROVISIONED}" and second.name == f"chat {HAIKU}"
    assert attrs(first)["error.type"] == "ThrottlingException"
    assert attrs(first)["mangaroute.outcome"] == "throttled"
    assert first.status.status_code is StatusCode.ERROR
    assert first.status.description == "ThrottlingException"
    assert "gen_ai.usage.input_tokens" not in attrs(first)
    assert (attrs(second)["mangaroute.attempt"], attrs(second)["mangaroute.attempt.kind"]) == (
        2,
        "failover",
    )
    assert "error.type" not in attrs(second) and attrs(second)["mangaroute.outcome"] == "ok"
    assert attrs(route)["mangaroute.attempts"] == 2 and attrs(route)["mangaroute.failovers"] == 1
    assert attrs(route)["mangaroute.answered_by"] == "haiku"
    assert "error.type" not in attrs(route)

    (failover,) = metric_points(metric_reader, "mangaroute.failovers")
    assert failover.value == 1
    assert dict(failover.attributes) == {
        "mangaroute.target": "haiku",
        "mangaroute.from_target": "primary",
        "error.type": "ThrottlingException",
        "mangaroute.attempt.kind": "failover",
        "mangaroute.request_class": "chat",
    }


def test_a_stream_records_its_first_chunk_and_ends_with_the_stream(
    standin: StandIn, traced: RoutedClient, spans: InMemorySpanExporter
) -> None:
    standin.target(PROVISIONED).set_script(
        TargetScript(latency=Latency(200, per_token_ms=10), output_tokens=6)
    )
    with traced.converse_stream(messages=MESSAGES, budget_ms=ROOMY_MS) as stream:
        assert spans.get_finished_spans() == ()  # open until the stream ends
        events = list(stream)
    assert events and stream.ttft_ms is not None and stream.usage is not None
    route, (attempt,) = finished(spans)
    attempted = attrs(attempt)
    assert attempted["gen_ai.request.stream"] is True
    assert attempted["gen_ai.response.time_to_first_chunk"] == pytest.approx(stream.ttft_ms / 1000)
    assert attempted["gen_ai.usage.output_tokens"] == stream.usage["outputTokens"] == 6
    assert attempted["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert attempted["mangaroute.outcome"] == "ok"
    assert attrs(route)["mangaroute.answered_by"] == "primary"
    assert route.end_time is not None and attempt.end_time is not None
    assert route.end_time >= attempt.end_time


def test_a_stream_failing_after_its_first_token_ends_both_spans_with_the_error(
    standin: StandIn, traced: RoutedClient, spans: InMemorySpanExporter
) -> None:
    failure = StreamFailure(2, error="modelStreamErrorException")
    standin.target(PROVISIONED).set_script(TargetScript(output_tokens=8, stream_failure=failure))
    stream = traced.converse_stream(messages=MESSAGES)
    with pytest.raises(ClientError):
        list(stream)
    route, (attempt,) = finished(spans)
    assert attrs(attempt)["error.type"] == "ModelStreamErrorException"
    assert "gen_ai.response.time_to_first_chunk" in attrs(attempt)
    assert attrs(route)["error.type"] == "ModelStreamErrorException"
    assert route.status.status_code is StatusCode.ERROR
    gc.collect()


def test_a_stream_left_early_ends_its_attempt_cancelled(
    standin: StandIn, traced: RoutedClient, spans: InMemorySpanExporter
) -> None:
    standin.target(PROVISIONED).set_script(TargetScript(output_tokens=40))
    with traced.converse_stream(messages=MESSAGES) as stream:
        next(stream)
    route, (attempt,) = finished(spans)
    assert attrs(attempt)["mangaroute.outcome"] == "cancelled"
    assert attrs(route)["mangaroute.answered_by"] == "primary"
    assert "error.type" not in attrs(route)
    gc.collect()


def test_async_calls_are_traced_the_same_way(
    standin: StandIn, traced: RoutedClient, spans: InMemorySpanExporter
) -> None:
    standin.target(PROVISIONED).fail_next("ServiceUnavailableException", calls=2)

    async def main() -> None:
        await traced.aconverse(messages=MESSAGES, budget_ms=ROOMY_MS)
        stream = await traced.aconverse_stream(messages=MESSAGES, budget_ms=ROOMY_MS)
        async with stream:
            assert [event async for event in stream]

    asyncio.run(main())
    done = spans.get_finished_spans()
    routes = [s for s in done if s.name == "route"]
    assert len(routes) == 2 and len(done) == 6
    for route in routes:
        children = [s for s in done if s.parent is not None and s.parent.span_id == span_id(route)]
        assert [attrs(s)["mangaroute.target"] for s in children] == ["primary", "haiku"]
        assert attrs(children[0])["error.type"] == "ServiceUnavailableException"
        assert attrs(route)["mangaroute.answered_by"] == "haiku"
    streamed = [s for s in done if attrs(s).get("gen_ai.request.stream")]
    assert [attrs(s)["mangaroute.target"] for s in streamed] == ["primary", "haiku"]
    assert "gen_ai.response.time_to_first_chunk" in attrs(streamed[1])


@pytest.mark.parametrize("call", ["converse", "aconverse", "converse_stream"])
def test_the_attempt_span_is_current_while_boto3_runs(
    call: str,
    standin: StandIn,
    router: Router,
    make_client: ClientFactory,
    telemetry: RoutingTelemetry,
    spans: InMemorySpanExporter,
) -> None:
    bedrock = session().client(
        "bedrock-runtime",
        region_name=REGION,
        endpoint_url=standin.endpoint_url,
        config=Config(retries={"total_max_attempts": 1}),
    )
    seen: list[int] = []

    def hook(**_: Any) -> None:
        seen.append(trace.get_current_span().get_span_context().span_id)

    bedrock.meta.events.register("before-send.bedrock-runtime.*", hook)
    client = make_client(router, clients={"bedrock-runtime": bedrock}, telemetry=telemetry)
    try:
        if call == "converse":
            client.converse(messages=MESSAGES)
        elif call == "aconverse":
            asyncio.run(client.aconverse(messages=MESSAGES))
        else:
            with client.converse_stream(messages=MESSAGES) as stream:
                list(stream)
    finally:
        bedrock.close()
    _, (attempt,) = finished(spans)
    assert seen == [span_id(attempt)]
    assert not trace.get_current_span().get_span_context().is_valid  # detached after


def hedging() -> InvokeSettings:
    policy = HedgePolicy(after_fraction=0.1, max_ratio=1.0, window=1000)
    return InvokeSettings(time_scale=SCALE, hedge=policy)


@pytest.mark.parametrize("streaming", [False, True])
def test_a_losing_hedge_is_marked_cancelled(
    streaming: bool,
    standin: StandIn,
    router: Router,
    make_client: ClientFactory,
    telemetry: RoutingTelemetry,
    spans: InMemorySpanExporter,
) -> None:
    standin.target(PROVISIONED).set_script(TargetScript(latency=Latency(SLOW_MS), output_tokens=8))
    client = make_client(router, settings=hedging(), telemetry=telemetry)
    client.warm(ROOMY_MS)
    client.converse(messages=MESSAGES, request_class="profile")  # earns the hedge budget
    spans.clear()
    if streaming:
        with client.converse_stream(messages=MESSAGES, budget_ms=ROOMY_MS) as stream:
            list(stream)
        routing = stream.routing
    else:
        routing = client.converse(messages=MESSAGES, budget_ms=ROOMY_MS).routing
    assert routing.hedged and routing.target == "haiku"
    client.close()  # waits for the losing call, which ends its span when it lands
    route, (primary, hedge) = finished(spans)
    assert attrs(hedge)["mangaroute.attempt.kind"] == "hedge"
    assert attrs(hedge)["mangaroute.outcome"] == "ok" and "error.type" not in attrs(hedge)
    assert attrs(primary)["mangaroute.outcome"] == "cancelled"
    assert attrs(primary)["error.type"] == "cancelled"
    assert attrs(route)["mangaroute.answered_by"] == "haiku"
    assert attrs(route)["mangaroute.failovers"] == 1  # hedges count as failovers
    if not streaming:  # the abandoned call ran to its end: its real duration and usage
        assert attrs(primary)["gen_ai.usage.output_tokens"] == 8
        assert primary.end_time is not None and route.end_time is not None
        assert primary.end_time > route.end_time
    gc.collect()


def test_an_exceeded_deadline_is_the_route_span_error(
    standin: StandIn, traced: RoutedClient, spans: InMemorySpanExporter
) -> None:
    # the primary outlasts the budget five times over: its read timeout fires and what is
    # left fits no one
    standin.target(PROVISIONED).set_script(TargetScript(latency=Latency(5000)))
    with pytest.raises(DeadlineExceeded):
        traced.converse(messages=MESSAGES, budget_ms=1000)
    route, (attempt,) = finished(spans)
    assert attrs(route)["error.type"] == "DeadlineExceeded"
    assert route.status.status_code is StatusCode.ERROR
    assert route.status.description == "DeadlineExceeded"
    assert attrs(attempt)["mangaroute.outcome"] == "timeout"
    assert attrs(attempt)["error.type"] == "ReadTimeoutError"
    assert "mangaroute.answered_by" not in attrs(route)


def test_a_deadline_already_passed_is_a_route_span_without_attempts(
    traced: RoutedClient, spans: InMemorySpanExporter
) -> None:
    with pytest.raises(DeadlineExceeded):
        traced.converse_stream(messages=MESSAGES, budget_ms=0)
    (route,) = spans.get_finished_spans()
    assert attrs(route)["error.type"] == "DeadlineExceeded"
    assert attrs(route)["mangaroute.attempts"] == 0


def test_a_caller_error_is_raised_and_traced_unchanged(
    standin: StandIn, traced: RoutedClient, spans: InMemorySpanExporter
) -> None:
    standin.target(PROVISIONED).fail_next("ValidationException")
    with pytest.raises(ClientError):
        traced.converse(messages=MESSAGES)
    route, (attempt,) = finished(spans)
    assert attrs(attempt)["error.type"] == attrs(route)["error.type"] == "ValidationException"


@pytest.mark.parametrize("call", ["converse", "aconverse", "converse_stream", "aconverse_stream"])
def test_every_entry_point_ends_its_route_span_with_the_error_that_ends_the_call(
    standin: StandIn, traced: RoutedClient, spans: InMemorySpanExporter, call: str
) -> None:
    standin.target(PROVISIONED).fail_next("ValidationException")
    routed = getattr(traced, call)
    with pytest.raises(ClientError) as raised:
        if call.startswith("a"):
            asyncio.run(routed(messages=MESSAGES, budget_ms=ROOMY_MS))
        else:
            routed(messages=MESSAGES, budget_ms=ROOMY_MS)
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    route, (attempt,) = finished(spans)
    assert attrs(route)["error.type"] == "ValidationException"
    assert route.status.status_code is StatusCode.ERROR
    assert attrs(route)["mangaroute.attempts"] == 1
    assert attrs(attempt)["error.type"] == "ValidationException"
    assert attrs(attempt).get("gen_ai.request.stream", False) is call.endswith("stream")


def test_no_prompt_or_answer_text_reaches_a_span_or_metric(
    standin: StandIn,
    traced: RoutedClient,
    spans: InMemorySpanExporter,
    metric_reader: InMemoryMetricReader,
) -> None:
    answer = f"Frieren volume 14 {ANSWER_MARKER} arrives in spring"
    for model in (PROVISIONED, HAIKU, PROFILE):
        standin.target(model).set_script(TargetScript(text=answer))
    standin.target(ENDPOINT).set_script(TargetScript(text=answer))
    messages = [{"role": "user", "content": [{"text": f"Which volume? {PROMPT_MARKER}"}]}]
    texts: list[str] = []

    standin.target(PROVISIONED).fail_next("ThrottlingException")
    reply = traced.converse(messages=messages, system=[{"text": PROMPT_MARKER}], budget_ms=ROOMY_MS)
    texts.append(str(reply["output"]))
    texts.append(str(traced.converse(messages=messages, request_class="manga")["output"]))
    with traced.converse_stream(messages=messages) as stream:
        texts.append(str(list(stream)))
    failing = TargetScript(text=answer, stream_failure=StreamFailure(2))
    standin.target(PROVISIONED).set_script(failing)
    partial = traced.converse_stream(messages=messages)
    with pytest.raises(ClientError):
        texts.extend(str(event) for event in partial)
    standin.target(PROVISIONED).fail_next("ValidationException")
    with pytest.raises(ClientError):
        traced.converse(messages=messages)

    assert all(ANSWER_MARKER in text for text in texts[:3])  # the markers did pass through
    exported = [span.to_json() for span in spans.get_finished_spans()]
    assert len(exported) == 11
    exported.append(metric_reader.get_metrics_data().to_json())  # type: ignore[union-attr]
    for text in exported:
        assert PROMPT_MARKER not in text
        assert ANSWER_MARKER not in text
    gc.collect()


@pytest.fixture
def instrumented(tracer_provider: TracerProvider, meter_provider: MeterProvider) -> Iterator[None]:
    instrumentor = BotocoreInstrumentor()  # type: ignore[no-untyped-call]
    instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    try:
        yield
    finally:
        instrumentor.uninstrument()


@pytest.mark.parametrize("streaming", [False, True])
def test_with_the_botocore_instrumentation_its_client_span_nests_under_an_internal_attempt(
    streaming: bool,
    instrumented: None,
    traced: RoutedClient,
    spans: InMemorySpanExporter,
) -> None:
    if streaming:
        with traced.converse_stream(messages=MESSAGES) as stream:
            list(stream)
    else:
        traced.converse(messages=MESSAGES)
    done = spans.get_finished_spans()
    assert len(done) == 3
    (route,) = [s for s in done if s.name == "route"]
    (attempt,) = [s for s in done if s.parent is not None and s.parent.span_id == span_id(route)]
    (botocore,) = [s for s in done if s not in (route, attempt)]
    assert attempt.name == f"chat {PROVISIONED}" and "mangaroute.target" in attrs(attempt)
    assert botocore.parent is not None and botocore.parent.span_id == span_id(attempt)
    assert attempt.kind is SpanKind.INTERNAL and botocore.kind is SpanKind.CLIENT
    assert [s.kind for s in done].count(SpanKind.CLIENT) == 1  # one CLIENT span per AWS call
    assert attrs(attempt)["gen_ai.usage.output_tokens"] == 8  # ours keeps its GenAI attributes


def test_tracing_is_off_and_the_clock_is_the_routers_by_default(standin: StandIn) -> None:
    clock = FakeClock(10**12)
    with RoutedClient(make_router(clock), refresh_snapshots=False) as client:
        assert not client.telemetry.enabled
        assert client.deadline(250).at_ns == 10**12 + 250_000_000
