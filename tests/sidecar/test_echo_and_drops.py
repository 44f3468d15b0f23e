"""Large bad values stay INVALID_ARGUMENT with a short message (issue 13: from ~9 KB a full
echo made the status metadata too large and the answer RESOURCE_EXHAUSTED), and a decision
dropped for max_outstanding says so instead of blaming decision_ttl_s."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any

import grpc
import pytest

from mangaroute import Router, load_default_config
from mangaroute.sidecar._generated.mangaroute_api.v1 import router_pb2 as pb

from .conftest import ServeFactory, ServeProcess, connect, report

SERVE = [sys.executable, "-m", "mangaroute", "serve", "--demo"]
INVALID = grpc.StatusCode.INVALID_ARGUMENT


def _status(call: Any, request: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as failure:
        call(request, timeout=20)
    error: Any = failure.value
    return error.code(), error.details()


def test_huge_names_and_ids_stay_invalid_argument_against_a_real_serve(
    spawn: type[ServeProcess], socket_dir: str
) -> None:
    server = spawn([*SERVE, "--listen", f"unix:{socket_dir}/s.sock"])
    with connect(server.address()) as (_, stub):
        instance = stub.Choose(pb.ChooseRequest(), timeout=20).decision_id.split(".")[0]
        for size in (9_000, 16_384, 60_000):  # the message limit is 64 KiB
            _check_quotes(stub, instance, size)


def _check_quotes(stub: Any, instance: str, size: int) -> None:
    long_id = f"{instance}.{'9' * size}"
    calls = [
        (stub.Choose, pb.ChooseRequest(request_class="c" * size), "c" * size),
        (stub.Report, report("t" * size), "t" * size),
        (stub.Report, report(decision_id="d" * size), "d" * size),
        (stub.Report, report(decision_id=long_id), long_id),
        (stub.Release, pb.ReleaseRequest(decision_id="r" * size), "r" * size),
    ]
    for call, request, value in calls:
        code, details = _status(call, request)
        assert code == INVALID, details[:200]
        assert f"{value[:64]!r}... ({len(value)} characters)" in details
        assert len(details) < 300


def test_a_decision_dropped_for_max_outstanding_says_so(serve: ServeFactory) -> None:
    config = load_default_config()
    router = Router(replace(config, window=replace(config.window, max_outstanding=5)))
    with serve(router) as sidecar, connect(sidecar.address) as (_, stub):
        first = stub.Choose(pb.ChooseRequest(), timeout=10).decision_id
        for _ in range(5):
            stub.Choose(pb.ChooseRequest(), timeout=10)
        router.snapshot()  # the sweep drops the oldest beyond the cap
        code, details = _status(stub.Report, report(decision_id=first))
        assert (code, details) == (
            INVALID,
            f"decision_id {first!r} is not in flight: dropped unreported: one of the oldest "
            "while more than max_outstanding=5 decisions were in flight; report the call by "
            "target_name",
        )
