"""Converse and ConverseStream through a real boto3 bedrock-runtime client."""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Iterator
from typing import Any

import pytest
from standin_helpers import HAIKU, MESSAGES, PROFILE, PROVISIONED

from mangaroute.testing import Latency, StandIn, TargetScript


@pytest.fixture
def standin() -> Iterator[StandIn]:
    with StandIn(
        models={
            HAIKU: TargetScript(output_tokens=12, tokens_per_chunk=5),
            PROVISIONED: TargetScript(text="provisioned answer"),
            PROFILE: TargetScript(text="profile answer"),
        },
        seed=7,
    ) as running:
        yield running


def _events(response: dict[str, Any]) -> list[dict[str, Any]]:
    with contextlib.closing(response["stream"]) as stream:
        return list(stream)


def _text(events: list[dict[str, Any]]) -> str:
    return "".join(
        e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e
    )


def test_converse_answers_with_the_modelled_shape(standin: StandIn, client_for: Any) -> None:
    response = client_for(standin).converse(modelId=HAIKU, messages=MESSAGES)
    message = response["output"]["message"]
    assert message["role"] == "assistant"
    assert len(message["content"][0]["text"].split()) == 12
    assert response["stopReason"] == "end_turn"
    usage = response["usage"]
    assert usage["outputTokens"] == 12
    assert usage["inputTokens"] == 9  # 35 characters at ~4 per token
    assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"]
    assert response["metrics"] == {"latencyMs": 0}
    assert response["ResponseMetadata"]["RequestId"]


def test_converse_stream_yields_events_in_order(standin: StandIn, client_for: Any) -> None:
    events = _events(client_for(standin).converse_stream(modelId=HAIKU, messages=MESSAGES))
    kinds = [next(iter(event)) for event in events]
    assert kinds == [
        "messageStart",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockStop",
        "messageStop",
        "metadata",
    ]
    assert events[0]["messageStart"] == {"role": "assistant"}
    assert len(_text(events).split()) == 12
    assert events[-2]["messageStop"] == {"stopReason": "end_turn"}
    metadata = events[-1]["metadata"]
    assert metadata["usage"]["outputTokens"] == 12
    assert metadata["usage"]["totalTokens"] == metadata["usage"]["inputTokens"] + 12
    assert metadata["metrics"] == {"latencyMs": 0}


def test_stream_and_converse_give_the_same_answer_for_one_seed(client_for: Any) -> None:
    answers = []
    for streaming in (False, True):
        with StandIn(models={HAIKU: TargetScript(output_tokens=(5, 30))}, seed=3) as standin:
            client = client_for(standin)
            if streaming:
                answers.append(
                    _text(_events(client.converse_stream(modelId=HAIKU, messages=MESSAGES)))
                )
            else:
                answer = client.converse(modelId=HAIKU, messages=MESSAGES)
                answers.append(answer["output"]["message"]["content"][0]["text"])
    assert answers[0] == answers[1]


@pytest.mark.parametrize(
    ("model_id", "text"), [(PROVISIONED, "provisioned answer"), (PROFILE, "profile answer")]
)
def test_arn_and_profile_ids_route_to_their_targets(
    standin: StandIn, client_for: Any, model_id: str, text: str
) -> None:
    client = client_for(standin)
    response = client.converse(modelId=model_id, messages=MESSAGES)
    assert response["output"]["message"]["content"][0]["text"] == text
    events = _events(client.converse_stream(modelId=model_id, messages=MESSAGES))
    assert _text(events) == text
    stats = standin.target(model_id).stats()
    assert stats.operations == {"Converse": 1, "ConverseStream": 1}
    assert stats.outcomes == {"ok": 2}
    assert standin.target(HAIKU).stats().calls == 0


def test_max_tokens_caps_the_answer(standin: StandIn, client_for: Any) -> None:
    client = client_for(standin)
    config = {"maxTokens": 4}
    response = client.converse(modelId=HAIKU, messages=MESSAGES, inferenceConfig=config)
    assert response["stopReason"] == "max_tokens"
    assert response["usage"]["outputTokens"] == 4
    events = _events(
        client.converse_stream(modelId=HAIKU, messages=MESSAGES, inferenceConfig=config)
    )
    assert events[-2]["messageStop"]["stopReason"] == "max_tokens"
    assert events[-1]["metadata"]["usage"]["outputTokens"] == 4


def test_time_scale_runs_realistic_latency_fast(client_for: Any) -> None:
    script = TargetScript(latency=Latency(ttft_p50_ms=600, per_token_ms=20), output_tokens=11)
    with StandIn(models={HAIKU: script}, time_scale=0.01) as standin:
        client = client_for(standin)
        started = time.perf_counter()
        response = client.converse(modelId=HAIKU, messages=MESSAGES)
        events = _events(client.converse_stream(modelId=HAIKU, messages=MESSAGES))
        wall = time.perf_counter() - started
    assert response["metrics"]["latencyMs"] == 800  # 600 + 10 × 20, in virtual time
    assert events[-1]["metadata"]["metrics"]["latencyMs"] == 800
    assert 0.016 <= wall < 0.8  # 2 × 8 ms scaled, with room for a loaded machine


def test_streamed_deltas_arrive_spread_over_time(client_for: Any) -> None:
    script = TargetScript(latency=Latency(ttft_p50_ms=50, per_token_ms=50), output_tokens=4)
    with StandIn(models={HAIKU: script}) as standin:
        response = client_for(standin).converse_stream(modelId=HAIKU, messages=MESSAGES)
        arrivals = []
        with contextlib.closing(response["stream"]) as stream:
            for event in stream:
                if "contentBlockDelta" in event:
                    arrivals.append(time.perf_counter())
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert len(gaps) == 3
    assert all(gap >= 0.04 for gap in gaps)  # deltas are not buffered into one write


def test_malformed_request_is_a_validation_error(standin: StandIn, client_for: Any) -> None:
    client = client_for(standin)
    with pytest.raises(client.exceptions.ValidationException):
        client.converse(modelId=HAIKU)  # no messages: botocore allows it, Bedrock does not
    assert standin.target(HAIKU).stats().outcomes == {"ValidationException": 1}


def test_unknown_model_is_resource_not_found(standin: StandIn, client_for: Any) -> None:
    client = client_for(standin)
    with pytest.raises(client.exceptions.ResourceNotFoundException) as caught:
        client.converse(modelId="amazon.nova-pro-v1:0", messages=MESSAGES)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert standin.unknown_calls() == {"amazon.nova-pro-v1:0": 1}
