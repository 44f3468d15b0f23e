"""A drop-in call is traced as a RoutedClient call, and no prompt text leaves in a span or an
error message."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mangaroute import Router
from mangaroute.telemetry import RoutingTelemetry
from mangaroute.testing import StandIn
from tests.dropin.conftest import DropinFactory
from tests.dropin.support import PROVISIONED
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
