"""Replicas on real clocks with their background sync threads: in one process, in several
processes, over TLS and with AUTH; concurrent traffic loses no delta."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis

from mangaroute import Router
from mangaroute.core.fleet import SharedSettings
from mangaroute.shared import SharedState
from mangaroute.shared.redis_store import key_prefix
from tests.shared.conftest import RedisProcess
from tests.shared.helpers import fleet_config
from tests.sidecar.test_tls import _cert, _key, _write

ROOT = Path(__file__).resolve().parents[2]


def _settings(url: str, deployment: str, name: str, **extra: object) -> SharedSettings:
    return SharedSettings(
        url=url,
        deployment=deployment,
        replica_id=name,
        sync_interval_ms=100,
        stale_after_ms=1000,
        timeout_ms=200,
        **extra,  # type: ignore[arg-type]
    )


def test_every_replica_avoids_an_ejected_target_within_the_bound(
    redis_url: str, deployment: str
) -> None:
    routers = [Router(fleet_config()) for _ in range(6)]
    states = [
        SharedState(router, _settings(redis_url, deployment, f"r{i}"))
        for i, router in enumerate(routers)
    ]
    try:
        deadline = time.monotonic() + 10
        while any(r.fleet is None or r.fleet.replicas < 6 for r in routers):
            assert time.monotonic() < deadline, "replicas never saw each other"
            time.sleep(0.01)
        bound_ms = states[0].settings.eject_bound_ms
        start = time.perf_counter()
        routers[0].eject("paid", "AccessDeniedException")
        seen: dict[int, float] = {}
        while len(seen) < 5 and time.perf_counter() - start < 5:
            for index, router in enumerate(routers[1:], 1):
                if index not in seen and router.choose("chat").target.name != "paid":
                    seen[index] = (time.perf_counter() - start) * 1000
            time.sleep(0.0005)
        assert len(seen) == 5
        assert max(seen.values()) <= bound_ms, (seen, bound_ms)
        for router in routers[1:]:
            assert {router.choose("chat").target.name for _ in range(20)} == {"spill"}
    finally:
        for state in states:
            state.close()


def test_replicas_in_separate_processes_share_one_picture(
    redis_url: str, deployment: str, tmp_path: Path
) -> None:
    flag = tmp_path / "eject"
    roles = ["ejector", "follower", "follower", "follower"]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.shared.replica_main",
                redis_url,
                deployment,
                f"p{i}",
                str(len(roles)),
                str(flag),
                role,
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i, role in enumerate(roles)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
        flag.write_text(repr(time.time()))
        results = []
        for proc in procs:
            out, _ = proc.communicate(timeout=30)
            assert proc.returncode == 0
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    bound_ms = _settings(redis_url, deployment, "x").eject_bound_ms
    followers = [r for r in results if r["replica"] != "p0"]
    assert all(r["avoided_after_ms"] <= bound_ms for r in followers), followers
    assert {r["primary"] for r in results} == {"spill"}
    assert sum(r["switch_events"] for r in results) == 1  # one announcement fleet-wide


def test_concurrent_traffic_loses_no_delta(
    redis_url: str, deployment: str, redis_client: redis.Redis
) -> None:
    router = Router(fleet_config())
    state = SharedState(router, _settings(redis_url, deployment, "busy"))
    threads, calls = 8, 3000

    def work() -> None:
        for _ in range(calls):
            decision = router.choose("chat")
            router.record(decision, latency_ms=300, input_tokens=7, output_tokens=3)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    state.close()  # publishes the last deltas
    requests = tokens = 0
    for key in redis_client.scan_iter(match=key_prefix(deployment) + "usage:*"):
        for field, value in redis_client.hgetall(key).items():
            if field.endswith("|req"):
                requests += int(value)
            else:
                tokens += int(value)
    assert requests == threads * calls
    assert tokens == threads * calls * 10


def test_auth_password_from_the_environment(
    tmp_path: Path, deployment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = RedisProcess(tmp_path, "--requirepass", "s3cret-pw")
    server.start()
    try:
        router = Router(fleet_config())
        monkeypatch.setenv("MR_TEST_REDIS_PW", "s3cret-pw")
        with SharedState(
            router,
            _settings(server.url, deployment, "a", password_env="MR_TEST_REDIS_PW"),
            start=False,
        ) as state:
            assert state.sync_now()
        monkeypatch.setenv("MR_TEST_REDIS_PW", "wrong")
        with SharedState(
            router,
            _settings(server.url, deployment, "b", password_env="MR_TEST_REDIS_PW"),
            start=False,
        ) as state:
            assert not state.sync_now()
            assert "invalid username-password" in (state.status().last_error or "").lower()
            assert router.choose("chat").target.name == "paid"
        monkeypatch.delenv("MR_TEST_REDIS_PW")
        with pytest.raises(ValueError, match="MR_TEST_REDIS_PW"):
            SharedState(
                router, _settings(server.url, deployment, "c", password_env="MR_TEST_REDIS_PW")
            )
    finally:
        server.kill()


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A private CA and a server certificate for localhost (the sidecar TLS tests' helpers)."""
    ca_key, server_key = _key(), _key()
    ca, _ = _write(directory, "ca", _cert("mangaroute test CA", ca_key, None), ca_key)
    server = _cert("localhost", server_key, ("mangaroute test CA", ca_key), server=True)
    cert, key = _write(directory, "server", server, server_key)
    return ca, cert, key


def test_tls_with_a_private_ca(tmp_path: Path, deployment: str) -> None:
    ca, cert, key = _certificates(tmp_path)
    server = RedisProcess(tmp_path)
    port = server.port
    server.extra = (
        "--port", "0", "--tls-port", str(port), "--tls-cert-file", str(cert),
        "--tls-key-file", str(key), "--tls-ca-cert-file", str(ca), "--tls-auth-clients", "no",
    )  # fmt: skip
    server.start()
    try:
        url = f"rediss://localhost:{port}/0"
        a, b = Router(fleet_config()), Router(fleet_config())
        with (
            SharedState(a, _settings(url, deployment, "a", tls_ca_file=str(ca)), start=False) as sa,
            SharedState(b, _settings(url, deployment, "b", tls_ca_file=str(ca)), start=False) as sb,
        ):
            a.eject("paid", "AccessDeniedException")
            assert sa.sync_now() and sb.sync_now()
            assert b.snapshot().target("paid").breaker_reason == "fleet:AccessDeniedException"
        # without the CA the server's certificate is not trusted: no merge, no error raised
        with SharedState(
            Router(fleet_config()), _settings(url, deployment, "c"), start=False
        ) as sc:
            assert not sc.sync_now()
            assert "certificate" in (sc.status().last_error or "").lower()
    finally:
        server.kill()
