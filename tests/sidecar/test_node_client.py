"""The cross-language contract: the Node.js example (@grpc/grpc-js + @grpc/proto-loader, from
the .proto file itself) calls Choose and Report against a real sidecar."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from mangaroute import Router

from .conftest import TRANSPORTS, ServeFactory

CLIENT = Path(__file__).resolve().parents[2] / "sidecar" / "node-client"
NODE = shutil.which("node")

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not installed"),
    pytest.mark.skipif(
        not (CLIENT / "node_modules" / "@grpc" / "grpc-js").is_dir(),
        reason="the Node client's packages are not installed: npm ci --prefix sidecar/node-client",
    ),
]


def _run_client(address: str, *args: str) -> subprocess.CompletedProcess[str]:
    assert NODE is not None
    return subprocess.run(
        [NODE, str(CLIENT / "client.js"), "--address", address, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_node_client_chooses_and_reports(
    serve: ServeFactory, router: Router, transport: str
) -> None:
    with serve(router, transport) as sidecar:
        result = _run_client(sidecar.address, "--class", "manga", "--check-invalid")
        assert result.returncode == 0, result.stderr
        output = json.loads(result.stdout)
        decision = output["decision"]
        assert decision["target"] == {
            "name": "sagemaker-manga",
            "pattern": "PATTERN_SAGEMAKER_REALTIME",
            "model_id": "mangaassist-manga-ft",
            "region": "ap-northeast-1",
            "tier": "custom",
        }
        assert decision["fallbacks"] == ["provisioned-sonnet", "ondemand-sonnet"]
        assert (decision["request_class"], decision["policy"]) == ("manga", "preference")
        assert decision["decision_id"].startswith(sidecar.servicer.wire.ids.instance + ".")
        assert output["report"] == "ok"
        assert output["invalid"] == {
            "code": "INVALID_ARGUMENT",
            "details": "latency_ms must be a finite number >= 0, got nan",
        }
    view = router.snapshot().target("sagemaker-manga")
    assert (view.ok, view.requests, view.in_flight) == (1, 1, 0)
    assert view.samples == 1


def test_node_client_sees_a_precise_error(serve: ServeFactory, router: Router) -> None:
    with serve(router) as sidecar:
        result = _run_client(sidecar.address, "--class", "poetry")
    assert result.returncode == 1
    assert "INVALID_ARGUMENT request_class: unknown request class 'poetry'" in result.stderr
