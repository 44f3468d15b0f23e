"""Rebuild on change: a router rebuilds its snapshot only when something changed or a
time-based instant (bucket rotation with data, breaker cool-down, idle heartbeat) came."""

from __future__ import annotations

import random
import threading

from mangaroute import FakeClock, Router, parse_config
from mangaroute.core.breaker import BreakerState
from mangaroute.core.clock import NS_PER_MS
from mangaroute.core.router import IDLE_REBUILD_NS

from ..conftest import SMALL_CONFIG, START_NS, RouterFactory

REFRESH_NS = 5 * NS_PER_MS  # SMALL_CONFIG's refresh_ms


def quiet(router: Router) -> int:
    """Rebuild now; returns the rebuild count after it."""
    router.snapshot()
    return router.rebuilds


def test_an_idle_router_does_not_rebuild_until_its_heartbeat(
    router: Router, clock: FakeClock
) -> None:
    built = quiet(router)
    snapshot = router.current_snapshot
    assert router.rebuild_due_ns == START_NS + IDLE_REBUILD_NS
    for _ in range(99):  # 990 ms of nothing, looked at every 10 ms
        clock.advance(ms=10)
        assert router.refresh() is None
    assert router.rebuilds == built
    assert router.current_snapshot is snapshot
    clock.advance(ms=10)
    assert router.refresh() is not None
    assert router.rebuilds == built + 1


def test_a_record_makes_the_snapshot_due_refresh_ms_later(router: Router, clock: FakeClock) -> None:
    wakes: list[int] = []
    router.on_change(lambda: wakes.append(clock()))
    built = quiet(router)
    clock.advance(ms=100)
    router.record("fast", latency_ms=300.0)
    router.record("fast", latency_ms=310.0)
    assert wakes == [START_NS + 100 * NS_PER_MS]  # once per quiet spell, not per record
    assert router.rebuild_due_ns == clock() + REFRESH_NS
    clock.advance(ms=4)
    assert router.refresh() is None
    clock.advance(ms=1)
    snapshot = router.refresh()
    assert snapshot is not None
    assert snapshot.target("fast").requests == 2
    assert router.rebuilds == built + 1


def test_choose_and_release_count_as_changes(router: Router, clock: FakeClock) -> None:
    quiet(router)
    decision = router.choose("chat")
    assert router.rebuild_due_ns == clock() + REFRESH_NS
    clock.advance(ms=5)
    snapshot = router.refresh()
    assert snapshot is not None and snapshot.target(decision.target.name).in_flight == 1
    router.release(decision)
    assert router.rebuild_due_ns == clock() + REFRESH_NS
    clock.advance(ms=5)
    snapshot = router.refresh()
    assert snapshot is not None and snapshot.target(decision.target.name).in_flight == 0


def test_a_bucket_with_data_rotating_is_due_and_an_empty_window_is_not(clock: FakeClock) -> None:
    text = SMALL_CONFIG.replace("window_s = 60\nbucket_s = 5", "window_s = 0.5\nbucket_s = 0.1")
    router = Router(parse_config(text, source="test.toml"), clock=clock, rng=random.Random(1))
    quiet(router)
    clock.advance(ms=10)
    router.record("fast", latency_ms=300.0)
    clock.advance(ms=5)
    assert router.refresh() is not None
    bucket_ns = 100 * NS_PER_MS
    assert router.rebuild_due_ns == START_NS + bucket_ns  # the next bucket boundary
    rebuilt_at = []
    while router.current_snapshot.target("fast").requests:
        clock.set(router.rebuild_due_ns)
        assert router.refresh() is not None
        rebuilt_at.append(clock() - START_NS)
    # one rebuild per boundary until the bucket holding the call leaves the 5-bucket window
    assert rebuilt_at == [k * bucket_ns for k in range(1, 6)]
    assert router.rebuild_due_ns == clock() + IDLE_REBUILD_NS


def test_a_breaker_move_is_due_at_once_and_its_cool_down_end_is_due(
    router: Router, clock: FakeClock
) -> None:
    quiet(router)
    router.eject("fast", "outage", cooldown_s=0.25)
    assert router.rebuild_due_ns == 0
    snapshot = router.refresh()
    assert snapshot is not None and snapshot.target("fast").breaker is BreakerState.OPEN
    assert router.rebuild_due_ns == START_NS + 250 * NS_PER_MS
    clock.advance(ms=249)
    assert router.refresh() is None
    clock.advance(ms=1)
    snapshot = router.refresh()
    assert snapshot is not None and snapshot.target("fast").breaker is BreakerState.HALF_OPEN


def test_choose_rebuilds_inline_when_due_without_a_refresher(
    router: Router, clock: FakeClock
) -> None:
    built = quiet(router)
    clock.advance(seconds=3)  # past the heartbeat: the first choose rebuilds
    router.choose("chat")
    assert router.rebuilds == built + 1
    assert router.current_snapshot.built_ns == clock()


def test_no_change_is_lost_while_threads_record_during_rebuilds(
    make_router: RouterFactory, clock: FakeClock
) -> None:
    router = make_router()
    quiet(router)
    calls = 2_000
    start = threading.Barrier(5)

    def caller() -> None:
        start.wait()
        for _ in range(calls):
            decision = router.choose("pinned")
            router.record(decision, latency_ms=200.0)

    def refresher(stop: threading.Event) -> None:
        start.wait()
        for _ in range(4_000):  # 20 virtual seconds at most: the data stays in the window
            if stop.is_set():
                return
            clock.advance(ms=5)
            router.refresh()

    stop = threading.Event()
    threads = [threading.Thread(target=caller) for _ in range(4)]
    rebuilding = threading.Thread(target=refresher, args=(stop,))
    for thread in [*threads, rebuilding]:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    rebuilding.join()
    # whatever the interleaving, the last change left the snapshot due
    assert router.rebuild_due_ns <= clock() + REFRESH_NS
    clock.advance(ms=5)
    snapshot = router.refresh()
    assert snapshot is not None
    views = {view.name: view for view in snapshot.targets}
    assert sum(view.requests for view in views.values()) == 4 * calls
    assert all(view.in_flight == 0 for view in views.values())
