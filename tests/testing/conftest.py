"""Fixtures for the stand-in tests: real boto3 clients that never retry, and a fake clock."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from standin_helpers import REGION, FakeClock

from mangaroute.testing import StandIn


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not leaked, f"threads left running: {leaked}"


ClientFactory = Callable[..., Any]


@pytest.fixture
def client_for() -> Iterator[ClientFactory]:
    """``client_for(standin, "bedrock-runtime")`` → a boto3 client closed after the test."""
    made: list[Any] = []

    def make(standin: StandIn, service: str = "bedrock-runtime", **config: Any) -> Any:
        client = boto3.client(
            service,
            endpoint_url=standin.endpoint_url,
            region_name=REGION,
            aws_access_key_id="x",
            aws_secret_access_key="x",
            config=Config(retries={"total_max_attempts": 1}, **config),
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()
