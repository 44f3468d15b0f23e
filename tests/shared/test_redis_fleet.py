"""Several replicas sharing one real redis-server, stepped by a fake clock (deterministic)."""

from __future__ import annotations

import math

import redis

from mangaroute import FakeClock, Router
from mangaroute.core.breaker import BreakerState
from mangaroute.core.snapshot import RouterEvent, SwitchEvent
from mangaroute.shared import SharedState
from mangaroute.shared.redis_store import key_prefix
from tests.shared.helpers import PAID_TPM, START_NS, replica, serve


def test_other_replicas_usage_is_added_and_own_usage_counted_once(
    redis_url: str, deployment: str
) -> None:
    clock = FakeClock(START_NS)
    a, sa = replica(clock, redis_url, deployment, "a")
    b, sb = replica(clock, redis_url, deployment, "b")
    for _ in range(30):
        a.record("paid", latency_ms=500, input_tokens=600, output_tokens=400)  # 30,000 tokens
    clock.advance(seconds=10)
    assert sa.sync_now() and sb.sync_now() and sa.sync_now()

    # b sees a's 30,000 tokens over the 10 s a has been running: 180,000 tokens/min
    assert b.fleet is not None and b.fleet.replicas == 2
    assert b.fleet.tokens_per_minute["paid"] == 180_000
    assert b.fleet.requests_per_second["paid"] == 3.0
    b_view = b.snapshot().target("paid")
    assert b_view.tokens_per_minute == 180_000
    assert b_view.utilization == 180_000 / PAID_TPM
    # a's own traffic is in its local window only, not again through Redis
    assert a.fleet is not None and "paid" not in a.fleet.tokens_per_minute
    assert a.snapshot().target("paid").tokens_per_minute == 180_000


def test_a_target_one_replica_ejects_is_avoided_by_all_until_it_closes(
    redis_url: str, deployment: str
) -> None:
    clock = FakeClock(START_NS)
    replicas = [replica(clock, redis_url, deployment, f"r{i}") for i in range(4)]
    for _, state in replicas:
        state.sync_now()
    holder, holder_state = replicas[0]
    holder.eject("paid", "AccessDeniedException", cooldown_s=5)
    holder_state.sync_now()  # the holder publishes at once (the thread is woken by the event)
    for router, state in replicas[1:]:
        assert router.choose("chat").target.name == "paid"  # not heard yet
        state.sync_now()
        view = router.snapshot().target("paid")
        assert view.breaker is BreakerState.OPEN
        assert view.breaker_reason == "fleet:AccessDeniedException"
        assert {router.choose("chat").target.name for _ in range(50)} == {"spill"}
        # the local breaker itself was not touched: no double-counted ejection
        assert router.local_sample().breakers == ()

    # the cool-down ends: the holder probes (half-open), the others keep away meanwhile
    clock.advance(seconds=6)
    probe = holder.choose("chat")
    assert probe.reason == "probe" and probe.target.name == "paid"
    holder_state.sync_now()
    for router, state in replicas[1:]:
        state.sync_now()
        assert router.snapshot().target("paid").breaker is BreakerState.OPEN
    holder.record(probe, latency_ms=400)
    holder.record(holder.choose("chat"), latency_ms=400)
    assert holder.snapshot().target("paid").breaker is BreakerState.CLOSED
    holder_state.sync_now()  # releases its claim
    for router, state in replicas[1:]:
        state.sync_now()
        assert router.snapshot().target("paid").breaker is BreakerState.CLOSED
        assert router.choose("chat").target.name == "paid"


def test_one_switch_event_per_switch_and_every_replica_on_the_same_primary(
    redis_url: str, deployment: str
) -> None:
    clock = FakeClock(START_NS)
    replicas = [replica(clock, redis_url, deployment, f"r{i}") for i in range(5)]
    events: list[tuple[str, RouterEvent]] = []
    for index, (router, state) in enumerate(replicas):
        router.subscribe(lambda event, i=index: events.append((f"r{i}", event)))
        state.sync_now()
    # every replica sees the primary fail on its own and decides to switch
    for router, _ in replicas:
        router.eject("paid", "connection_refused")
        router.snapshot()
    assert {router.primary for router, _ in replicas} == {"spill"}
    for _, state in replicas:
        state.sync_now()
    for _, state in replicas:
        state.sync_now()
    switches = [(who, e) for who, e in events if isinstance(e, SwitchEvent)]
    assert len(switches) == 1, switches
    assert (switches[0][1].from_target, switches[0][1].to_target) == ("paid", "spill")
    assert switches[0][0] == "r0"  # the first to sync won the compare-and-set
    assert {router.primary for router, _ in replicas} == {"spill"}
    assert all(
        router.fleet is not None and router.fleet.primary_epoch == 1 for router, _ in replicas
    )


def test_a_replica_joining_later_adopts_the_fleet_primary_silently(
    redis_url: str, deployment: str
) -> None:
    clock = FakeClock(START_NS)
    first, first_state = replica(clock, redis_url, deployment, "first")
    first_state.sync_now()
    first.eject("paid", "connection_refused")
    first.snapshot()
    first_state.sync_now()
    late, late_state = replica(clock, redis_url, deployment, "late")
    seen: list[RouterEvent] = []
    late.subscribe(seen.append)
    assert late.primary == "paid"
    late_state.sync_now()
    assert late.primary == "spill"
    assert [e for e in seen if isinstance(e, SwitchEvent)] == []
    (adopted,) = late.switch_history()
    assert (adopted.from_target, adopted.to_target) == ("paid", "spill")
    assert adopted.reason == "fleet(unavailable)"


def test_budget_guard_paces_the_fleets_spend(redis_url: str, deployment: str) -> None:
    clock = FakeClock(START_NS)
    spender, spender_state = replica(clock, redis_url, deployment, "spender")
    quiet, quiet_state = replica(clock, redis_url, deployment, "quiet")
    spender_state.sync_now()
    quiet_state.sync_now()
    assert quiet.choose("budgeted").reason == "best"
    # $12 of on-demand Sonnet by 17:00 JST: ahead of a $10/day budget's flat pace ($7.08)
    spender.record("spill", latency_ms=800, input_tokens=2_000_000, output_tokens=400_000)
    spender.snapshot()
    assert spender.choose("budgeted").reason.endswith("+spend_guard")
    clock.advance(seconds=1)
    spender_state.sync_now()
    quiet_state.sync_now()
    assert quiet.fleet is not None
    assert math.isclose(sum(quiet.fleet.spend_by_quarter.values()), 12.0)
    quiet.snapshot()
    decision = quiet.choose("budgeted")
    assert decision.reason.endswith("+spend_guard")
    assert decision.target.name == "cheap"


def test_keys_are_namespaced_per_deployment_and_all_expire(
    redis_url: str, deployment: str, redis_client: redis.Redis
) -> None:
    clock = FakeClock(START_NS)
    a, sa = replica(clock, redis_url, deployment, "a")
    other, so = replica(clock, redis_url, deployment + "-other", "x")
    serve(a, "chat", tokens=1000)
    a.record("spill", latency_ms=800, input_tokens=1000, output_tokens=100)
    a.eject("paid", "AccessDeniedException")  # an ejection and a primary switch
    a.snapshot()
    sa.sync_now()  # a switched before it ever synced: this sync learns the fleet has no
    sa.sync_now()  # primary on record, the next one publishes a's
    so.sync_now()
    keys = sorted(redis_client.scan_iter(match=f"mangaroute:{{{deployment}}}:*"))
    kinds = {key.removeprefix(key_prefix(deployment)).split(":")[0] for key in keys}
    assert kinds == {"usage", "spend", "ejections", "replicas", "primary"}
    for key in keys:
        ttl = redis_client.pttl(key)
        assert ttl > 0, f"{key} never expires"
    # the other deployment sees nothing of this one
    assert other.fleet is not None
    assert other.fleet.replicas == 1
    assert other.fleet.ejections == () and other.fleet.tokens_per_minute == {}
    assert other.primary == "paid"


def _adopted(redis_url: str, deployment: str) -> tuple[FakeClock, Router, SharedState]:
    """Replica ``b`` has adopted ``spill``, the primary replica ``a`` switched the fleet to."""
    clock = FakeClock(START_NS)
    a, sa = replica(clock, redis_url, deployment, "a")
    b, sb = replica(clock, redis_url, deployment, "b")
    sa.sync_now()
    sb.sync_now()
    a.eject("paid", "connection_refused")
    a.snapshot()
    sa.sync_now()
    sb.sync_now()
    assert b.primary == "spill"
    return clock, b, sb


def test_an_adopted_primary_is_held_against_one_replicas_own_latency(
    redis_url: str, deployment: str
) -> None:
    clock, b, sb = _adopted(redis_url, deployment)
    events: list[RouterEvent] = []
    b.subscribe(events.append)
    clock.advance(seconds=55)
    for _ in range(10):  # b alone sees spill answer in 4 s: over the 2,500 ms threshold
        b.record("spill", latency_ms=4000)
    assert b.snapshot().target("spill").p99_ms > 2500
    assert b.primary == "spill"  # held: 55 s into the 60 s fleet_hold_s
    clock.advance(seconds=6)
    b.snapshot()
    assert b.primary != "spill"  # the hold is over: b's own evidence counts again
    sb.sync_now()
    switches = [e for e in events if isinstance(e, SwitchEvent)]
    assert len(switches) == 1 and "high_latency" in switches[0].reason


def test_a_held_primary_that_becomes_unavailable_is_left_at_once(
    redis_url: str, deployment: str
) -> None:
    _, b, _ = _adopted(redis_url, deployment)
    b.eject("spill", "AccessDeniedException")
    b.snapshot()
    assert b.primary == "cheap"
