"""RoutedClient's background snapshot refresh: rebuilds when the router changes, sleeps when
nothing does (the runtime's refresher, shared with the sidecar)."""

from __future__ import annotations

import time
from typing import Any

from mangaroute import FakeClock, Router, load_default_config
from mangaroute.invoke import RoutedClient
from mangaroute.runtime import SnapshotRefresher


def wait_for(condition: Any, seconds: float = 10.0) -> None:
    end = time.monotonic() + seconds
    while not condition() and time.monotonic() < end:
        time.sleep(0.001)


def test_the_client_refreshes_after_a_record_and_then_sleeps() -> None:
    clock = FakeClock(10**12)
    router = Router(load_default_config(), clock=clock)
    client = RoutedClient(router, clients={})
    try:
        assert isinstance(client._refresher, SnapshotRefresher)  # the sidecar's class too
        built = router.rebuilds
        time.sleep(0.05)
        assert router.rebuilds == built  # nothing changed, the clock stands still: idle
        router.record("ondemand-haiku", latency_ms=420.0)
        clock.advance(ms=router.config.window.refresh_ms)  # the record is now due
        wait_for(lambda: router.rebuilds > built)
        assert router.rebuilds == built + 1
        assert router.current_snapshot.target("ondemand-haiku").requests == 1
        time.sleep(0.05)
        assert router.rebuilds == built + 1  # and idle again
    finally:
        client.close()
    assert client._refresher is None
