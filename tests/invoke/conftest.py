"""Fixtures for the invocation tests: a stand-in, routers and routed clients (closed after)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mangaroute import Router
from mangaroute.invoke import ClientCache, InvokeSettings, RoutedClient
from mangaroute.testing import StandIn
from tests.invoke.support import SCALE, Recorder, fast_scripts, make_router, scaled_clock, session


@pytest.fixture(autouse=True)
def quiet_gc() -> Iterator[None]:
    """Scaled time multiplies real pauses (x50 at SCALE 0.02): keep the objects earlier tests
    left behind out of the collector's way, so a long collection cannot eat a budget."""
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not leaked, f"threads left running: {leaked}"


@pytest.fixture
def standin() -> Iterator[StandIn]:
    models, endpoints = fast_scripts()
    with StandIn(models=models, endpoints=endpoints, time_scale=SCALE, clock=scaled_clock) as s:
        yield s


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def router(recorder: Recorder) -> Router:
    return make_router(observer=recorder)


ClientFactory = Callable[..., RoutedClient]


@pytest.fixture
def make_client(standin: StandIn) -> Iterator[ClientFactory]:
    """``make_client(router, **RoutedClient kwargs)``; closed after the test."""
    made: list[tuple[RoutedClient, ClientCache | None]] = []

    def make(
        router: Router, *, settings: InvokeSettings | None = None, **kwargs: Any
    ) -> RoutedClient:
        cache = None
        if "clients" not in kwargs:
            cache = ClientCache(session(), endpoint_url=standin.endpoint_url, min_timeout_s=0.001)
            kwargs["clients"] = cache
        kwargs.setdefault("clock", scaled_clock)
        settings = settings or InvokeSettings(time_scale=SCALE)
        client = RoutedClient(router, settings=settings, **kwargs)
        made.append((client, cache))
        return client

    yield make
    for client, cache in made:
        client.close()
        if cache is not None:
            cache.close()
