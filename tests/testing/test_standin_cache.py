"""Prompt-cache usage from the stand-in, read through a real boto3 bedrock-runtime client."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from standin_helpers import HAIKU, MESSAGES

from mangaroute.testing import StandIn, TargetScript

CACHED = TargetScript(output_tokens=5, cache_read_tokens=1800, cache_write_tokens=200)


def test_converse_reports_the_scripted_cache_usage(client_for: Any) -> None:
    with StandIn(models={HAIKU: CACHED}) as standin:
        usage = client_for(standin).converse(modelId=HAIKU, messages=MESSAGES)["usage"]
    assert usage == {
        "inputTokens": 9,
        "outputTokens": 5,
        "totalTokens": 9 + 5 + 1800 + 200,
        "cacheReadInputTokens": 1800,
        "cacheWriteInputTokens": 200,
    }


def test_stream_metadata_reports_the_scripted_cache_usage(client_for: Any) -> None:
    with StandIn(models={HAIKU: CACHED}) as standin:
        response = client_for(standin).converse_stream(modelId=HAIKU, messages=MESSAGES)
        with contextlib.closing(response["stream"]) as stream:
            events = list(stream)
    usage = events[-1]["metadata"]["usage"]
    assert (usage["cacheReadInputTokens"], usage["cacheWriteInputTokens"]) == (1800, 200)
    assert usage["totalTokens"] == 9 + 5 + 2000


def test_without_caching_the_cache_members_are_absent(client_for: Any) -> None:
    with StandIn(models={HAIKU: TargetScript(output_tokens=5)}) as standin:
        usage = client_for(standin).converse(modelId=HAIKU, messages=MESSAGES)["usage"]
    assert "cacheReadInputTokens" not in usage
    assert "cacheWriteInputTokens" not in usage


def test_negative_cache_counts_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="cache_read_tokens and cache_write_tokens must be >= 0"):
        TargetScript(cache_read_tokens=-1)
