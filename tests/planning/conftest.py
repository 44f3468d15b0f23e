"""Fixtures for the planning tests: one moto server on 127.0.0.1 and real boto3 clients."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer

REGION = "ap-northeast-1"
_names = itertools.count(1)


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """A moto server on a free loopback port for the whole session (stopped and closed)."""
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        server._server.server_close()  # stop() shuts down but leaves the socket open


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials for code that builds its own clients (the CLI)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def clients(moto_url: str) -> Iterator[dict[str, Any]]:
    """``application-autoscaling`` and ``cloudwatch`` clients against moto, one attempt each."""
    made = {
        service: boto3.client(
            service,
            endpoint_url=moto_url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"mode": "standard", "max_attempts": 1}),
        )
        for service in ("application-autoscaling", "cloudwatch")
    }
    yield made
    for client in made.values():
        client.close()


@pytest.fixture
def endpoint_name() -> str:
    """A fresh endpoint name per test, so tests sharing the server do not see each other."""
    return f"manga-test-{next(_names)}"
