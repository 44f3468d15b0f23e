"""What an observer receives from ``record()``: one frozen Observation per recorded call."""

from __future__ import annotations

import random
import threading

import pytest

from mangaroute import FakeClock, InvalidObservation, Observation, Outcome, Router, parse_config
from mangaroute.core.decision import Decision
from mangaroute.core.observer import Observers
from mangaroute.core.snapshot import RouterEvent
from tests.telemetry.helpers import MANGA_CONFIG


class Kept:
    """An observer keeping every observation it is handed."""

    def __init__(self) -> None:
        self.observations: list[Observation] = []
        self.lock = threading.Lock()

    def on_decision(self, decision: Decision) -> None:
        pass

    def on_outcome(self, observation: Observation) -> None:
        with self.lock:
            self.observations.append(observation)

    def on_event(self, event: RouterEvent) -> None:
        pass


CONFIG = parse_config(MANGA_CONFIG)


def _router(observer: Kept | Observers) -> Router:
    return Router(CONFIG, clock=FakeClock(), rng=random.Random(7), observer=observer)


def test_record_hands_the_observer_what_the_call_reported() -> None:
    kept = Kept()
    router = _router(kept)
    decision = router.choose("chat")
    router.record(
        decision,
        "throttled",
        latency_ms=812.5,
        ttft_ms=140.0,
        input_tokens=512,
        output_tokens=7,
        error_code="ThrottlingException",
        cache_read_tokens=1800,
        cache_write_tokens=300,
    )
    router.record("slow", latency_ms=95.0)
    assert kept.observations == [
        Observation(
            decision.target,
            Outcome.THROTTLED,
            812.5,
            140.0,
            512,
            7,
            "ThrottlingException",
            1800,
            300,
        ),
        Observation(CONFIG.target("slow"), Outcome.OK, 95.0, None, 0, 0, None, 0, 0),
    ]
    assert kept.observations[0].outcome is Outcome.THROTTLED  # the enum, not the string


def test_an_observation_cannot_be_changed_by_an_observer() -> None:
    kept = Kept()
    router = _router(kept)
    router.record("fast", latency_ms=10.0, input_tokens=3)
    observation = kept.observations[0]
    with pytest.raises(AttributeError):
        observation.latency_ms = 0.0  # type: ignore[misc]
    assert not hasattr(observation, "__dict__")  # no per-call dict
    assert observation.latency_ms == 10.0


def test_invalid_input_reaches_no_observer() -> None:
    kept = Kept()
    router = _router(kept)
    with pytest.raises(InvalidObservation, match="latency_ms"):
        router.record("fast", latency_ms=float("nan"))
    with pytest.raises(InvalidObservation, match="cache_read_tokens=-1"):
        router.record("fast", latency_ms=5.0, cache_read_tokens=-1)
    assert kept.observations == []
    router.record("fast", latency_ms=5.0)  # the router keeps serving
    assert [o.latency_ms for o in kept.observations] == [5.0]


def test_observers_hand_every_observer_the_same_value() -> None:
    first, second = Kept(), Kept()
    router = _router(Observers(first, second))
    router.record("manga", "error", latency_ms=30.0, error_code="ModelError")
    assert len(first.observations) == 1
    assert second.observations[0] is first.observations[0]
    assert first.observations[0].error_code == "ModelError"


def test_calls_recorded_from_many_threads_each_reach_the_observer_once() -> None:
    kept = Kept()
    router = _router(kept)
    threads, calls = 8, 250

    def work(index: int) -> None:
        for n in range(calls):
            router.record("fast", latency_ms=float(index), input_tokens=n)

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert len(kept.observations) == threads * calls
    for index in range(threads):
        mine = [o.input_tokens for o in kept.observations if o.latency_ms == float(index)]
        assert sorted(mine) == list(range(calls))


def test_an_observations_token_cost_prices_cache_reads_and_writes_apart() -> None:
    config = parse_config(
        MANGA_CONFIG.replace(
            "input_per_million_usd = 3.0\n",
            "input_per_million_usd = 3.0\ncache_read_per_million_usd = 0.3\n"
            "cache_write_per_million_usd = 3.75\n",
        )
    )
    slow = config.target("slow")
    observation = Observation(slow, Outcome.OK, 900.0, None, 200, 100, None, 10_000, 2_000)
    # 200 x 3.0 + 100 x 15.0 + 10,000 x 0.3 + 2,000 x 3.75 USD per million tokens
    assert observation.token_cost_usd() == pytest.approx(12_600 / 1e6)
    assert Observation(slow, Outcome.OK, 900.0, None, 0, 0, None).token_cost_usd() == 0.0
