"""The README's framework examples run as written, against the local stand-in."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from mangaroute import load_default_config
from mangaroute.testing import StandIn

README = Path(__file__).resolve().parents[2] / "README.md"
BUILD = "mangaroute.bedrock_runtime(router)"


def _block(needle: str) -> str:
    [block] = [
        b for b in re.findall(r"```python\n(.*?)```", README.read_text(), re.S) if needle in b
    ]
    return block


@pytest.fixture
def standin() -> Iterator[StandIn]:
    config = load_default_config()
    models = {t.model_id: None for t in config.targets if t.pattern.value.startswith("bedrock")}
    endpoints = {t.model_id: None for t in config.targets if t.pattern.value.startswith("sage")}
    with StandIn(models=models, endpoints=endpoints, time_scale=0.01) as s:
        yield s


def _run(block: str, standin: StandIn) -> dict[str, Any]:
    """Run ``block`` with the client pointed at the stand-in (the one substitution)."""
    assert block.count(BUILD) == 1
    code = block.replace(
        BUILD, "mangaroute.bedrock_runtime(router, session=SESSION, endpoint_url=ENDPOINT)"
    )
    session = boto3.session.Session(
        aws_access_key_id="x", aws_secret_access_key="x", region_name="ap-northeast-1"
    )
    namespace: dict[str, Any] = {"SESSION": session, "ENDPOINT": standin.endpoint_url}
    exec(compile(code, str(README), "exec"), namespace)
    return namespace


def _answered(standin: StandIn) -> int:
    return sum(standin.target(t.model_id).stats().calls for t in load_default_config().targets)


def test_the_langchain_example(standin: StandIn) -> None:
    pytest.importorskip("langchain_aws", reason="pip install mangaroute[frameworks]")
    done = _run(_block("ChatBedrockConverse("), standin)
    assert done["reply"].usage_metadata["output_tokens"] == 16
    assert len(done["streamed"].split()) == 16
    assert done["bedrock"].unrouted_calls() == {}
    assert _answered(standin) == 2


def test_the_pydantic_ai_example(standin: StandIn) -> None:
    pytest.importorskip("pydantic_ai", reason="pip install mangaroute[frameworks]")
    loop = asyncio.new_event_loop()  # run_sync leaves its thread's loop open: close it after
    asyncio.set_event_loop(loop)
    try:
        done = _run(_block("BedrockConverseModel("), standin)
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    assert len(done["result"].output.split()) == 16
    assert done["bedrock"].unrouted_calls() == {}
    assert _answered(standin) == 1
