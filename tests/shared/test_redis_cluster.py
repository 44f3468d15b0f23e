"""Shared state on a real 3-node Redis Cluster (``cluster = true``): each deployment's keys
stay in its hash tag's slot, on whichever node owns it; the fleet behaves as on one server."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import redis
from redis.cluster import key_slot

from mangaroute import FakeClock, parse_config
from mangaroute.core.breaker import BreakerState
from mangaroute.core.snapshot import SwitchEvent
from mangaroute.shared.cli import read_status
from mangaroute.shared.redis_store import RedisStore, key_prefix
from tests.shared.conftest import RedisClusterProcesses, RedisProcess
from tests.shared.helpers import FLEET_CONFIG, PAID_TPM, START_NS, replica, settings


def _owner(cluster: RedisClusterProcesses, deployment: str) -> int:
    """Index of the node owning the deployment's slot."""
    slot = key_slot(key_prefix(deployment).encode())
    client = redis.Redis(port=cluster.nodes[0].port, decode_responses=True)
    try:
        for start, end, (_host, port, *_), *_ in client.execute_command("CLUSTER SLOTS"):
            if start <= slot <= end:
                return next(i for i, n in enumerate(cluster.nodes) if n.port == int(port))
    finally:
        client.close()
    raise AssertionError(f"no node owns slot {slot}")


def _deployments_on_every_node(cluster: RedisClusterProcesses, prefix: str) -> dict[int, str]:
    found: dict[int, str] = {}
    for i in range(200):
        found.setdefault(_owner(cluster, f"{prefix}-{i}"), f"{prefix}-{i}")
        if len(found) == len(cluster.nodes):
            return found
    raise AssertionError("no deployment name landed on some node")


def _keys(cluster: RedisClusterProcesses, pattern: str) -> dict[int, list[str]]:
    keys = {}
    for index, node in enumerate(cluster.nodes):
        client = redis.Redis(port=node.port, decode_responses=True)
        try:
            keys[index] = sorted(client.scan_iter(pattern))
        finally:
            client.close()
    return keys


def test_a_fleet_shares_state_on_every_node_of_a_cluster(
    redis_cluster: RedisClusterProcesses, deployment: str
) -> None:
    # the configuration endpoint is node 0; deployments whose slot is on nodes 1 and 2 are
    # reached by following the slot map
    for node, name in sorted(_deployments_on_every_node(redis_cluster, deployment).items()):
        clock = FakeClock(START_NS)
        a, sa = replica(clock, redis_cluster.url, name, "a", cluster=True)
        b, sb = replica(clock, redis_cluster.url, name, "b", cluster=True)
        events: list[object] = []
        a.subscribe(events.append)
        b.subscribe(events.append)
        try:
            for _ in range(30):
                a.record("paid", latency_ms=500, input_tokens=600, output_tokens=400)
            clock.advance(seconds=10)
            assert sa.sync_now() and sb.sync_now() and sa.sync_now(), sa.status()
            # usage: b sees a's 30,000 tokens over 10 s
            assert b.fleet is not None and b.fleet.replicas == 2
            assert b.fleet.tokens_per_minute["paid"] == 180_000
            assert b.snapshot().target("paid").utilization == 180_000 / PAID_TPM
            # an ejection and the switch it causes: both scripts, one event
            a.eject("paid", "AccessDeniedException", cooldown_s=30)
            a.snapshot()
            assert sa.sync_now() and sb.sync_now()
            assert b.snapshot().target("paid").breaker is BreakerState.OPEN
            assert b.primary == "spill"
            assert len([e for e in events if isinstance(e, SwitchEvent)]) == 1
            # every key the fleet wrote is on the node owning the hash tag's slot
            keys = _keys(redis_cluster, key_prefix(name) + "*")
            names = {k.removeprefix(key_prefix(name)).split(":")[0] for k in keys[node]}
            assert {"usage", "ejections", "primary", "replicas"} <= names
            assert all(not found for i, found in keys.items() if i != node), keys
        finally:
            sa.close()
            sb.close()


def test_scripts_are_reloaded_on_a_cluster_that_lost_them(
    redis_cluster: RedisClusterProcesses, deployment: str
) -> None:
    deployment = _deployments_on_every_node(redis_cluster, deployment)[2]
    clock = FakeClock(START_NS)
    store = RedisStore(settings(redis_cluster.url, deployment, "a", cluster=True))
    router, state = replica(clock, redis_cluster.url, deployment, "a", store=store)
    try:
        assert state.sync_now()
        loads = store.script_loads
        for node in redis_cluster.nodes:  # a failover's new primary starts without them
            client = redis.Redis(port=node.port)
            client.script_flush()
            client.close()
        router.eject("paid", "AccessDeniedException", cooldown_s=30)
        assert state.sync_now(), state.status()
        assert store.script_loads == loads + 1
        owner = redis_cluster.nodes[2]
        client = redis.Redis(port=owner.port, decode_responses=True)
        try:
            assert client.hget(key_prefix(deployment) + "ejections", "paid|a") is not None
        finally:
            client.close()
    finally:
        state.close()


def test_shared_status_reads_a_cluster(
    redis_cluster: RedisClusterProcesses, deployment: str
) -> None:
    deployment = _deployments_on_every_node(redis_cluster, deployment)[1]
    text = FLEET_CONFIG + (
        f'\n[shared]\nurl = "{redis_cluster.url}"\ndeployment = "{deployment}"\ncluster = true\n'
    )
    config = parse_config(text, source="cluster.toml")
    assert config.shared is not None and config.shared.cluster
    clock = FakeClock(START_NS)
    router, state = replica(clock, redis_cluster.url, deployment, "a", cluster=True)
    try:
        router.record("paid", latency_ms=500, input_tokens=600, output_tokens=400)
        assert state.sync_now()
        status = read_status(config)
        assert status["deployment"] == deployment
        assert [r["replica"] for r in status["replicas"]] == ["a"]
        assert status["undecodable"] == []
    finally:
        state.close()


def test_a_replica_starts_while_its_cluster_is_unreachable(
    redis_cluster: RedisClusterProcesses, deployment: str
) -> None:
    """The cluster client asks for the slot map when it is built: that happens at the first
    sync, so a replica whose cluster is down starts, routes on its own view, and joins when
    a sync can reach a node."""
    closed = RedisProcess.__new__(RedisProcess)  # a port nothing listens on
    closed.port = _closed_port()
    clock = FakeClock(START_NS)
    store = RedisStore(settings(closed.url, deployment, "a", cluster=True))
    router, state = replica(clock, closed.url, deployment, "a", store=store)
    try:
        assert not state.sync_now()
        status = state.status()
        assert status.failures == 1 and "Connection refused" in (status.last_error or "")
        assert router.fleet is None
        assert router.choose("chat").target.name == "paid"  # routing on its own view
    finally:
        state.close()
    joined = RedisStore(settings(redis_cluster.url, deployment, "a", cluster=True))
    router, state = replica(clock, redis_cluster.url, deployment, "a", store=joined)
    try:
        assert state.sync_now()
        assert router.fleet is not None and router.fleet.replicas == 1
    finally:
        state.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_node_that_dies_and_comes_back(tmp_path: Path, deployment: str) -> None:
    """The node holding the deployment's slot is killed (SIGKILL) and restarted: syncs fail
    meanwhile and the replica routes on its own; once the node is back they succeed again."""
    cluster = RedisClusterProcesses(tmp_path)
    try:
        cluster.start()
        owner = _owner(cluster, deployment)
        url = cluster.nodes[(owner + 1) % 3].url  # enter through another node
        clock = FakeClock(START_NS)
        router, state = replica(clock, url, deployment, "a", cluster=True)
        assert state.sync_now()
        cluster.nodes[owner].kill()
        clock.advance(seconds=1)
        assert not state.sync_now()
        assert router.choose("chat").target.name == "paid"
        cluster.nodes[owner].start()
        cluster.wait_ok()
        synced = False
        deadline = time.monotonic() + 30
        while not synced and time.monotonic() < deadline:
            clock.advance(seconds=1)
            synced = state.sync_now()
        assert synced, state.status()
        assert router.fleet is not None and router.fleet.replicas == 1
        state.close()
    finally:
        cluster.stop()
