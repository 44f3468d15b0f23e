"""Converse and ConverseStream through a real boto3 bedrock-runtime client."""

from __future__ import annotations

import contextlib
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
    # 60 s of virtual latency at time_scale 0.001 is 60 ms of real waiting; unscaled, the
    # client's 30 s read timeout would end the call: no upper bound on wall time is needed
    script = TargetScript(latency=Latency(ttft_p50_ms=59_800, per_token_ms=20), output_tokens=11)
    with StandIn(models={HAIKU: script}, time_scale=0.001) as standin:
        client = client_for(standin, read_timeout=30)
        started = time.perf_counter()
        response = client.converse(modelId=HAIKU, messages=MESSAGES)
        events = _events(client.converse_stream(modelId=HAIKU, messages=MESSAGES))
        wall = time.perf_counter() - started
    assert response["metrics"]["latencyMs"] == 60_000  # 59,800 + 10 × 20, in virtual time
    assert events[-1]["metadata"]["metrics"]["latencyMs"] == 60_000
    assert wall >= 0.1  # the scaled waits did happen (2 × 60 ms): a bound load cannot break


def test_streamed_deltas_are_sent_as_they_are_made(client_for: Any) -> None:
    # each further token takes 10 virtual minutes: the first delta reaches the client only if
    # it was written before those waits, not buffered with the rest (read timeout 30 s)
    script = TargetScript(latency=Latency(ttft_p50_ms=0, per_token_ms=600_000), output_tokens=4)
    with StandIn(models={HAIKU: script}) as standin:
        client = client_for(standin, read_timeout=30)
        response = client.converse_stream(modelId=HAIKU, messages=MESSAGES)
        with contextlib.closing(response["stream"]) as stream:
            for event in stream:
                if "contentBlockDelta" in event:
                    first = event["contentBlockDelta"]["delta"]["text"]
                    break
        assert standin.target(HAIKU).stats().calls == 1
    assert first


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
