"""Fixtures for the sidecar tests: real gRPC servers on a Unix socket or 127.0.0.1, real
channels, routers on the shipped MangaAssist config (it has a primary switcher) with a fake
clock, so breakers and switches move only when a test moves them."""

from __future__ import annotations

import random
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import grpc
import pytest

from mangaroute import FakeClock, Router, load_default_config
from mangaroute.sidecar import Sidecar, SidecarSettings, parse_listen
from mangaroute.sidecar._generated.mangaroute_api.v1 import router_pb2 as pb
from mangaroute.sidecar._generated.mangaroute_api.v1 import router_pb2_grpc as pb_grpc

from ..conftest import START_NS

TRANSPORTS = ("unix", "tcp")
TARGETS = ("provisioned-sonnet", "ondemand-haiku", "ondemand-sonnet", "sagemaker-manga")


@pytest.fixture
def socket_dir() -> Iterator[str]:
    """A short directory for Unix sockets (``sun_path`` holds 107 bytes; tmp_path can be
    longer)."""
    path = tempfile.mkdtemp(prefix="mr-", dir="/tmp")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START_NS)


@pytest.fixture
def router(clock: FakeClock) -> Router:
    return Router(load_default_config(), clock=clock, rng=random.Random(1))


ServeFactory = Callable[..., Any]


@pytest.fixture
def serve(socket_dir: str) -> Iterator[ServeFactory]:
    """``with serve(router, "unix", workers=4) as sidecar:`` - a started sidecar, drained
    and stopped on exit (also if the test fails)."""

    @contextmanager
    def start(router: Router, transport: str = "unix", **settings: Any) -> Iterator[Sidecar]:
        listen = f"unix:{socket_dir}/sidecar.sock" if transport == "unix" else "127.0.0.1:0"
        settings.setdefault("grace_s", 2.0)
        sidecar = Sidecar(router, SidecarSettings(listen=parse_listen(listen), **settings))
        sidecar.start()
        try:
            yield sidecar
        finally:
            sidecar.stop()

    return start


@contextmanager
def connect(
    address: str, credentials: grpc.ChannelCredentials | None = None, **options: Any
) -> Iterator[tuple[grpc.Channel, pb_grpc.RouterStub]]:
    """A channel and a Router stub, closed on exit."""
    opts = list(options.items())
    if credentials is None:
        channel = grpc.insecure_channel(address, options=opts)
    else:
        channel = grpc.secure_channel(address, credentials, options=opts)
    with channel:
        yield channel, pb_grpc.RouterStub(channel)


def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Poll until ``condition()`` holds (server-side effects of a client's cancel)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {condition}")
        time.sleep(0.005)


def report(target: str = "", decision_id: str = "", **fields: Any) -> pb.ReportRequest:
    """A valid OK report unless ``fields`` say otherwise."""
    fields.setdefault("outcome", pb.OUTCOME_OK)
    fields.setdefault("latency_ms", 500.0)
    if decision_id:
        return pb.ReportRequest(decision_id=decision_id, **fields)
    return pb.ReportRequest(target_name=target, **fields)


def counts(stub: pb_grpc.RouterStub) -> dict[str, tuple[int, int, int, int]]:
    """Per target: (ok, throttled, error, timeout) from GetSnapshot."""
    snapshot = stub.GetSnapshot(pb.GetSnapshotRequest(), timeout=10)
    return {
        t.target.name: (t.outcomes.ok, t.outcomes.throttled, t.outcomes.error, t.outcomes.timeout)
        for t in snapshot.targets
    }
