"""Tool calls from the stand-in, read through a real boto3 bedrock-runtime client."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from standin_helpers import HAIKU, MESSAGES

from mangaroute.testing import StandIn, TargetScript, ToolUse

TOOLS = {
    "tools": [
        {
            "toolSpec": {
                "name": "volume_count",
                "description": "How many volumes a manga series has",
                "inputSchema": {"json": {"type": "object"}},
            }
        }
    ]
}
CALLS_TOOL = TargetScript(output_tokens=4, tool_use=ToolUse("volume_count", {"series": "Frieren"}))


def test_converse_calls_the_scripted_tool_when_the_request_offers_it(client_for: Any) -> None:
    with StandIn(models={HAIKU: CALLS_TOOL}) as standin:
        reply = client_for(standin).converse(modelId=HAIKU, messages=MESSAGES, toolConfig=TOOLS)
    assert reply["stopReason"] == "tool_use"
    [block] = reply["output"]["message"]["content"]
    use = block["toolUse"]
    assert (use["name"], use["input"]) == ("volume_count", {"series": "Frieren"})
    assert use["toolUseId"].startswith("tooluse_")
    assert reply["usage"]["outputTokens"] == 6  # '{"series": "Frieren"}' is 21 characters


def test_after_the_tool_result_the_answer_is_text(client_for: Any) -> None:
    with StandIn(models={HAIKU: CALLS_TOOL}) as standin:
        bedrock = client_for(standin)
        first = bedrock.converse(modelId=HAIKU, messages=MESSAGES, toolConfig=TOOLS)
        use_id = first["output"]["message"]["content"][0]["toolUse"]["toolUseId"]
        result = {"toolResult": {"toolUseId": use_id, "content": [{"json": {"volumes": 14}}]}}
        history = [*MESSAGES, first["output"]["message"], {"role": "user", "content": [result]}]
        second = bedrock.converse(modelId=HAIKU, messages=history, toolConfig=TOOLS)
    assert second["stopReason"] == "end_turn"
    assert list(second["output"]["message"]["content"][0]) == ["text"]
    assert second["usage"]["outputTokens"] == 4


OTHER_TOOL = {"tools": [{"toolSpec": {"name": "other", "inputSchema": {"json": {}}}}]}


@pytest.mark.parametrize("tool_config", [None, OTHER_TOOL])
def test_without_that_tool_offered_the_answer_is_text(client_for: Any, tool_config: Any) -> None:
    extra = {} if tool_config is None else {"toolConfig": tool_config}
    with StandIn(models={HAIKU: CALLS_TOOL}) as standin:
        reply = client_for(standin).converse(modelId=HAIKU, messages=MESSAGES, **extra)
    assert reply["stopReason"] == "end_turn"
    assert "text" in reply["output"]["message"]["content"][0]


def test_converse_stream_streams_the_tool_call_as_bedrock_does(client_for: Any) -> None:
    with StandIn(models={HAIKU: CALLS_TOOL}) as standin:
        response = client_for(standin).converse_stream(
            modelId=HAIKU, messages=MESSAGES, toolConfig=TOOLS
        )
        with contextlib.closing(response["stream"]) as stream:
            events = list(stream)
    assert [next(iter(e)) for e in events] == [
        "messageStart",
        "contentBlockStart",
        "contentBlockDelta",
        "contentBlockStop",
        "messageStop",
        "metadata",
    ]
    start = events[1]["contentBlockStart"]["start"]["toolUse"]
    assert start["name"] == "volume_count"
    assert start["toolUseId"].startswith("tooluse_")
    delta = events[2]["contentBlockDelta"]["delta"]["toolUse"]["input"]
    assert json.loads(delta) == {"series": "Frieren"}
    assert events[4]["messageStop"]["stopReason"] == "tool_use"
    assert events[5]["metadata"]["usage"]["outputTokens"] == 6


def test_a_tool_use_needs_a_name() -> None:
    with pytest.raises(ValueError, match=r"ToolUse\.name must be a non-empty tool name"):
        ToolUse("")
