"""Router.reconfigure: a new config without losing what the router knows - windows, breakers
and in-flight decisions of the targets that stay; a removed target's calls still land."""

from __future__ import annotations

import random
import threading
from importlib import resources

import pytest

from mangaroute import FakeClock, Outcome, Router, parse_config
from mangaroute.core.breaker import BreakerState
from mangaroute.core.errors import UnknownTarget

from ..conftest import SMALL_CONFIG, RouterFactory

_SLOW, _STEADY = SMALL_CONFIG.index("[targets.slow]"), SMALL_CONFIG.index("[targets.steady]")
SLOW_TABLE = SMALL_CONFIG[_SLOW:_STEADY]

NEW_CONFIG = (
    SMALL_CONFIG.replace(SLOW_TABLE, "")  # slow is removed
    .replace('targets = ["fast", "slow", "steady"]', 'targets = ["fast", "steady", "extra"]')
    .replace("input_per_million_usd = 0.25", "input_per_million_usd = 0.5")  # fast's price
    .replace("consecutive_failures = 3", "consecutive_failures = 7")
    + """
[targets.extra]
pattern = "bedrock_on_demand"
model_id = "anthropic.claude-3-5-haiku-20241022-v1:0"
region = "ap-northeast-1"
prior = { p50_ms = 300, p90_ms = 500, p99_ms = 700 }
"""
)


def reload(router: Router, text: str) -> object:
    return router.reconfigure(parse_config(text, source="new.toml"))


def test_kept_targets_keep_their_window_and_breaker_and_take_the_new_settings(
    router: Router, clock: FakeClock
) -> None:
    for _ in range(6):
        router.record("fast", latency_ms=250.0, input_tokens=100, output_tokens=50)
    router.eject("steady", "quota cut")
    change = reload(router, NEW_CONFIG)
    assert change.added == ("extra",) and change.removed == ("slow",)  # type: ignore[attr-defined]
    assert change.kept == ("fast", "steady")  # type: ignore[attr-defined]
    snapshot = router.current_snapshot
    fast = snapshot.target("fast")
    assert fast.requests == 6 and fast.latency_source == "observed"
    assert fast.target.pricing.input_per_million_usd == 0.5  # the new price
    assert snapshot.target("steady").breaker is BreakerState.OPEN
    assert snapshot.target("extra").latency_source == "prior"
    with pytest.raises(KeyError):
        snapshot.target("slow")
    assert router.config.source == "new.toml"
    assert [t.name for t in router.choose("chat").fallbacks] == ["extra"]


def test_the_new_breaker_settings_apply_to_the_kept_breakers(router: Router) -> None:
    reload(router, NEW_CONFIG)  # consecutive_failures 3 -> 7
    for _ in range(6):
        router.record("fast", Outcome.ERROR, latency_ms=20.0)
    assert router.snapshot().target("fast").breaker is BreakerState.CLOSED
    router.record("fast", Outcome.ERROR, latency_ms=20.0)
    assert router.snapshot().target("fast").breaker is BreakerState.OPEN


def test_decisions_in_flight_across_a_reload_are_recorded_or_released(
    router: Router,
) -> None:
    on_fast = router.choose("chat")
    router.eject("fast", "test")
    on_slow = router.choose("chat")
    assert (on_fast.target.name, on_slow.target.name) == ("fast", "slow")
    reload(router, NEW_CONFIG)
    # fast stays (with a new Target object): its decision records as usual
    router.record(on_fast, latency_ms=300.0)
    assert router.snapshot().target("fast").requests == 1
    # slow is gone: its decision is released, not an error
    router.record(on_slow, latency_ms=300.0)
    assert router.snapshot().target("fast").in_flight == 0
    with pytest.raises(UnknownTarget):
        router.record(on_slow, latency_ms=300.0)  # twice is still an error
    with pytest.raises(UnknownTarget):
        router.record("slow", latency_ms=300.0)


def test_a_new_window_shape_starts_the_windows_afresh_but_keeps_the_breakers(
    router: Router,
) -> None:
    for _ in range(6):
        router.record("fast", latency_ms=250.0)
    router.eject("steady", "test")
    reload(router, SMALL_CONFIG.replace("bucket_s = 5", "bucket_s = 6"))
    snapshot = router.current_snapshot
    assert snapshot.target("fast").requests == 0
    assert snapshot.target("steady").breaker is BreakerState.OPEN


def test_an_unchanged_config_changes_nothing_it_knows(router: Router) -> None:
    for _ in range(6):
        router.record("fast", latency_ms=250.0)
    before = router.snapshot().target("fast")
    change = reload(router, SMALL_CONFIG)
    assert change.added == () and change.removed == ()  # type: ignore[attr-defined]
    after = router.current_snapshot.target("fast")
    assert (after.requests, after.p50_ms, after.breaker) == (
        before.requests,
        before.p50_ms,
        before.breaker,
    )


def test_callers_keep_routing_while_configs_are_swapped(make_router: RouterFactory) -> None:
    router = make_router()
    errors: list[BaseException] = []
    stop = threading.Event()

    def caller(seed: int) -> None:
        rng = random.Random(seed)
        try:
            while not stop.is_set():
                decision = router.choose("chat")
                if rng.random() < 0.5:
                    router.record(decision, latency_ms=rng.uniform(100, 900))
                else:
                    router.release(decision)
        except BaseException as exc:  # the test reports it
            errors.append(exc)

    threads = [threading.Thread(target=caller, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    try:
        for k in range(40):
            reload(router, NEW_CONFIG if k % 2 == 0 else SMALL_CONFIG)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert errors == []
    assert router.snapshot().target("fast").in_flight == 0


def test_the_primary_in_use_stays_primary_when_the_switcher_settings_change(
    clock: FakeClock,
) -> None:
    shipped = resources.files("mangaroute").joinpath("data", "mangaassist.toml").read_text()
    router = Router(parse_config(shipped), clock=clock, rng=random.Random(1))
    router.eject("provisioned-sonnet", "test")
    router.choose("simple")
    assert router.primary == "ondemand-haiku"
    switches = router.switch_history()
    change = reload(router, shipped.replace("return_after_s = 120", "return_after_s = 300"))
    assert change.removed == ()  # type: ignore[attr-defined]
    assert router.primary == "ondemand-haiku"
    assert router.switch_history() == switches  # kept, not switched away and back
    assert router.config.switcher is not None and router.config.switcher.return_after_s == 300


def test_a_reload_sweeps_unreported_decisions_by_the_new_ttl_and_limit(
    router: Router, clock: FakeClock
) -> None:
    # SMALL_CONFIG leaves decision_ttl_s at 300 s: a decision 20 s old is still in flight
    old = router.choose("chat")
    clock.advance(seconds=20)
    router.snapshot()
    assert router.pending(old.decision_id) is not None
    reload(router, SMALL_CONFIG.replace("refresh_ms = 5", "refresh_ms = 5\ndecision_ttl_s = 10"))
    clock.advance(seconds=2)  # past the once-a-second sweep
    router.snapshot()
    assert router.pending(old.decision_id) is None
    assert router.dropped(old.decision_id) == "dropped unreported: older than decision_ttl_s=10 s"
    # and the new max_outstanding: the oldest beyond it are dropped at the next sweep
    reload(router, SMALL_CONFIG.replace("refresh_ms = 5", "refresh_ms = 5\nmax_outstanding = 2"))
    decisions = [router.choose("chat") for _ in range(4)]
    clock.advance(seconds=2)
    router.snapshot()
    assert [router.pending(d.decision_id) is not None for d in decisions] == [
        False,
        False,
        True,
        True,
    ]
