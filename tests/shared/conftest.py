"""A real ``redis-server`` for the shared-state tests (Debian's package; never an imitation).

``redis_url`` is one server for the session: the one ``.ci/run`` started
(``MANGAROUTE_TEST_REDIS_URL``) or one started here. Each test gets its own deployment name, so
tests never see each other's keys. ``redis_proc`` is a server of the test's own, which the
test may kill and restart on the same port. ``redis_cluster`` is a real 3-node Redis Cluster
(``--cluster-enabled yes``, joined by ``redis-cli --cluster create``) for the session.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisProcess:
    """One redis-server on loopback: start, kill (SIGKILL, like a crashed node), restart."""

    def __init__(self, directory: Path, *extra: str) -> None:
        if REDIS_SERVER is None:
            pytest.fail(
                "redis-server not found: the shared-state tests need Debian's redis-server "
                "(apt-get install redis-server; ./scripts/test and .ci/run install it)"
            )
        self.directory = directory
        self.port = _free_port()
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert REDIS_SERVER is not None
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                *self.extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def kill(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
            self.process = None

    def restart(self) -> None:
        self.kill()
        self.start()


class RedisClusterProcesses:
    """Three cluster-enabled redis-servers on loopback holding all 16,384 slots (no
    replicas), each node in its own directory with its own cluster bus port."""

    def __init__(self, directory: Path) -> None:
        self.nodes = []
        for index in range(3):
            node_dir = directory / f"node{index}"
            node_dir.mkdir()
            self.nodes.append(
                RedisProcess(
                    node_dir,
                    "--cluster-enabled",
                    "yes",
                    "--cluster-port",
                    str(_free_port()),
                    "--cluster-node-timeout",
                    "2000",
                )
            )

    @property
    def url(self) -> str:
        """The first node, as a configuration endpoint would be given."""
        return self.nodes[0].url

    def start(self) -> None:
        assert REDIS_CLI is not None
        for node in self.nodes:
            node.start()
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        create = ["--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"]
        subprocess.run(
            [REDIS_CLI, *create],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )
        self.wait_ok()

    def wait_ok(self) -> None:
        """Until every node reports ``cluster_state:ok`` (all slots served)."""
        deadline = time.monotonic() + 30
        for node in self.nodes:
            client = redis.Redis(port=node.port, decode_responses=True)
            try:
                while client.cluster("info").get("cluster_state") != "ok":
                    assert time.monotonic() < deadline, "the cluster never reached state ok"
                    time.sleep(0.05)
            finally:
                client.close()

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterProcesses]:
    if REDIS_CLI is None:
        pytest.skip("redis-cli not found: creating a Redis Cluster needs redis-cli --cluster")
    cluster = RedisClusterProcesses(tmp_path_factory.mktemp("redis-cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("MANGAROUTE_TEST_REDIS_URL")
    if url:
        yield url
        return
    server = RedisProcess(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server.url
    finally:
        server.kill()


@pytest.fixture
def redis_proc(tmp_path: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def deployment() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        yield client
    finally:
        client.close()
