"""Properties of the merge rules (the in-memory store shares the Redis store's semantics; the
Redis store itself is tested against a real server in the other modules)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mangaroute import FakeClock, parse_config
from mangaroute.config import default_config_text
from mangaroute.core.errors import ConfigError
from mangaroute.core.fleet import FleetSpend, SharedSettings
from mangaroute.core.policy.context import CHECKPOINT_S, SpendLedger
from mangaroute.shared import MemoryStore
from mangaroute.shared.store import EjectionClaim, encode_ejection, parse_ejection
from tests.shared.helpers import START_NS, WALL_START, replica

TARGETS = ("paid", "spill", "cheap")


@settings(max_examples=60, deadline=None)
@given(
    traffic=st.lists(
        st.tuples(
            st.integers(0, 2),  # replica
            st.sampled_from(TARGETS),
            st.integers(1, 5000),  # tokens
            st.integers(0, 3),  # 250 ms steps before the call
        ),
        max_size=60,
    ),
)
def test_every_replica_sees_exactly_the_others_usage(
    traffic: list[tuple[int, str, int, int]],
) -> None:
    clock = FakeClock(START_NS)
    store = MemoryStore(clock=lambda: WALL_START + (clock() - START_NS) / 1e9)
    fleet = [replica(clock, "redis://sim", "prop", f"r{i}", store=store) for i in range(3)]
    sent = [dict.fromkeys(TARGETS, 0) for _ in fleet]
    for who, target, tokens, steps in traffic:
        for _ in range(steps):
            clock.advance(ms=250)
            for _, state in fleet:
                state.sync_now()
        fleet[who][0].record(target, latency_ms=100, input_tokens=tokens, output_tokens=0)
        sent[who][target] += tokens
    for _ in range(2):  # everyone publishes, then everyone reads
        for _, state in fleet:
            state.sync_now()
    elapsed_s = (clock() - START_NS) / 1e9
    span_s = max(5.0, elapsed_s)
    assert elapsed_s < 60  # all of it inside one window
    for index, (router, _) in enumerate(fleet):
        assert router.fleet is not None
        for target in TARGETS:
            others = sum(sent[j][target] for j in range(3) if j != index)
            got = router.fleet.tokens_per_minute.get(target, 0.0)
            assert math.isclose(got, others / span_s * 60.0, rel_tol=1e-9), (index, target)


@given(
    local=st.lists(st.tuples(st.floats(0, 1e4), st.floats(0, 50)), max_size=20),
    others=st.dictionaries(st.integers(0, 400), st.floats(0, 100), max_size=30),
    since_q=st.integers(0, 400),
)
def test_fleet_spend_since_adds_the_others_quarters_from_that_moment(
    local: list[tuple[float, float]], others: dict[int, float], since_q: int
) -> None:
    ledger = SpendLedger()
    at, total = 0.0, 0.0
    for step, add in local:
        at += step
        total += add
        ledger.observe(at, total)
    spend = FleetSpend(ledger, others)
    since = since_q * CHECKPOINT_S
    expected = ledger.since(since) + sum(v for q, v in others.items() if q >= since_q)
    assert math.isclose(spend.since(since), expected, rel_tol=1e-12, abs_tol=1e-9)
    assert math.isclose(spend.total_usd, total + sum(others.values()), rel_tol=1e-12)


@given(
    target=st.text(st.characters(blacklist_characters="\x00"), min_size=1, max_size=20),
    replica_id=st.text(st.characters(blacklist_characters="|\x00"), min_size=1, max_size=20),
    state=st.sampled_from(["open", "half_open"]),
    reason=st.text(max_size=40),
    until=st.floats(0, 4e9),
)
def test_ejection_entries_round_trip(
    target: str, replica_id: str, state: str, reason: str, until: float
) -> None:
    claim = EjectionClaim(target, state, reason, until)
    entry = parse_ejection(f"{target}|{replica_id}", encode_ejection(claim))
    assert entry is not None
    assert (entry.target, entry.replica, entry.state, entry.reason) == (
        target,
        replica_id,
        state,
        reason,
    )
    assert abs(entry.until_unix - until) <= 0.0005


@pytest.mark.parametrize("value", ["", "open", "open|x|r", "open|1"])
def test_malformed_ejection_entries_are_ignored(value: str) -> None:
    assert parse_ejection("paid|r1", value) is None


def test_the_store_going_away_and_coming_back_in_memory() -> None:
    clock = FakeClock(START_NS)
    store = MemoryStore(clock=lambda: WALL_START + (clock() - START_NS) / 1e9)
    a, sa = replica(clock, "redis://sim", "mem", "a", store=store)
    assert sa.sync_now() and a.fleet is not None
    store.available = False
    clock.advance(seconds=0.5)
    assert not sa.sync_now()
    assert a.fleet is not None  # within the 1 s bound: keep the last view
    clock.advance(seconds=0.6)
    assert not sa.sync_now()
    assert a.fleet is None
    store.available = True
    assert sa.sync_now() and a.fleet is not None


SHARED = '\n[shared]\nurl = "redis://cache.internal:6379/0"\ndeployment = "mangaassist-prod"\n'


def test_shared_table_defaults() -> None:
    config = parse_config(default_config_text() + SHARED)
    assert config.shared == SharedSettings(
        url="redis://cache.internal:6379/0", deployment="mangaassist-prod"
    )
    assert config.shared.eject_bound_ms == 650
    assert parse_config(default_config_text()).shared is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("sync_interval_ms = 0\n", "[shared.sync_interval_ms] expected a number > 0"),
        ("stale_after_ms = 300\n", "stale_after_ms (300) must be at least twice"),
        ('password = "hunter2"\n', "[shared.password] is not read from the config file"),
        ('backend = "memcached"\n', '[shared.backend] expected "redis"'),
        ("tls = true\n", "[shared.tls] is not a known key"),
    ],
)
def test_shared_table_errors_name_the_key(extra: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(default_config_text() + SHARED + extra, source="prod.toml")
    assert message in str(error.value)
    assert "prod.toml" in str(error.value)


@pytest.mark.parametrize(
    ("url", "deployment", "message"),
    [
        ("http://cache:6379", "x", "[shared.url] expected a redis://, rediss:// or unix://"),
        ("redis://cache", "has space", "deployment must be 1-64 characters"),
    ],
)
def test_shared_url_and_deployment_are_checked(url: str, deployment: str, message: str) -> None:
    text = f'\n[shared]\nurl = "{url}"\ndeployment = "{deployment}"\n'
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_config(default_config_text() + text)
