"""Redis killed, restarted, frozen; a replica that stops reporting: nothing in the request
path errors, each replica falls back to its local view and merges again."""

from __future__ import annotations

import logging
import signal
import threading

import pytest
import redis
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from mangaroute import FakeClock
from mangaroute.core.breaker import BreakerState
from mangaroute.core.snapshot import RouterEvent, SwitchEvent
from mangaroute.shared import SharedState
from mangaroute.shared.link import FleetLink
from mangaroute.shared.redis_store import key_prefix
from mangaroute.shared.store import Inbound, Outbound, Store
from tests.shared.conftest import RedisProcess
from tests.shared.helpers import START_NS, metric, replica, serve


def test_redis_killed_and_restarted_mid_run(
    redis_proc: RedisProcess, deployment: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(START_NS)
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    a, sa = replica(clock, redis_proc.url, deployment, "a")
    b, sb = replica(clock, redis_proc.url, deployment, "b")
    sb.close()
    b_state = SharedState(b, sb.settings, start=False, meter_provider=provider)
    for _ in range(10):
        serve(a, "chat", tokens=1000)
    assert sa.sync_now() and b_state.sync_now()
    assert b.fleet is not None and b.fleet.tokens_per_minute["paid"] > 0
    assert metric(reader, "mangaroute.shared.connected") == 1

    spend_before = a.local_sample().spend_usd
    redis_proc.kill()
    caplog.set_level(logging.WARNING, logger="mangaroute.shared")
    for step in range(8):  # 2 s of failed syncs, 250 ms apart
        clock.advance(ms=250)
        for _ in range(5):
            serve(a, "chat", tokens=1000)  # the request path keeps working
        a.record("spill", latency_ms=800, input_tokens=1000, output_tokens=1000)
        assert not sa.sync_now()
        assert not b_state.sync_now()
        if step < 3:  # within the 1 s staleness bound the last view stands
            assert b.fleet is not None
    assert a.fleet is None and b.fleet is None  # local view only
    assert b.choose("chat").target.name == "paid"
    fallbacks = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(fallbacks) == 2  # once per replica, not once per failed sync
    assert deployment in fallbacks[0].getMessage()
    assert metric(reader, "mangaroute.shared.connected") == 0
    assert metric(reader, "mangaroute.shared.sync.failures") == 8
    assert metric(reader, "mangaroute.shared.staleness") == pytest.approx(2.0)

    spend_during = a.local_sample().spend_usd - spend_before
    assert spend_during > 8 * (1000 * 3.0 + 1000 * 15.0) / 1e6  # spill records + spilled chat
    redis_proc.start()  # an empty server, as after a node replacement
    caplog.clear()
    assert sa.sync_now() and b_state.sync_now()
    assert a.fleet is not None and b.fleet is not None
    assert any("is back" in r.getMessage() for r in caplog.records)
    # what a served during the outage was kept and published: 40 chat calls + 8 on spill
    client = redis.Redis.from_url(redis_proc.url, decode_responses=True)
    try:
        total = 0
        for key in client.scan_iter(match=key_prefix(deployment) + "usage:*"):
            total += sum(int(v) for f, v in client.hgetall(key).items() if f.endswith("|req"))
        assert total == 48  # the first 10 calls went to the server that died
        spend_keys = list(client.scan_iter(match=key_prefix(deployment) + "spend:*"))
        spent = sum(float(v) for key in spend_keys for v in client.hgetall(key).values())
        assert spent == pytest.approx(spend_during)
    finally:
        client.close()
    assert b.fleet.tokens_per_minute["paid"] > 0
    b_state.close()
    sa.close()


def test_a_switch_made_during_an_outage_reaches_the_fleet_once(
    redis_proc: RedisProcess, deployment: str
) -> None:
    clock = FakeClock(START_NS)
    a, sa = replica(clock, redis_proc.url, deployment, "a")
    b, sb = replica(clock, redis_proc.url, deployment, "b")
    events: list[RouterEvent] = []
    a.subscribe(events.append)
    b.subscribe(events.append)
    assert sa.sync_now() and sb.sync_now()
    redis_proc.kill()
    clock.advance(seconds=2)
    assert not sa.sync_now()
    assert a.fleet is None
    a.eject("paid", "connection_refused")
    a.snapshot()  # alone, a announces its switch at once
    assert a.primary == "spill" and b.primary == "paid"
    assert len([e for e in events if isinstance(e, SwitchEvent)]) == 1
    redis_proc.start()
    for _ in range(2):
        assert sa.sync_now() and sb.sync_now()
    assert b.primary == "spill"
    assert len([e for e in events if isinstance(e, SwitchEvent)]) == 1


class _Frozen:
    """Wraps a store and records whether an exchange is in flight."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.inside = threading.Event()

    def exchange(self, out: Outbound) -> Inbound:
        self.inside.set()
        try:
            return self.inner.exchange(out)
        finally:
            self.inside.clear()

    def close(self) -> None:
        self.inner.close()


def test_choose_never_waits_on_a_frozen_redis(redis_proc: RedisProcess, deployment: str) -> None:
    from mangaroute.shared.redis_store import RedisStore  # noqa: PLC0415

    clock = FakeClock(START_NS)
    a, sa = replica(
        clock, redis_proc.url, deployment, "a", timeout_ms=2000.0, stale_after_ms=5000.0
    )
    frozen = _Frozen(RedisStore(sa.settings))
    link = FleetLink(a, frozen, sa.settings)
    assert link.sync()
    assert redis_proc.process is not None
    redis_proc.process.send_signal(signal.SIGSTOP)  # a server that stops answering
    try:
        syncing = threading.Thread(target=link.sync)
        syncing.start()
        assert frozen.inside.wait(5)
        picks = [serve(a, "chat", tokens=500) for _ in range(2000)]
        assert frozen.inside.is_set()  # every call above completed while the sync hung
        assert set(picks) == {"paid"}
    finally:
        redis_proc.process.send_signal(signal.SIGCONT)
    syncing.join(10)
    sa.close()
    frozen.close()


def test_a_slow_redis_counts_as_down_and_the_replica_keeps_routing(
    redis_proc: RedisProcess, deployment: str
) -> None:
    clock = FakeClock(START_NS)
    a, sa = replica(clock, redis_proc.url, deployment, "a", timeout_ms=100.0)
    assert sa.sync_now()
    assert redis_proc.process is not None
    redis_proc.process.send_signal(signal.SIGSTOP)
    try:
        clock.advance(seconds=2)
        assert not sa.sync_now()
        assert "Timeout" in (sa.status().last_error or "")
        assert a.fleet is None
        assert serve(a, "chat", tokens=100) == "paid"
    finally:
        redis_proc.process.send_signal(signal.SIGCONT)
    assert sa.sync_now()
    assert a.fleet is not None
    sa.close()


def test_a_replica_that_stops_reporting_leaves_nothing_behind(
    redis_url: str, deployment: str
) -> None:
    clock = FakeClock(START_NS)
    live, live_state = replica(clock, redis_url, deployment, "live")
    dead, dead_state = replica(clock, redis_url, deployment, "dead")
    dead.eject("paid", "AccessDeniedException", cooldown_s=3)
    assert dead_state.sync_now() and live_state.sync_now()
    assert live.fleet is not None and live.fleet.replicas == 2
    assert live.snapshot().target("paid").breaker is BreakerState.OPEN
    # "dead" stops syncing (crashed): its claim ran to cool-down + staleness bound (3 + 1 s)
    for _ in range(3):
        clock.advance(seconds=1)
        live_state.sync_now()
    assert live.fleet is not None and live.fleet.replicas == 1
    assert live.snapshot().target("paid").breaker is BreakerState.OPEN
    clock.advance(seconds=1.5)
    live_state.sync_now()
    assert live.snapshot().target("paid").breaker is BreakerState.CLOSED
    assert live.choose("chat").target.name == "paid"
    live_state.sync_now()  # the expired claim is deleted, not just ignored
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        assert client.hgetall(key_prefix(deployment) + "ejections") == {}
    finally:
        client.close()


def test_switches_still_reach_the_fleet_after_redis_loses_its_data(
    redis_proc: RedisProcess, deployment: str
) -> None:
    clock = FakeClock(START_NS)
    a, sa = replica(clock, redis_proc.url, deployment, "a")
    b, sb = replica(clock, redis_proc.url, deployment, "b")
    events: list[RouterEvent] = []
    a.subscribe(events.append)
    b.subscribe(events.append)
    assert sa.sync_now() and sb.sync_now()
    a.eject("paid", "connection_refused")
    a.snapshot()
    for _ in range(2):
        assert sa.sync_now() and sb.sync_now()
    assert b.primary == "spill" and b.fleet is not None and b.fleet.primary_epoch == 1
    redis_proc.restart()  # a replaced node: empty, the primary's epoch back at 0
    for _ in range(2):
        assert sa.sync_now() and sb.sync_now()
    a.eject("spill", "connection_refused")
    a.snapshot()
    assert a.primary == "cheap"
    for _ in range(2):
        assert sa.sync_now() and sb.sync_now()
    assert b.primary == "cheap"
    switches = [(e.from_target, e.to_target) for e in events if isinstance(e, SwitchEvent)]
    assert switches == [("paid", "spill"), ("spill", "cheap")]
