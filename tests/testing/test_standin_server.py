"""The server's lifecycle, concurrency, isolation and public API."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError
from standin_helpers import HAIKU, MESSAGES

import mangaroute.testing
from mangaroute.testing import Latency, StandIn, TargetScript
from mangaroute.testing.server import parse_route


def test_public_api_is_pinned() -> None:
    assert sorted(mangaroute.testing.__all__) == [
        "BEDROCK_ERRORS",
        "BEDROCK_STREAM_EXCEPTIONS",
        "Burst",
        "CallPlan",
        "CallRecord",
        "ChecksumMismatchError",
        "DISCONNECT",
        "EventStreamError",
        "Latency",
        "Message",
        "Outage",
        "SAGEMAKER_ERRORS",
        "Service",
        "StandIn",
        "StreamFailure",
        "Target",
        "TargetScript",
        "TargetStats",
        "ToolUse",
        "decode_message",
        "decode_messages",
        "encode_message",
        "plan_call",
    ]
    for name in mangaroute.testing.__all__:
        assert getattr(mangaroute.testing, name) is not None


def test_imports_only_the_standard_library() -> None:
    code = (
        "import sys, mangaroute\n"
        "before = set(sys.modules)\n"
        "import mangaroute.testing\n"
        "new = set(sys.modules) - before\n"
        "print(sorted(m for m in new if not m.startswith('mangaroute.testing')\n"
        "             and m.split('.')[0] not in sys.stdlib_module_names))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def wait_for_calls(standin: StandIn, key: str, calls: int) -> int:
    """Wait until ``key`` has been asked ``calls`` times (a call is recorded before its
    scripted wait), for at most 30 s of real time; returns the calls seen."""
    for _ in range(30_000):
        seen = standin.target(key).stats().calls
        if seen >= calls:
            return seen
        time.sleep(0.001)
    return standin.target(key).stats().calls


def test_parallel_calls_do_not_serialize(client_for: Any) -> None:
    # every call waits 10 minutes: all 20 are in the stand-in at once only if none waits for
    # another; stop() then ends them
    script = TargetScript(latency=Latency(ttft_p50_ms=600_000))
    with StandIn(models={HAIKU: script}) as standin:
        client = client_for(standin, max_pool_connections=20)
        with ThreadPoolExecutor(max_workers=20) as pool:
            calls = [
                pool.submit(client.converse, modelId=HAIKU, messages=MESSAGES) for _ in range(20)
            ]
            assert wait_for_calls(standin, HAIKU, 20) == 20
            standin.stop()
            errors = [call.exception() for call in calls]
    assert all(isinstance(error, ConnectionClosedError) for error in errors)


def test_a_slow_target_does_not_hold_up_a_fast_one(client_for: Any) -> None:
    models = {"slow": TargetScript(latency=Latency(600_000)), "fast": TargetScript()}
    slow_errors: list[BaseException] = []

    def call_slow() -> None:
        try:
            client.converse(modelId="slow", messages=MESSAGES)
        except ConnectionClosedError as error:
            slow_errors.append(error)

    with StandIn(models=models) as standin:
        client = client_for(standin)
        slow = threading.Thread(target=call_slow)
        slow.start()
        assert wait_for_calls(standin, "slow", 1) == 1  # the slow call is waiting its 10 min
        reply = client.converse(modelId="fast", messages=MESSAGES)
        assert reply["stopReason"] == "end_turn" and slow.is_alive()
    slow.join(timeout=30)  # stop() cut the 10 minute wait short
    assert not slow.is_alive()
    assert len(slow_errors) == 1  # the in-flight call saw its connection closed


def test_stop_is_prompt_with_idle_keep_alive_connections(client_for: Any) -> None:
    standin = StandIn(models={HAIKU: TargetScript()}).start()
    client_for(standin).converse(modelId=HAIKU, messages=MESSAGES)  # leaves a pooled connection
    stopping = threading.Thread(target=standin.stop)
    stopping.start()
    stopping.join(timeout=30)  # the pooled connection would hold a waiting stop() for ever
    assert not stopping.is_alive()
    standin.stop()


def test_lifecycle_misuse_is_refused() -> None:
    standin = StandIn()
    with pytest.raises(RuntimeError):
        _ = standin.endpoint_url
    with standin:
        assert standin.endpoint_url.startswith("http://127.0.0.1:")
        with pytest.raises(RuntimeError):
            standin.start()
    with pytest.raises(RuntimeError):
        standin.start()
    with pytest.raises(ValueError):
        StandIn(time_scale=0)


def test_targets_can_be_added_while_running(client_for: Any) -> None:
    with StandIn() as standin:
        client = client_for(standin)
        with pytest.raises(ClientError):
            client.converse(modelId=HAIKU, messages=MESSAGES)
        standin.add_model(HAIKU)
        assert client.converse(modelId=HAIKU, messages=MESSAGES)["stopReason"] == "end_turn"
        assert set(standin.models) == {HAIKU}
        assert standin.endpoints == {}
        with pytest.raises(ValueError):
            standin.add_model(HAIKU)
        with pytest.raises(KeyError):
            standin.target("nope")


def test_prompt_and_answer_are_never_logged(
    client_for: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="mangaroute.testing")
    secret = "ultra secret prompt"
    with StandIn(models={HAIKU: TargetScript(text="hidden answer")}) as standin:
        client = client_for(standin)
        client.converse(modelId=HAIKU, messages=[{"role": "user", "content": [{"text": secret}]}])
    logged = " ".join(record.getMessage() for record in caplog.records)
    assert caplog.records  # the access log is there, at DEBUG
    assert secret not in logged
    assert "hidden answer" not in logged


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse", ("Converse", HAIKU)),
        (
            "/model/arn%3Aaws%3Abedrock%3Aap-northeast-1%3A123456789012%3Aprovisioned-model%2Fabc123/converse-stream",
            (
                "ConverseStream",
                "arn:aws:bedrock:ap-northeast-1:123456789012:provisioned-model/abc123",
            ),
        ),
        ("/model/a/b/converse", ("Converse", "a/b")),
        ("/endpoints/sagemaker-manga/invocations?x=1", ("InvokeEndpoint", "sagemaker-manga")),
    ],
)
def test_routes(path: str, expected: tuple[str, str]) -> None:
    route = parse_route(path)
    assert route is not None
    assert (route.operation, route.key) == expected


def test_unknown_paths_do_not_route() -> None:
    assert parse_route("/model/x/invoke") is None
    assert parse_route("/endpoints/a/b/invocations") is None


def test_the_docs_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "testing.md"
    example = re.search(r"```python\n(.*?)```", docs.read_text(encoding="utf-8"), re.DOTALL)
    assert example is not None
    exec(compile(example.group(1), str(docs), "exec"), {})
    assert "latencyMs" in capsys.readouterr().out
