"""SageMaker endpoints behind Converse: the TGI mapping, and replacing it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from mangaroute import Pattern, Router
from mangaroute.invoke import (
    MalformedResponse,
    SageMakerInvoker,
    TgiMapping,
    UnsupportedRequest,
)
from mangaroute.testing import StandIn, TargetScript
from tests.invoke.conftest import ClientFactory
from tests.invoke.support import ENDPOINT, HAIKU, MESSAGES

REQUEST: dict[str, Any] = {
    "messages": [
        {"role": "user", "content": [{"text": "Hi"}]},
        {"role": "assistant", "content": [{"text": "Hello!"}]},
        {"role": "user", "content": [{"text": "Next Frieren volume?"}]},
    ],
    "system": [{"text": "You are MangaAssist."}],
    "inferenceConfig": {
        "maxTokens": 64,
        "temperature": 0.2,
        "topP": 0.9,
        "stopSequences": ["\n\n"],
    },
    "additionalModelRequestFields": {"repetition_penalty": 1.1},
}


def test_the_tgi_request_body() -> None:
    body = json.loads(TgiMapping().request_body(REQUEST))
    assert body == {
        "inputs": "You are MangaAssist.\n\nUser: Hi\n\nAssistant: Hello!\n\n"
        "User: Next Frieren volume?\n\nAssistant:",
        "parameters": {
            "max_new_tokens": 64,
            "temperature": 0.2,
            "top_p": 0.9,
            "stop": ["\n\n"],
            "repetition_penalty": 1.1,
        },
    }
    plain = json.loads(TgiMapping(default_max_new_tokens=99).request_body({"messages": MESSAGES}))
    assert plain["parameters"] == {"max_new_tokens": 99}


@pytest.mark.parametrize(
    "request_fields",
    [
        {"toolConfig": {"tools": [{"toolSpec": {"name": "stock"}}]}},
        {"messages": [{"role": "user", "content": [{"image": {"format": "png"}}]}]},
    ],
)
def test_what_tgi_cannot_take_is_unsupported(request_fields: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedRequest):
        TgiMapping().request_body({"messages": MESSAGES, **request_fields})


def test_the_tgi_response() -> None:
    mapping = TgiMapping()
    reply = mapping.response(b'[{"generated_text": "Volume 12."}]', {"messages": MESSAGES})
    assert reply["output"]["message"] == {"role": "assistant", "content": [{"text": "Volume 12."}]}
    assert reply["stopReason"] == "end_turn" and reply["usage"]["outputTokens"] == 3
    detailed = (
        b'{"generated_text": "x", "details": {"generated_tokens": 64, "finish_reason": "length"}}'
    )
    reply = mapping.response(detailed, {"messages": MESSAGES})
    assert reply["usage"]["outputTokens"] == 64 and reply["stopReason"] == "max_tokens"
    for bad in (b"not json", b"[]", b'{"text": 1}', b'[{"generated_text": 5}]'):
        with pytest.raises(MalformedResponse):
            mapping.response(bad, {"messages": MESSAGES})


def test_an_endpoint_answers_in_converse_shape(
    standin: StandIn, router: Router, make_client: ClientFactory
) -> None:
    standin.target(ENDPOINT).set_script(TargetScript(text="Volume 12 ships on Friday."))
    reply = make_client(router).converse(
        messages=MESSAGES, request_class="manga", inferenceConfig={"maxTokens": 3}
    )
    assert reply.routing.target == "manga"
    assert reply["output"]["message"]["content"] == [{"text": "Volume 12 ships"}]
    assert reply["usage"]["outputTokens"] == 4 and "latencyMs" in reply["metrics"]
    assert standin.target(ENDPOINT).stats().operations == {"InvokeEndpoint": 1}


class ShoutingMapping:
    """A custom container: {"prompt": ...} -> {"answer": ...}."""

    content_type = "application/json"
    accept = "application/json"

    def __init__(self) -> None:
        self.calls = 0

    def request_body(self, request: Mapping[str, Any]) -> bytes:
        self.calls += 1
        prompt = request["messages"][-1]["content"][0]["text"].upper()
        return json.dumps({"inputs": prompt, "parameters": {"max_new_tokens": 2}}).encode()

    def response(self, body: bytes, request: Mapping[str, Any]) -> dict[str, Any]:
        text = json.loads(body)[0]["generated_text"]
        return {
            "output": {"message": {"role": "assistant", "content": [{"text": text.upper()}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 1, "outputTokens": 2, "totalTokens": 3},
        }


def test_the_mapping_is_replaceable(
    standin: StandIn, router: Router, make_client: ClientFactory
) -> None:
    standin.target(ENDPOINT).set_script(TargetScript(text="volume twelve soon"))
    mapping = ShoutingMapping()
    client = make_client(router, invokers={Pattern.SAGEMAKER_REALTIME: SageMakerInvoker(mapping)})
    reply = client.converse(messages=MESSAGES, request_class="manga")
    assert reply["output"]["message"]["content"] == [{"text": "VOLUME TWELVE"}]
    assert mapping.calls == 1


def test_an_unsupported_request_skips_the_endpoint(
    standin: StandIn, router: Router, make_client: ClientFactory
) -> None:
    tools = {"tools": [{"toolSpec": {"name": "stock", "inputSchema": {"json": {}}}}]}
    reply = make_client(router).converse(messages=MESSAGES, request_class="manga", toolConfig=tools)
    assert [(a.target, a.outcome) for a in reply.routing.attempts] == [
        ("manga", "skipped"),
        ("haiku", "ok"),
    ]
    assert standin.target(ENDPOINT).stats().calls == 0
    assert standin.target(HAIKU).stats().calls == 1
