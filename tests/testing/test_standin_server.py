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


def test_parallel_calls_do_not_serialize(client_for: Any) -> None:
    script = TargetScript(latency=Latency(ttft_p50_ms=100))
    with StandIn(models={HAIKU: script}) as standin:
        client = client_for(standin, max_pool_connections=20)
        client.converse(modelId=HAIKU, messages=MESSAGES)  # warm up botocore's loaders
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=20) as pool:
            calls = [
                pool.submit(client.converse, modelId=HAIKU, messages=MESSAGES) for _ in range(20)
            ]
            results = [call.result() for call in calls]
        batch = time.perf_counter() - started
    assert all(r["stopReason"] == "end_turn" for r in results)
    assert batch < 2.0 / 3  # 20 × 100 ms one after another would be 2 s


def test_a_slow_target_does_not_hold_up_a_fast_one(client_for: Any) -> None:
    models = {"slow": TargetScript(latency=Latency(2000)), "fast": TargetScript()}
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
        time.sleep(0.05)
        started = time.perf_counter()
        client.converse(modelId="fast", messages=MESSAGES)
        assert time.perf_counter() - started < 1.0
        stopping = time.perf_counter()
    assert time.perf_counter() - stopping < 1.0  # stop() cut the 2 s wait short
    slow.join()
    assert len(slow_errors) == 1  # the in-flight call saw its connection closed


def test_stop_is_prompt_with_idle_keep_alive_connections(client_for: Any) -> None:
    standin = StandIn(models={HAIKU: TargetScript()}).start()
    client_for(standin).converse(modelId=HAIKU, messages=MESSAGES)  # leaves a pooled connection
    started = time.perf_counter()
    standin.stop()
    standin.stop()
    assert time.perf_counter() - started < 1.0


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
