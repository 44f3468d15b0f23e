"""Fixtures for the sidecar tests: real gRPC servers on a Unix socket or 127.0.0.1, real
channels, routers on the shipped MangaAssist config (it has a primary switcher) with a fake
clock, so breakers and switches move only when a test moves them."""

from __future__ import annotations

import queue
import random
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest

from mangaroute import FakeClock, Router, load_default_config
from mangaroute.sidecar import Sidecar, SidecarSettings, parse_listen
from mangaroute.sidecar._generated.mangaroute_api.v1 import router_pb2 as pb
from mangaroute.sidecar._generated.mangaroute_api.v1 import router_pb2_grpc as pb_grpc

from ..conftest import START_NS

ROOT = Path(__file__).resolve().parents[2]
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


def _report_fields(target: str, decision_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    fields.setdefault("outcome", pb.OUTCOME_OK)
    fields.setdefault("latency_ms", 500.0)
    return (
        {"decision_id": decision_id} | fields if decision_id else {"target_name": target} | fields
    )


def report(target: str = "", decision_id: str = "", **fields: Any) -> pb.ReportRequest:
    """A valid OK report unless ``fields`` say otherwise."""
    return pb.ReportRequest(**_report_fields(target, decision_id, fields))


def stream_report(target: str = "", decision_id: str = "", **fields: Any) -> pb.ReportStreamRequest:
    """:func:`report` as one message of ``ReportStream`` (the same fields)."""
    return pb.ReportStreamRequest(**_report_fields(target, decision_id, fields))


def counts(stub: pb_grpc.RouterStub) -> dict[str, tuple[int, int, int, int]]:
    """Per target: (ok, throttled, error, timeout) from GetSnapshot."""
    snapshot = stub.GetSnapshot(pb.GetSnapshotRequest(), timeout=10)
    return {
        t.target.name: (t.outcomes.ok, t.outcomes.throttled, t.outcomes.error, t.outcomes.timeout)
        for t in snapshot.targets
    }


class ServeProcess:
    """A sidecar process; its stderr is collected on a thread."""

    def __init__(
        self, command: list[str], *, stdout: bool = False, env: dict[str, str] | None = None
    ) -> None:
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        self.stdout: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._out_reader = threading.Thread(target=self._read_stdout, daemon=True)
        if stdout:
            self._out_reader.start()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.stdout.append(line)

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line)
            self.lines.put(line)

    def address(self, timeout_s: float = 20.0) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            found = re.search(r"listening on (\S+)", line)
            if found:
                return found.group(1)
        raise AssertionError("no start-up line:\n" + "".join(self.log))

    def rss_kb(self) -> int:
        """Resident memory now (``VmRSS`` in ``/proc/<pid>/status``)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS line")

    def finish(self, timeout_s: float = 20.0) -> int:
        code = self.process.wait(timeout_s)
        self._reader.join(5)
        if self._out_reader.is_alive():
            self._out_reader.join(5)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.process.stderr is not None:
            self._reader.join(5)
            self.process.stderr.close()
        if self.process.stdout is not None:
            self._out_reader.join(5)
            self.process.stdout.close()


@pytest.fixture
def spawn() -> Iterator[type[ServeProcess]]:
    """``spawn([...command])``: a :class:`ServeProcess`, killed at the end of the test."""
    started: list[ServeProcess] = []

    class Tracked(ServeProcess):
        def __init__(self, command: list[str], **options: Any) -> None:
            super().__init__(command, **options)
            started.append(self)

    yield Tracked
    for server in started:
        server.kill()
