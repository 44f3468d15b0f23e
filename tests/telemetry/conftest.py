"""Fixtures for the telemetry tests: in-memory OpenTelemetry SDK providers, a moto CloudWatch
server on 127.0.0.1, and boto3 clients for it. Everything started here is shut down here."""

from __future__ import annotations

import socket
import threading
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

REGION = "ap-northeast-1"


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    started = [
        t for t in threading.enumerate() if t not in before and t.name.startswith("mangaroute")
    ]
    for thread in started:
        # a sink's last flush may still be inside its own (1 s in these tests) timeouts after
        # close() returned - by design; a thread that outlives them is a leak
        thread.join(10.0)
    leaked = [t for t in started if t.is_alive()]
    assert not leaked, f"telemetry threads left running: {leaked}"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    yield exporter
    exporter.shutdown()


@pytest.fixture
def tracer_provider(spans: InMemorySpanExporter) -> Iterator[TracerProvider]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    yield provider
    provider.shutdown()


@pytest.fixture
def metric_reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def meter_provider(metric_reader: InMemoryMetricReader) -> Iterator[MeterProvider]:
    provider = MeterProvider(metric_readers=[metric_reader])
    yield provider
    provider.shutdown()


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def moto(moto_url: str) -> str:
    """The moto server's URL, reset to empty for this test."""
    request = urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()
    return moto_url


ClientFactory = Callable[..., Any]


@pytest.fixture
def client_for() -> Iterator[ClientFactory]:
    """``client_for(url)`` -> a CloudWatch boto3 client for ``url``, closed after the test."""
    made: list[Any] = []

    def make(url: str, service: str = "cloudwatch", **config: Any) -> Any:
        config.setdefault("retries", {"total_max_attempts": 1})
        # botocore gzips large PutMetricData bodies (as CloudWatch allows); moto's server
        # fails to read them, so the tests send them plain.
        config.setdefault("disable_request_compression", True)
        client = boto3.client(
            service,
            endpoint_url=url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(**config),
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


class HangingServer:
    """Accepts connections on 127.0.0.1 and never answers, until stopped."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self._connections: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="hanging-server", daemon=True)
        self._thread.start()

    @property
    def accepted(self) -> int:
        """Connections accepted so far (each one a request that will never be answered)."""
        return len(self._connections)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._connections.append(connection)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for connection in self._connections:
            connection.close()
        self._socket.close()


@pytest.fixture
def hanging() -> Iterator[HangingServer]:
    server = HangingServer()
    yield server
    server.stop()


@pytest.fixture
def refused() -> str:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"
