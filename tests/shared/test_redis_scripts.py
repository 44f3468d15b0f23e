"""The Lua scripts run by SHA: loaded once per server, sent again after Redis lost them
(``SCRIPT FLUSH``, a restart), without counting any increment twice."""

from __future__ import annotations

import re

import redis

from mangaroute import FakeClock
from mangaroute.core.breaker import BreakerState
from mangaroute.core.snapshot import SwitchEvent
from mangaroute.shared.redis_store import SCRIPTS, RedisStore, key_prefix
from tests.shared.conftest import RedisProcess
from tests.shared.helpers import START_NS, replica, serve, settings


def _calls(client: redis.Redis, command: str) -> int:
    stats = client.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


def test_every_script_touches_one_key_only() -> None:
    """A script's keys must share a slot on a cluster: each names ``KEYS[1]`` and no other
    key (all of a deployment's keys carry the same hash tag, but a script that built a key
    name itself would escape it)."""
    for script in SCRIPTS:
        assert set(re.findall(r"KEYS\[(\d+)\]", script)) == {"1"}, script
        calls = re.findall(r"redis\.call\('(\w+)', (\w+\[\d+\])", script)
        assert calls and {key for _, key in calls} == {"KEYS[1]"}, script


def test_scripts_are_loaded_once_and_run_by_sha(redis_proc: RedisProcess) -> None:
    clock = FakeClock(START_NS)
    store = RedisStore(settings(redis_proc.url, "scripts", "a"))
    router, state = replica(clock, redis_proc.url, "scripts", "a", store=store)
    client = redis.Redis.from_url(redis_proc.url, decode_responses=True)
    try:
        router.eject("paid", "AccessDeniedException", cooldown_s=30)
        for _ in range(5):
            serve(router, "chat", tokens=100)
            assert state.sync_now()
            clock.advance(seconds=1)
        assert store.script_loads == 1  # the fresh server did not know them: loaded once
        assert _calls(client, "script|load") == len(SCRIPTS)
        assert _calls(client, "eval") == 0  # the text never travels with a call
        # each sync renews the primary and the ejection claim: two scripts by SHA
        assert _calls(client, "evalsha") >= 2 * 5
        assert client.hget(key_prefix("scripts") + "ejections", "paid|a") is not None
    finally:
        state.close()
        client.close()


def test_a_flushed_script_cache_is_reloaded_and_nothing_counts_twice(
    redis_proc: RedisProcess,
) -> None:
    clock = FakeClock(START_NS)
    store_a = RedisStore(settings(redis_proc.url, "flush", "a"))
    a, sa = replica(clock, redis_proc.url, "flush", "a", store=store_a)
    b, sb = replica(clock, redis_proc.url, "flush", "b")
    client = redis.Redis.from_url(redis_proc.url, decode_responses=True)
    events: list[object] = []
    a.subscribe(events.append)
    try:
        assert sa.sync_now() and sb.sync_now()
        assert store_a.script_loads == 1
        client.script_flush()  # what a restart or a failover does to the cache
        # a's next sync holds a claim, a switch proposal and the primary's renewal - all
        # scripts - and 10 calls' usage, which must land once
        for _ in range(10):
            a.record("paid", latency_ms=500, input_tokens=600, output_tokens=400)
        a.eject("paid", "connection_refused", cooldown_s=30)
        a.snapshot()
        assert a.primary == "spill"
        assert sa.sync_now()
        assert store_a.script_loads == 2
        status = sa.status()
        assert status.failures == 0 and status.undecodable == 0
        # the compare-and-set ran after the reload, and the reads came after it: a won
        assert [e.to_target for e in events if isinstance(e, SwitchEvent)] == ["spill"]
        assert a.fleet is not None and a.fleet.primary == "spill"
        assert a.fleet.primary_epoch == 1
        prefix = key_prefix("flush")
        usage = {
            field: int(value)
            for key in client.scan_iter(prefix + "usage:*")
            for field, value in client.hgetall(key).items()
        }
        assert usage == {"paid|tok": 10_000, "paid|req": 10}
        assert client.hget(prefix + "ejections", "paid|a") is not None
        # b sees all of it
        assert sb.sync_now()
        assert b.snapshot().target("paid").breaker is BreakerState.OPEN
        assert b.primary == "spill"
    finally:
        sa.close()
        sb.close()
        client.close()


def test_a_restarted_server_gets_the_scripts_again(redis_proc: RedisProcess) -> None:
    clock = FakeClock(START_NS)
    store = RedisStore(settings(redis_proc.url, "restart", "a"))
    router, state = replica(clock, redis_proc.url, "restart", "a", store=store)
    try:
        assert state.sync_now()
        redis_proc.restart()
        router.eject("paid", "AccessDeniedException", cooldown_s=30)
        clock.advance(seconds=1)
        synced = [state.sync_now() for _ in range(3)]  # the first may meet the old socket
        assert synced[-1]
        assert store.script_loads == 2
        client = redis.Redis.from_url(redis_proc.url, decode_responses=True)
        try:
            entry = client.hget(key_prefix("restart") + "ejections", "paid|a")
            assert entry is not None and entry.startswith("open|")
        finally:
            client.close()
    finally:
        state.close()
