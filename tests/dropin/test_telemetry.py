"""A drop-in call is traced as a RoutedClient call, and no prompt text leaves in a span or an
error message."""

from __future__ import annotations

import contextlib
import json

import pytest
from botocore.exceptions import ClientError
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mangaroute import Router
from mangaroute.telemetry import RoutingTelemetry
from mangaroute.testing import StandIn
from tests.dropin.conftest import DropinFactory
from tests.dropin.support import HAIKU, PROVISIONED
from tests.invoke.support import MESSAGES, SECRET


def test_a_routed_drop_in_call_is_traced_without_its_text(
    make_dropin: DropinFactory, router: Router, standin: StandIn
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    bedrock = make_dropin(router, telemetry=RoutingTelemetry(provider))
    standin.target(PROVISIONED).fail_next("ThrottlingException")
    reply = bedrock.converse(modelId="mangaroute/chat", messages=MESSAGES)
    answer = reply["output"]["message"]["content"][0]["text"]
    with pytest.raises(ClientError) as caught:  # both throttled: the solo class has no fallback
        standin.target(PROVISIONED).fail_with("ThrottlingException")
        bedrock.converse(modelId="solo", messages=MESSAGES)
    provider.shutdown()
    spans = exporter.get_finished_spans()
    names = [s.name for s in spans]
    assert names.count("route") == 2
    assert len([n for n in names if n.startswith("chat ")]) == 3  # 2 attempts, then 1
    exported = json.dumps([json.loads(s.to_json()) for s in spans])
    message = caught.value.response["Error"]["Message"]
    for text in (exported, message, str(caught.value)):
        assert SECRET not in text
        assert answer not in text
    assert "primary throttled ThrottlingException" in message


def test_passed_through_calls_are_counted_by_model_id(
    make_dropin: DropinFactory, router: Router
) -> None:
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    bedrock = make_dropin(router, meter_provider=meters)
    bedrock.converse(modelId=HAIKU, messages=MESSAGES)
    bedrock.converse(modelId=HAIKU, messages=MESSAGES)
    bedrock.converse(modelId="mangaroute/chat", messages=MESSAGES)  # routed: not counted
    with contextlib.closing(
        bedrock.converse_stream(modelId=PROVISIONED, messages=MESSAGES)["stream"]
    ) as stream:
        list(stream)
    data = reader.get_metrics_data()
    meters.shutdown()
    [metric] = [
        m
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == "mangaroute.dropin.unrouted"
    ]
    counts = {
        (p.attributes["gen_ai.request.model"], p.attributes["gen_ai.operation.name"]): p.value
        for p in metric.data.data_points
    }
    assert counts == {(HAIKU, "chat"): 2, (PROVISIONED, "chat"): 1}
    assert bedrock.unrouted_calls() == {HAIKU: 2, PROVISIONED: 1}
