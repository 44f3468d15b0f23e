"""Data in Redis that cannot be decoded (a primary epoch ``"x"``, a usage count
``"not-a-number"``, bytes that are not UTF-8, a malformed ejection, a bad spend amount): a
failed sync, counted and logged once, the field skipped and deleted at the next sync, never
renewed; the staleness guard still drops the fleet's view; ``close()`` and ``serve`` still end
cleanly. Against a real ``redis-server``."""

from __future__ import annotations

import io
import json
import logging
import signal
import threading
import time
from pathlib import Path

import pytest
import redis
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from mangaroute import FakeClock
from mangaroute.cli import main
from mangaroute.config import default_config_text
from mangaroute.shared import SharedState
from mangaroute.shared.redis_store import key_prefix
from mangaroute.shared.store import SHOWN_CHARS, BadField, Inbound, Outbound
from tests.shared.helpers import START_NS, WALL_START, metric, replica, serve, serve_process

ROOT = Path(__file__).resolve().parents[2]
BUCKET = int(WALL_START // 5)
"""The usage bucket of the fake clock's first seconds (the fleet config's bucket_s = 5)."""
QUARTER = int(WALL_START // 900)


def _warnings(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


def test_a_bad_primary_epoch_fails_one_sync_is_not_renewed_and_is_repaired(
    redis_url: str, deployment: str, redis_client: redis.Redis
) -> None:
    clock = FakeClock(START_NS)
    a, sa = replica(clock, redis_url, deployment, "a")
    assert sa.sync_now() and a.fleet is not None
    primary = key_prefix(deployment) + "primary"
    redis_client.hset(primary, mapping={"name": "paid", "epoch": "x", "reason": "r"})
    redis_client.pexpire(primary, 30_000)

    clock.advance(ms=250)
    assert not sa.sync_now()  # no ValueError: a failed sync
    status = sa.status()
    assert (status.failures, status.undecodable, status.syncs) == (1, 1, 2)
    assert status.last_error == "undecodable data in the store: primary 'epoch' = 'x'"
    assert status.connected  # within the staleness bound the last view stands
    assert 0 < redis_client.pttl(primary) <= 30_000  # not renewed (key_ttl_s is 3,600 s)

    clock.advance(ms=250)
    assert sa.sync_now()  # the next sync deleted the bad epoch, then read a clean primary
    assert redis_client.hgetall(primary) == {"name": "paid", "reason": "r"}
    assert redis_client.pttl(primary) > 3_000_000  # readable again: renewed
    status = sa.status()
    assert (status.failures, status.last_error, status.connected) == (1, None, True)
    assert a.fleet is not None and a.fleet.primary_epoch == 0
    sa.close()


def test_bad_counts_are_skipped_refused_deltas_resent_and_nothing_counted_twice(
    redis_url: str, deployment: str, redis_client: redis.Redis
) -> None:
    clock = FakeClock(START_NS)
    a, sa = replica(clock, redis_url, deployment, "a")
    b, sb = replica(clock, redis_url, deployment, "b")
    for _ in range(10):
        serve(a, "chat", tokens=100)
    assert sa.sync_now() and sb.sync_now()
    p = key_prefix(deployment)
    usage, spend = f"{p}usage:{BUCKET}", f"{p}spend:{QUARTER // 96}"
    assert redis_client.hgetall(usage) == {"paid|tok": "1000", "paid|req": "10"}
    redis_client.hset(usage, "paid|tok", "not-a-number")
    redis_client.hset(usage, "spill|req", b"\xff\xfe")  # not UTF-8
    redis_client.hset(spend, str(QUARTER), "a lot")
    redis_client.hset(p + "ejections", "cheap|ghost", "garbage")

    clock.advance(ms=250)
    for _ in range(5):
        assert serve(a, "chat", tokens=100) == "paid"
    a.record("spill", latency_ms=800, input_tokens=1000, output_tokens=1000)  # $0.018
    assert not sa.sync_now()
    assert not sb.sync_now()  # b only reads the bad fields: a failed sync as well
    errors = [sa.status().last_error, sb.status().last_error]
    assert all(e is not None and e.startswith("undecodable data in the store") for e in errors)
    assert redis_client.hget(usage, "paid|req") == "15"  # taken: not sent again
    assert redis_client.hget(usage, "spill|tok") == "2000"

    clock.advance(ms=250)
    assert sa.sync_now() and sb.sync_now()  # deleted, then the refused deltas sent again
    row = redis_client.hgetall(usage)
    assert row == {"paid|tok": "500", "paid|req": "15", "spill|tok": "2000", "spill|req": "1"}
    assert redis_client.hgetall(p + "ejections") == {}
    assert float(redis_client.hget(spend, str(QUARTER)) or "nan") == pytest.approx(0.018)
    assert b.fleet is not None
    # the fleet's paid usage: 500 tokens over 15 requests, nothing counted twice
    tpm, rps = b.fleet.tokens_per_minute["paid"], b.fleet.requests_per_second["paid"]
    assert tpm / rps == pytest.approx(500 * 60 / 15)
    sa.close()
    sb.close()


def test_bad_data_that_stays_drops_the_stale_view_logs_once_and_counts_every_sync(
    redis_url: str, deployment: str, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(START_NS)
    reader = InMemoryMetricReader()
    a, sa = replica(clock, redis_url, deployment, "a")
    sa.close()
    state = SharedState(a, sa.settings, start=False, meter_provider=MeterProvider([reader]))
    assert state.sync_now() and a.fleet is not None
    primary = key_prefix(deployment) + "primary"
    caplog.set_level(logging.WARNING, logger="mangaroute.shared")
    for step in range(40):  # 10 s of a writer that keeps writing new bad epochs
        redis_client.hset(primary, "epoch", f"x{step}")
        clock.advance(ms=250)
        assert not state.sync_now()
        if step < 3:  # the stale bound is 1 s: the last view stands until then
            assert a.fleet is not None
    assert a.fleet is None  # dropped by the staleness guard
    status = state.status()
    assert (status.connected, status.failures, status.undecodable) == (False, 40, 40)
    assert metric(reader, "mangaroute.shared.connected") == 0
    assert metric(reader, "mangaroute.shared.sync.failures") == 40
    assert len(_warnings(caplog, "undecodable data in the store: primary 'epoch' = 'x0'")) == 1
    assert len(_warnings(caplog, "unreadable for 1.0 s")) == 1
    assert len(caplog.records) == 2  # not a flood

    clock.advance(seconds=60)  # a minute on: one more line, with the count in between
    redis_client.hset(primary, "epoch", "x")
    assert not state.sync_now()
    assert _warnings(caplog, "similar warnings suppressed")[-1].endswith(
        "(39 similar warnings suppressed)"
    )
    clock.advance(ms=250)  # the writer stops: repaired, merged again
    assert state.sync_now() and a.fleet is not None
    assert _warnings(caplog, "is back")
    state.close()


def test_a_key_of_the_wrong_type_fails_the_sync_until_it_is_gone(
    redis_url: str, deployment: str, redis_client: redis.Redis
) -> None:
    clock = FakeClock(START_NS)
    _, sa = replica(clock, redis_url, deployment, "a")
    replicas = key_prefix(deployment) + "replicas"
    redis_client.set(replicas, "not a sorted set")
    assert not sa.sync_now()
    error = sa.status().last_error
    assert error is not None
    assert error.startswith("the store refused a command: replicas: 'ResponseError: WRONGTYPE")
    assert redis_client.get(replicas) == "not a sorted set"  # a whole key is left alone
    redis_client.delete(replicas)
    clock.advance(ms=250)
    assert sa.sync_now()
    assert redis_client.zscore(replicas, "a") is not None
    sa.close()


class _Broken:
    """A store with a bug: every call raises."""

    def __init__(self) -> None:
        self.exchanges = 0

    def exchange(self, out: Outbound) -> Inbound:
        self.exchanges += 1
        raise ValueError("invalid literal for int() with base 10: 'x'")

    def close(self) -> None:
        raise OSError("close failed")


def test_close_never_raises(
    redis_url: str, deployment: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(START_NS)
    broken = _Broken()
    a, state = replica(clock, redis_url, deployment, "a", store=broken, sync_interval_ms=20)
    caplog.set_level(logging.WARNING, logger="mangaroute.shared")
    state.start()
    deadline = time.monotonic() + 30  # a loaded machine schedules the thread late
    while broken.exchanges < 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert broken.exchanges >= 10  # 10 syncs raised on the thread: logged once, not per sync
    state.close()
    assert [r.getMessage() for r in caplog.records] == [
        "shared-state sync failed",
        "closing shared state: sync failed",
        "closing shared state: close failed",
    ]
    assert a.fleet is None


def test_shared_status_shows_bad_data_instead_of_failing(
    tmp_path: Path, redis_url: str, deployment: str, redis_client: redis.Redis
) -> None:
    p = key_prefix(deployment)
    now = time.time()
    redis_client.hset(p + "primary", mapping={"name": "ondemand-haiku", "epoch": "x"})
    redis_client.hset(f"{p}usage:{int(now // 5)}", "ondemand-haiku|req", "not-a-number")
    redis_client.hset(f"{p}usage:{int(now // 5)}", "ondemand-haiku|tok", "1200")
    path = tmp_path / "fleet.toml"
    path.write_text(
        default_config_text() + f'\n[shared]\nurl = "{redis_url}"\ndeployment = "{deployment}"\n'
    )
    out = io.StringIO()
    assert main(["shared", "status", "--config", str(path), "--json"], out=out) == 0
    status = json.loads(out.getvalue())
    assert status["primary"] == {"target": "ondemand-haiku", "epoch": None, "reason": "", "by": ""}
    assert sorted(status["undecodable"]) == [
        "primary 'epoch' = 'x'",
        f"usage:{int(now // 5)} 'ondemand-haiku|req' = 'not-a-number'",
    ]
    assert status["usage"]["ondemand-haiku"]["tokens_per_minute"] > 0
    text = io.StringIO()
    assert main(["shared", "status", "--config", str(path)], out=text) == 0
    assert "primary: ondemand-haiku (epoch unreadable" in text.getvalue()
    assert "undecodable (left out above" in text.getvalue()


def test_serve_with_bad_data_logs_it_once_and_exits_0_on_sigterm(
    tmp_path: Path, redis_url: str, deployment: str, redis_client: redis.Redis
) -> None:
    p = key_prefix(deployment)
    path = tmp_path / "fleet.toml"
    path.write_text(
        default_config_text()
        + f'\n[shared]\nurl = "{redis_url}"\ndeployment = "{deployment}"\n'
        + 'sync_interval_ms = 50\nstale_after_ms = 500\nreplica_id = "bad-data-1"\n'
    )
    stop = threading.Event()

    def corrupt() -> None:  # a writer that keeps writing new bad values
        n = 0
        while not stop.is_set():
            n += 1
            redis_client.hset(p + "primary", "epoch", f"x{n}")
            redis_client.hset(f"{p}usage:{int(time.time() // 5)}", "ondemand-haiku|tok", f"n{n}")
            stop.wait(0.01)

    writer = threading.Thread(target=corrupt, name="corrupter", daemon=True)
    writer.start()
    process, started = serve_process(path)
    try:
        deadline = time.monotonic() + 30
        while redis_client.zscore(p + "replicas", "bad-data-1") is None:
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "the sidecar never synced"
            time.sleep(0.05)
        time.sleep(2.0)  # about 40 syncs against bad data
        process.send_signal(signal.SIGTERM)
        _, log = process.communicate(timeout=30)
    finally:
        stop.set()
        writer.join(5)
        if process.poll() is None:
            process.kill()
    log = started + log
    assert process.returncode == 0, log
    assert "Traceback" not in log
    assert log.count("undecodable data in the store") == 2  # the first, then the stale line
    assert log.count("\n") < 20


def test_a_huge_bad_value_is_cut_in_messages() -> None:
    bad = BadField("usage:1", "paid|tok", "9" * 20 + "x" * 20_000)
    text = str(bad)
    assert text == f"usage:1 'paid|tok' = {'9' * 20 + 'x' * (SHOWN_CHARS - 20)!r}... (20020 chars)"
    assert len(text) < 2 * SHOWN_CHARS
