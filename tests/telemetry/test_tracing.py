"""The route and attempt spans: names, kinds, nesting, attributes, failures, the no-op path."""

from __future__ import annotations

import random
import threading

import pytest
from botocore.exceptions import ClientError
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from mangaroute import FakeClock, Router, parse_config
from mangaroute.telemetry import RoutingTelemetry, semconv
from mangaroute.telemetry.tracing import AttemptSpan, RouteSpan
from tests.telemetry.helpers import MANGA_CONFIG, points


@pytest.fixture
def router() -> Router:
    return Router(parse_config(MANGA_CONFIG), clock=FakeClock(10**12), rng=random.Random(3))


@pytest.fixture
def telemetry(tracer_provider: TracerProvider, meter_provider: MeterProvider) -> RoutingTelemetry:
    return RoutingTelemetry(tracer_provider, meter_provider, attempt_span_kind="client")


def by_name(spans: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {span.name: span for span in spans.get_finished_spans()}


def throttled() -> ClientError:
    return ClientError(
        {"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "Converse"
    )


def test_route_span_carries_the_decision_and_the_route_table(
    router: Router, telemetry: RoutingTelemetry, spans: InMemorySpanExporter
) -> None:
    router.eject("slow", "access_denied")
    decision = router.choose("chat", budget_ms=1500)
    with (
        telemetry.route(decision, snapshot=router.snapshot(), budget_ms=1500.0) as route,
        route.attempt(decision.target, budget_ms=1490.0) as attempt,
    ):
        attempt.usage(120, 40)
    span = by_name(spans)["route"]
    attrs = dict(span.attributes or {})
    assert span.kind is SpanKind.INTERNAL
    assert attrs[semconv.TARGET] == "fast"
    assert attrs[semconv.PATTERN] == "bedrock_on_demand"
    assert attrs[semconv.REASON] == decision.reason
    assert attrs[semconv.POLICY] == "ordered"
    assert attrs[semconv.REQUEST_CLASS] == "chat"
    assert attrs[semconv.DECISION_ID] == decision.decision_id
    assert attrs[semconv.BUDGET_MS] == 1500.0
    assert attrs[semconv.CANDIDATES] == ("fast", "manga")
    assert attrs[semconv.EXCLUDED] == ("slow=breaker_open",)
    assert attrs[semconv.FALLBACKS] == tuple(t.name for t in decision.fallbacks)
    assert attrs[semconv.ATTEMPTS] == 1
    assert attrs[semconv.FAILOVERS] == 0
    assert attrs[semconv.ANSWERED_BY] == "fast"
    assert span.status.status_code is StatusCode.UNSET


def test_attempt_span_follows_the_genai_conventions(
    router: Router, telemetry: RoutingTelemetry, spans: InMemorySpanExporter
) -> None:
    decision = router.choose("chat")
    with (
        telemetry.route(decision) as route,
        route.attempt(decision.target, budget_ms=1400.0, stream=True) as attempt,
    ):
        attempt.first_chunk(ttft_ms=250.0)
        attempt.first_chunk(ttft_ms=999.0)  # the first call wins
        attempt.usage(512, 280)
        attempt.response(model="claude-3-haiku", finish_reasons=["end_turn"])
    span = by_name(spans)["chat anthropic.claude-3-haiku-20240307-v1:0"]
    route_span = by_name(spans)["route"]
    assert span.kind is SpanKind.CLIENT
    assert span.parent is not None
    assert span.parent.span_id == route_span.context.span_id
    assert dict(span.attributes or {}) == {
        semconv.GEN_AI_OPERATION_NAME: "chat",
        semconv.GEN_AI_PROVIDER_NAME: "aws.bedrock",
        semconv.GEN_AI_REQUEST_MODEL: "anthropic.claude-3-haiku-20240307-v1:0",
        semconv.GEN_AI_REQUEST_STREAM: True,
        semconv.SERVER_ADDRESS: "bedrock-runtime.ap-northeast-1.amazonaws.com",
        semconv.SERVER_PORT: 443,
        semconv.CLOUD_REGION: "ap-northeast-1",
        semconv.TARGET: "fast",
        semconv.PATTERN: "bedrock_on_demand",
        semconv.ATTEMPT: 1,
        semconv.ATTEMPT_KIND: "primary",
        semconv.DECISION_ID: decision.decision_id,
        semconv.BUDGET_MS: 1400.0,
        semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: 0.25,
        semconv.GEN_AI_USAGE_INPUT_TOKENS: 512,
        semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 280,
        semconv.GEN_AI_RESPONSE_MODEL: "claude-3-haiku",
        semconv.GEN_AI_RESPONSE_FINISH_REASONS: ("end_turn",),
        semconv.OUTCOME: "ok",
    }
    assert not span.events


def test_a_failed_attempt_records_its_code_only_and_counts_the_failover(
    router: Router,
    telemetry: RoutingTelemetry,
    spans: InMemorySpanExporter,
    metric_reader: InMemoryMetricReader,
) -> None:
    decision = router.choose("chat")
    fallback = decision.fallbacks[0]
    with telemetry.route(decision) as route:
        with pytest.raises(ClientError), route.attempt(decision.target):
            raise throttled()
        with route.attempt(fallback, kind="failover") as attempt:
            attempt.usage(10, 5)
    found = by_name(spans)
    failed = found[f"chat {decision.target.model_id}"]
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.status.description == "ThrottlingException"
    assert failed.attributes is not None
    assert failed.attributes[semconv.ERROR_TYPE] == "ThrottlingException"
    assert failed.attributes[semconv.OUTCOME] == "throttled"
    assert not failed.events  # no exception event: provider messages may quote the request
    second = found[f"chat {fallback.model_id}"]
    assert second.attributes is not None
    assert second.attributes[semconv.ATTEMPT] == 2
    assert second.attributes[semconv.ATTEMPT_KIND] == "failover"
    assert semconv.ERROR_TYPE not in second.attributes
    route_attrs = found["route"].attributes or {}
    assert route_attrs[semconv.ATTEMPTS] == 2
    assert route_attrs[semconv.FAILOVERS] == 1
    assert route_attrs[semconv.ANSWERED_BY] == fallback.name
    [point] = points(metric_reader)[semconv.METRIC_FAILOVERS]
    assert point.value == 1
    assert dict(point.attributes) == {
        semconv.TARGET: fallback.name,
        semconv.FROM_TARGET: decision.target.name,
        semconv.ERROR_TYPE: "ThrottlingException",
        semconv.ATTEMPT_KIND: "failover",
        semconv.REQUEST_CLASS: "chat",
    }


def test_a_routed_call_that_fails_marks_the_route_span(
    router: Router, telemetry: RoutingTelemetry, spans: InMemorySpanExporter
) -> None:
    class FailoverExhausted(Exception):
        pass

    decision = router.choose("chat")
    with pytest.raises(FailoverExhausted), telemetry.route(decision) as route:
        with route.attempt(decision.target) as attempt:
            attempt.outcome("timeout", "ModelTimeoutException")
        raise FailoverExhausted("no target answered")
    found = by_name(spans)
    span = found["route"]
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})[semconv.ERROR_TYPE] == "FailoverExhausted"
    assert semconv.ANSWERED_BY not in (span.attributes or {})
    attempt_attrs = found[f"chat {decision.target.model_id}"].attributes or {}
    assert attempt_attrs[semconv.ERROR_TYPE] == "ModelTimeoutException"
    assert attempt_attrs[semconv.OUTCOME] == "timeout"


def test_the_attempt_span_is_current_inside_and_the_route_span_is_restored(
    router: Router, telemetry: RoutingTelemetry
) -> None:
    decision = router.choose("chat")
    outside = trace.get_current_span()
    with telemetry.route(decision) as route:
        assert trace.get_current_span() is route.span
        with route.attempt(decision.target) as attempt:
            assert trace.get_current_span() is attempt.span
        assert trace.get_current_span() is route.span
    assert trace.get_current_span() is outside


def test_a_stream_attempt_stays_open_until_ended(
    router: Router,
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    spans: InMemorySpanExporter,
) -> None:
    clock = FakeClock(0)
    telemetry = RoutingTelemetry(tracer_provider, meter_provider, clock=clock)
    decision = router.choose("chat")
    route = telemetry.route(decision)
    attempt = route.attempt(decision.target, stream=True)
    with attempt.current():
        assert trace.get_current_span() is attempt.span
    assert trace.get_current_span() is not attempt.span
    assert not spans.get_finished_spans()
    clock.advance(ms=420.0)
    attempt.first_chunk()
    attempt.usage(30, 12)
    attempt.end()
    attempt.end()
    route.finish()
    route.finish()
    found = by_name(spans)
    assert len(spans.get_finished_spans()) == 2
    attrs = found[f"chat {decision.target.model_id}"].attributes or {}
    assert attrs[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] == pytest.approx(0.42)


def test_a_hedge_started_on_another_thread_nests_under_the_route(
    router: Router, telemetry: RoutingTelemetry, spans: InMemorySpanExporter
) -> None:
    decision = router.choose("chat")
    with telemetry.route(decision) as route:
        primary = route.attempt(decision.target)

        def hedge() -> None:
            with route.attempt(decision.fallbacks[0], kind="hedge"):
                pass

        worker = threading.Thread(target=hedge)
        worker.start()
        worker.join()
        primary.outcome("cancelled")
        primary.end()
    found = by_name(spans)
    route_id = found["route"].context.span_id
    for name in (f"chat {decision.target.model_id}", f"chat {decision.fallbacks[0].model_id}"):
        parent = found[name].parent
        assert parent is not None and parent.span_id == route_id
    assert (found["route"].attributes or {})[semconv.ANSWERED_BY] == decision.fallbacks[0].name


def test_sagemaker_targets_and_endpoint_overrides(
    router: Router, telemetry: RoutingTelemetry, spans: InMemorySpanExporter
) -> None:
    manga = router.config.target("manga")
    decision = router.choose("chat")
    with telemetry.route(decision) as route:
        with route.attempt(manga, attempt_no=3):
            pass
        with route.attempt(decision.target, endpoint_url="http://127.0.0.1:4566"):
            pass
    found = by_name(spans)
    sagemaker = found["chat mangaassist-manga-ft"].attributes or {}
    assert sagemaker[semconv.GEN_AI_PROVIDER_NAME] == "aws.sagemaker"
    assert sagemaker[semconv.SERVER_ADDRESS] == "runtime.sagemaker.ap-northeast-1.amazonaws.com"
    assert sagemaker[semconv.ATTEMPT] == 3
    local = found[f"chat {decision.target.model_id}"].attributes or {}
    assert (local[semconv.SERVER_ADDRESS], local[semconv.SERVER_PORT]) == ("127.0.0.1", 4566)


def test_internal_attempt_spans_on_request(
    router: Router,
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    spans: InMemorySpanExporter,
) -> None:
    telemetry = RoutingTelemetry(tracer_provider, meter_provider, attempt_span_kind="internal")
    decision = router.choose("chat")
    with telemetry.route(decision) as route, route.attempt(decision.target):
        pass
    assert by_name(spans)[f"chat {decision.target.model_id}"].kind is SpanKind.INTERNAL
    with pytest.raises(ValueError, match="attempt_span_kind"):
        RoutingTelemetry(attempt_span_kind="server")  # type: ignore[arg-type]


def test_disabled_telemetry_is_a_shared_no_op(router: Router, spans: InMemorySpanExporter) -> None:
    telemetry = RoutingTelemetry(enabled=False)
    decision = router.choose("chat")
    with telemetry.route(decision, budget_ms=100.0) as route:
        assert type(route) is RouteSpan
        with route.attempt(decision.target) as attempt:
            assert type(attempt) is AttemptSpan
            attempt.usage(1, 2)
            attempt.first_chunk()
            attempt.response(model="m")
            attempt.outcome("error", "X")
            attempt.fail("Y")
            with attempt.current():
                pass
            assert attempt.span is trace.INVALID_SPAN
        route.finish(target="fast")
    assert telemetry.route(decision) is route
    assert not telemetry.enabled
    assert not spans.get_finished_spans()


def test_without_an_sdk_nothing_is_recorded(router: Router) -> None:
    telemetry = RoutingTelemetry(trace.NoOpTracerProvider())
    decision = router.choose("chat")
    with telemetry.route(decision) as route, route.attempt(decision.target) as attempt:
        attempt.usage(1, 1)
        assert not attempt.span.is_recording()
