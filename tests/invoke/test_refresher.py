"""The background snapshot refresh: runs while calls flow, sleeps when they stop."""

from __future__ import annotations

import time
from typing import Any

from mangaroute import FakeClock
from mangaroute.invoke.refresher import SnapshotRefresher


class CountingRouter:
    def __init__(self) -> None:
        self.rebuilds = 0

    def snapshot(self) -> Any:
        self.rebuilds += 1


def wait_for(condition: Any, seconds: float = 10.0) -> None:
    end = time.monotonic() + seconds
    while not condition() and time.monotonic() < end:
        time.sleep(0.001)


def test_refreshes_while_calls_flow_then_sleeps() -> None:
    clock = FakeClock(10**12)
    router = CountingRouter()
    refresher = SnapshotRefresher(router, clock, interval_s=0.001, linger_s=1.0)  # type: ignore[arg-type]
    try:
        time.sleep(0.02)
        assert router.rebuilds == 0  # no call yet: idle
        refresher.touch()
        wait_for(lambda: router.rebuilds >= 3)
        assert router.rebuilds >= 3
        clock.advance(seconds=2)  # no call for longer than linger_s
        # the thread goes idle when it next looks at the clock: wait for that, not a pause
        wait_for(lambda: not refresher._wake.is_set())
        assert not refresher._wake.is_set()
        settled = router.rebuilds
        time.sleep(0.02)
        assert router.rebuilds == settled
    finally:
        refresher.close()
