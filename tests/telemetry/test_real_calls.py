"""Real boto3 calls through the local Bedrock stand-in: span nesting with OpenTelemetry's
botocore instrumentation, and no prompt or answer text anywhere in what telemetry emits."""

from __future__ import annotations

import io
import logging
import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from opentelemetry.instrumentation.botocore import BotocoreInstrumentor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from mangaroute import FakeClock, Router, parse_config
from mangaroute.core.observer import Observers
from mangaroute.core.outcome import classify_exception
from mangaroute.telemetry import (
    CloudWatchMetrics,
    EmfSink,
    OTelObserver,
    RoutingTelemetry,
    botocore_instrumented,
)
from mangaroute.testing import StandIn, TargetScript
from tests.telemetry.helpers import MANGA_CONFIG

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
SONNET = "anthropic.claude-3-sonnet-20240229-v1:0"
PROMPT_MARKER = "zqxprompt7f3a9"
ANSWER_MARKER = "zqxanswer91c2b"


@pytest.fixture
def standin() -> Iterator[StandIn]:
    answer = f"Frieren volume 14 {ANSWER_MARKER} arrives in spring"
    with StandIn(
        models={HAIKU: TargetScript(text=answer), SONNET: TargetScript(text=answer)},
        time_scale=0.001,
        seed=1,
    ) as server:
        yield server


@pytest.fixture
def bedrock(standin: StandIn) -> Iterator[Any]:
    client = boto3.client(
        "bedrock-runtime",
        endpoint_url=standin.endpoint_url,
        region_name="ap-northeast-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"total_max_attempts": 1}),
    )
    yield client
    client.close()


@pytest.fixture
def instrumented(tracer_provider: TracerProvider, meter_provider: MeterProvider) -> Iterator[None]:
    instrumentor = BotocoreInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    try:
        yield
    finally:
        instrumentor.uninstrument()


def messages(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"text": text}]}]


@pytest.mark.parametrize("kind", ["auto", "client"])
def test_the_botocore_span_nests_under_the_attempt_span(
    kind: str,
    instrumented: None,
    bedrock: Any,
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    spans: InMemorySpanExporter,
) -> None:
    assert botocore_instrumented()
    router = Router(parse_config(MANGA_CONFIG), rng=random.Random(1))
    telemetry = RoutingTelemetry(
        tracer_provider,
        meter_provider,
        attempt_span_kind=kind,  # type: ignore[arg-type]
    )
    decision = router.choose("chat")
    endpoint = bedrock.meta.endpoint_url
    with (
        telemetry.route(decision) as route,
        route.attempt(decision.target, endpoint_url=endpoint) as attempt,
    ):
        bedrock.converse(modelId=decision.target.model_id, messages=messages("hello"))
    finished = spans.get_finished_spans()
    ours = next(s for s in finished if s.context.span_id == attempt.span.get_span_context().span_id)
    theirs = [
        s for s in finished if s.parent is not None and s.parent.span_id == ours.context.span_id
    ]
    assert len(theirs) == 1, [s.name for s in finished]
    assert theirs[0].kind is SpanKind.CLIENT
    # auto: one CLIENT span per AWS call (botocore's); ours steps back to INTERNAL
    assert ours.kind is (SpanKind.INTERNAL if kind == "auto" else SpanKind.CLIENT)
    clients = [s for s in finished if s.kind is SpanKind.CLIENT]
    assert len(clients) == (1 if kind == "auto" else 2)


def test_without_the_instrumentation_the_attempt_span_is_the_client_span(
    bedrock: Any,
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    spans: InMemorySpanExporter,
) -> None:
    assert not botocore_instrumented()
    router = Router(parse_config(MANGA_CONFIG), rng=random.Random(1))
    telemetry = RoutingTelemetry(tracer_provider, meter_provider)
    decision = router.choose("chat")
    with telemetry.route(decision) as route, route.attempt(decision.target):
        bedrock.converse(modelId=decision.target.model_id, messages=messages("hello"))
    kinds = sorted(s.kind.name for s in spans.get_finished_spans())
    assert kinds == ["CLIENT", "INTERNAL"]


def test_no_prompt_or_answer_text_in_any_telemetry(
    bedrock: Any,
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    metric_reader: InMemoryMetricReader,
    spans: InMemorySpanExporter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="mangaroute")
    config = parse_config(MANGA_CONFIG)
    emf = io.StringIO()
    otel = OTelObserver(meter_provider, targets=config.targets, start=False)
    cloudwatch = CloudWatchMetrics(EmfSink(emf), targets=config.targets, start=False)
    router = Router(config, observer=Observers(otel, cloudwatch), clock=FakeClock(10**12))
    telemetry = RoutingTelemetry(tracer_provider, meter_provider)
    prompt = f"Recommend a manga like Frieren {PROMPT_MARKER}"
    answers: list[str] = []

    # a plain call
    decision = router.choose("chat")
    with (
        telemetry.route(decision, snapshot=router.snapshot()) as route,
        route.attempt(decision.target, endpoint_url=bedrock.meta.endpoint_url) as attempt,
    ):
        reply = bedrock.converse(modelId=decision.target.model_id, messages=messages(prompt))
        usage = reply["usage"]
        attempt.usage(usage["inputTokens"], usage["outputTokens"])
        attempt.response(finish_reasons=[reply["stopReason"]])
    answers.append(reply["output"]["message"]["content"][0]["text"])
    router.record(
        decision,
        latency_ms=12.0,
        input_tokens=usage["inputTokens"],
        output_tokens=usage["outputTokens"],
    )

    # a streamed call
    decision = router.choose("chat")
    with telemetry.route(decision) as route:
        attempt = route.attempt(decision.target, stream=True)
        with attempt.current():
            response = bedrock.converse_stream(
                modelId=decision.target.model_id, messages=messages(prompt)
            )
        pieces = []
        for event in response["stream"]:
            if "contentBlockDelta" in event:
                attempt.first_chunk()
                pieces.append(event["contentBlockDelta"]["delta"]["text"])
            if "metadata" in event:
                usage = event["metadata"]["usage"]
                attempt.usage(usage["inputTokens"], usage["outputTokens"])
        attempt.end()
    answers.append("".join(pieces))
    router.record(decision, latency_ms=30.0, ttft_ms=5.0, input_tokens=9, output_tokens=9)

    # a failure whose provider message quotes the prompt
    decision = router.choose("chat")
    error = ClientError(
        {"Error": {"Code": "ValidationException", "Message": f"bad input: {prompt}"}},
        "Converse",
    )
    with (
        pytest.raises(ClientError),
        telemetry.route(decision) as route,
        route.attempt(decision.target),
    ):
        raise error
    outcome, code = classify_exception(error)
    router.record(decision, outcome, latency_ms=3.0, error_code=code)

    otel.close()
    cloudwatch.close()
    assert all(ANSWER_MARKER in answer for answer in answers)  # the markers did pass through
    exported = [
        *(span.to_json() for span in spans.get_finished_spans()),
        metric_reader.get_metrics_data().to_json(),  # type: ignore[union-attr]
        emf.getvalue(),
        *(r.getMessage() for r in caplog.records if r.name.startswith("mangaroute")),
    ]
    assert len(spans.get_finished_spans()) == 6
    assert "ValidationException" in "".join(exported)  # the failure was recorded, by code
    for text in exported:
        assert PROMPT_MARKER not in text
        assert ANSWER_MARKER not in text
