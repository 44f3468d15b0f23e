"""The snapshot builder on its own, in virtual time: when a snapshot it built goes out of date
with nothing recorded, and what the view of an open breaker says about its cool-down."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

import mangaroute
from mangaroute import Decision, FakeClock, Router, parse_config
from mangaroute.core.breaker import BreakerState
from mangaroute.core.builder import IDLE_REBUILD_NS, SWEEP_EVERY_NS, SnapshotBuilder
from mangaroute.core.clock import NS_PER_MS, NS_PER_S
from mangaroute.core.inflight import InFlight
from mangaroute.core.outcome import OK
from mangaroute.core.router import set_default_config
from mangaroute.core.settings import RouterConfig

from ..conftest import SMALL_CONFIG, START_NS

BUCKET_NS = 5 * NS_PER_S  # SMALL_CONFIG's bucket_s
WALL_OFFSET = 1_700_000_000.0
SHORT_TTL = SMALL_CONFIG.replace("refresh_ms = 5", "refresh_ms = 5\ndecision_ttl_s = 0.5")


def builder(text: str = SMALL_CONFIG) -> tuple[SnapshotBuilder, InFlight, RouterConfig]:
    config = parse_config(text, source="test.toml")
    window = config.window
    in_flight = InFlight(
        [t.name for t in config.targets],
        ttl_ns=round(window.decision_ttl_s * NS_PER_S),
        limit=window.max_outstanding,
    )
    made = SnapshotBuilder(config, START_NS, in_flight, deque(), FakeClock(START_NS), WALL_OFFSET)
    return made, in_flight, config


def record(made: SnapshotBuilder, name: str, now: int) -> None:
    made.states[name].window.add(now, OK, 300.0, None, 100, 50)


def test_an_idle_builder_is_due_a_heartbeat_later() -> None:
    made, _, _ = builder()
    now = START_NS + 2_500 * NS_PER_MS
    made.build(now)
    assert made.next_due(now) == now + IDLE_REBUILD_NS


def test_a_window_with_data_is_due_at_the_next_bucket_boundary() -> None:
    made, _, _ = builder()
    now = START_NS + 2_500 * NS_PER_MS  # START_NS is on a boundary; buckets are 5 s
    record(made, "fast", now)
    made.build(now)
    assert IDLE_REBUILD_NS < BUCKET_NS  # so the heartbeat comes first, 1 s from now
    assert made.next_due(now) == now + IDLE_REBUILD_NS
    later = START_NS + 4_800 * NS_PER_MS  # 0.2 s before the boundary
    assert made.next_due(later) == START_NS + BUCKET_NS


def test_an_open_breaker_is_due_when_its_cool_down_ends() -> None:
    made, _, _ = builder()
    breaker = made.states["slow"].breaker
    assert breaker.force_open(START_NS, "test", 0.25, exact=True)
    snapshot, events = made.build(START_NS)
    assert made.next_due(START_NS) == START_NS + 250 * NS_PER_MS
    view = snapshot.target("slow")
    assert view.breaker is BreakerState.OPEN
    assert view.breaker_until == pytest.approx(WALL_OFFSET + START_NS / NS_PER_S + 0.25)
    assert snapshot.target("fast").breaker_until is None
    assert events == []  # the breaker moved before the build, not during it


def test_an_unsettled_decision_is_due_at_its_ttl_but_not_before_the_next_sweep() -> None:
    made, in_flight, config = builder(SHORT_TTL)
    target = config.target("fast")
    made.build(START_NS)  # the last sweep: START_NS
    early = START_NS + 100 * NS_PER_MS
    in_flight.open(Decision(1, target, (), "best", "chat", "ordered", early))
    # its ttl ends at +0.6 s, but sweeps run once a second: the one at +1.0 s drops it
    assert made.next_due(early) == START_NS + SWEEP_EVERY_NS
    late = START_NS + 800 * NS_PER_MS
    in_flight.open(Decision(2, target, (), "best", "chat", "ordered", late))
    assert made.next_due(late) == START_NS + SWEEP_EVERY_NS  # the oldest one decides
    assert in_flight.settle(1) is not None
    assert made.next_due(late) == late + 500 * NS_PER_MS  # its own ttl, after the sweep


@given(
    offset_ms=st.integers(min_value=0, max_value=600_000),
    with_data=st.sets(st.sampled_from(["fast", "slow", "steady"])),
    cooldown_ms=st.one_of(st.none(), st.integers(min_value=1, max_value=20_000)),
)
def test_next_due_is_after_now_and_never_later_than_any_reason(
    offset_ms: int, with_data: set[str], cooldown_ms: int | None
) -> None:
    made, _, _ = builder()
    now = START_NS + offset_ms * NS_PER_MS
    for name in with_data:
        record(made, name, now)
    if cooldown_ms is not None:
        made.states["steady"].breaker.force_open(now, "test", cooldown_ms / 1000, exact=True)
    made.build(now)
    due = made.next_due(now)
    assert now < due <= now + IDLE_REBUILD_NS
    if with_data:
        assert due <= (now // BUCKET_NS + 1) * BUCKET_NS
    if cooldown_ms is not None:
        assert due <= now + cooldown_ms * NS_PER_MS


def test_router_default_builds_from_the_registered_loader() -> None:
    custom = parse_config(SMALL_CONFIG, source="custom.toml")
    try:
        set_default_config(lambda: custom)
        assert Router.default().config is custom
    finally:
        set_default_config(mangaroute.load_default_config)
    assert Router.default().config.source != "custom.toml"  # the shipped config again


def test_an_open_breakers_until_is_read_with_its_state_while_operators_act(
    make_router: Callable[..., Router],
) -> None:
    """Ejects (the router's own, which take no rebuild lock) and restores on one thread,
    snapshots on another: every view that says open carries its cool-down end, and no other
    view does (both are read under the target's lock)."""
    router = make_router()
    stop = threading.Event()

    def operate() -> None:
        while not stop.is_set():
            router.eject("fast", "drill", 30.0)
            router.restore("fast", "drill over", by="ops")

    worker = threading.Thread(target=operate)
    worker.start()
    seen = {BreakerState.OPEN: 0, BreakerState.CLOSED: 0}
    try:
        for _ in range(2_000):
            view = router.snapshot().target("fast")
            seen[view.breaker] += 1
            assert (view.breaker_until is not None) == (view.breaker is BreakerState.OPEN), view
    finally:
        stop.set()
        worker.join()
    assert sum(seen.values()) == 2_000
