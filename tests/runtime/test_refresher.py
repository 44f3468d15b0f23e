"""The runtime's SnapshotRefresher: rebuilds when the router is due, idles otherwise, never
spins while another thread holds the rebuild."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from mangaroute import FakeClock, Router, load_default_config
from mangaroute.core.snapshot import Snapshot
from mangaroute.runtime import SnapshotRefresher


def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    end = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.001)
    return True


def make_router() -> tuple[Router, FakeClock]:
    clock = FakeClock(10**12)
    return Router(load_default_config(), clock=clock, rng=random.Random(1)), clock


def test_it_rebuilds_what_is_due_and_hands_each_snapshot_on() -> None:
    router, clock = make_router()
    seen: list[Snapshot] = []
    refresher = SnapshotRefresher(router, on_snapshot=seen.append)
    first = refresher.start()
    try:
        assert seen == [first]
        router.record("ondemand-haiku", latency_ms=400.0)
        clock.advance(ms=router.config.window.refresh_ms)
        assert wait_for(lambda: len(seen) == 2)
        assert seen[1].target("ondemand-haiku").requests == 1
        router.eject("ondemand-sonnet", "outage")  # due at once, even with the clock still
        assert wait_for(lambda: len(seen) == 3)
        assert not seen[2].target("ondemand-sonnet").available
        time.sleep(0.05)
        assert len(seen) == 3  # nothing else changed and the clock stands still
    finally:
        assert refresher.stop(10)
    assert not refresher.running
    router.eject("ondemand-haiku", "after stop")
    time.sleep(0.05)
    assert len(seen) == 3


def test_it_does_not_spin_while_another_thread_rebuilds() -> None:
    router, _ = make_router()
    calls: list[int] = []
    refresh = router.refresh

    def counting() -> Snapshot | None:
        calls.append(1)
        return refresh()

    router.refresh = counting  # type: ignore[method-assign]
    refresher = SnapshotRefresher(router)
    refresher.start()
    try:
        with router._rebuild_lock:  # a choose() rebuilding inline, for 0.2 s
            router.eject("ondemand-haiku", "outage")
            time.sleep(0.2)
        # retries at most every BUSY_RETRY_S (1 ms): ~200 at most; a spin is ~100,000s
        assert 1 <= len(calls) < 1_000
        assert wait_for(lambda: not router.current_snapshot.target("ondemand-haiku").available)
    finally:
        assert refresher.stop(10)
