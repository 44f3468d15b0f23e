"""Scripting: the pure planner with a seeded rng, and runtime switches and outages by clock."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest
from botocore.exceptions import ClientError
from standin_helpers import HAIKU, MESSAGES, FakeClock

from mangaroute.testing import (
    Burst,
    Latency,
    Outage,
    Service,
    StandIn,
    StreamFailure,
    TargetScript,
    plan_call,
)


def _plans(script: TargetScript, calls: int, seed: int = 1, **kwargs: Any) -> list[Any]:
    rng = random.Random(seed)
    return [
        plan_call(script, service=Service.BEDROCK, call_index=i, elapsed_s=0.0, rng=rng, **kwargs)
        for i in range(calls)
    ]


def test_same_seed_same_plans() -> None:
    script = TargetScript(
        latency=Latency(100, 900, 5),
        output_tokens=(1, 50),
        throttle_probability=0.2,
        stream_failure=StreamFailure(3, probability=0.5),
    )
    assert _plans(script, 200, streaming=True) == _plans(script, 200, streaming=True)
    assert _plans(script, 200, seed=1) != _plans(script, 200, seed=2)


def test_lognormal_ttft_hits_the_scripted_quantiles() -> None:
    latency = Latency(ttft_p50_ms=600, ttft_p99_ms=1500)
    rng = random.Random(42)
    samples = sorted(latency.sample_ttft_ms(rng) for _ in range(20_000))
    assert samples[10_000] == pytest.approx(600, rel=0.03)
    assert samples[19_800] == pytest.approx(1500, rel=0.08)


def test_constant_latency_when_no_p99() -> None:
    assert Latency(ttft_p50_ms=250).sample_ttft_ms(random.Random(0)) == 250


def test_error_probabilities_are_honoured() -> None:
    script = TargetScript(
        throttle_probability=0.2, error_probabilities={"ModelTimeoutException": 0.1}
    )
    outcomes = Counter(plan.outcome for plan in _plans(script, 10_000))
    assert outcomes["ThrottlingException"] / 10_000 == pytest.approx(0.2, abs=0.02)
    assert outcomes["ModelTimeoutException"] / 10_000 == pytest.approx(0.1, abs=0.015)
    assert outcomes["ok"] / 10_000 == pytest.approx(0.7, abs=0.02)


def test_output_token_range_is_inclusive() -> None:
    tokens = {plan.output_tokens for plan in _plans(TargetScript(output_tokens=(2, 4)), 500)}
    assert tokens == {2, 3, 4}


def test_stream_failure_only_when_streaming() -> None:
    script = TargetScript(stream_failure=StreamFailure(after_chunks=2))
    (streamed,) = _plans(script, 1, streaming=True)
    (plain,) = _plans(script, 1, streaming=False)
    assert (streamed.stream_failure, streamed.stream_failure_after) == (
        "modelStreamErrorException",
        2,
    )
    assert streamed.outcome == "stream:modelStreamErrorException"
    assert plain.stream_failure is None


def test_precedence_forced_then_outage_then_burst() -> None:
    script = TargetScript(
        outages=[Outage(0, 10, "ServiceUnavailableException")],
        bursts=[Burst("ModelNotReadyException", calls=1)],
        throttle_probability=1.0,
    )
    rng = random.Random(0)

    def plan(**kw: Any) -> str | None:
        args = {"service": Service.BEDROCK, "call_index": 0, "elapsed_s": 5.0, "rng": rng}
        return plan_call(script, **(args | kw)).error

    assert plan(forced_error="AccessDeniedException") == "AccessDeniedException"
    assert plan() == "ServiceUnavailableException"
    assert plan(elapsed_s=10.0) == "ModelNotReadyException"
    assert plan(elapsed_s=10.0, call_index=1) == "ThrottlingException"


@pytest.mark.parametrize(
    "bad",
    [
        {"throttle_probability": 1.5},
        {"throttle_probability": 0.6, "error_probabilities": {"ModelTimeoutException": 0.6}},
        {"output_tokens": (5, 2)},
        {"tokens_per_chunk": 0},
    ],
)
def test_invalid_scripts_fail_at_construction(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        TargetScript(**bad)


def test_invalid_pieces_fail_at_construction() -> None:
    with pytest.raises(ValueError):
        Latency(ttft_p50_ms=500, ttft_p99_ms=100)
    with pytest.raises(ValueError):
        Outage(5, 5)
    with pytest.raises(ValueError):
        StreamFailure(1, error="NoSuchException")


def test_unknown_error_codes_are_refused_per_service() -> None:
    with pytest.raises(ValueError, match="ServiceUnavailable"):
        StandIn(models={HAIKU: TargetScript(error_probabilities={"ServiceUnavailable": 0.1})})
    with pytest.raises(ValueError):
        StandIn(endpoints={"e": TargetScript(stream_failure=StreamFailure(1))})
    standin = StandIn(models={HAIKU: TargetScript()})
    with pytest.raises(ValueError):
        standin.target(HAIKU).fail_with("ModelError")


def _outcome(client: Any) -> str:
    try:
        client.converse(modelId=HAIKU, messages=MESSAGES)
    except ClientError as error:
        return str(error.response["Error"]["Code"])
    return "ok"


def test_outages_follow_the_injected_clock(clock: FakeClock, client_for: Any) -> None:
    script = TargetScript(outages=[Outage(10, 20), Outage(30, 31, "InternalServerException")])
    with StandIn(models={HAIKU: script}, clock=clock) as standin:
        client = client_for(standin)
        seen = []
        for at in (5, 10, 19.9, 20, 30.5, 31):
            clock.now_ns = int(at * 1e9)
            seen.append(_outcome(client))
        records = standin.target(HAIKU).stats().records
    assert seen == [
        "ok",
        "ServiceUnavailableException",
        "ServiceUnavailableException",
        "ok",
        "InternalServerException",
        "ok",
    ]
    assert [r.at_s for r in records] == [5, 10, 19.9, 20, 30.5, 31]


def test_outages_are_relative_to_start(clock: FakeClock, client_for: Any) -> None:
    clock.advance(1000)
    with StandIn(models={HAIKU: TargetScript(outages=[Outage(0, 1)])}, clock=clock) as standin:
        client = client_for(standin)
        first = _outcome(client)
        clock.advance(1)
        assert (first, _outcome(client)) == ("ServiceUnavailableException", "ok")


def test_fail_with_and_recover_at_runtime(client_for: Any) -> None:
    with StandIn(models={HAIKU: TargetScript()}) as standin:
        client = client_for(standin)
        target = standin.target(HAIKU)
        target.fail_with("ServiceUnavailableException")
        down = [_outcome(client) for _ in range(3)]
        target.recover()
        up = _outcome(client)
        target.fail_next("ModelTimeoutException", calls=2)
        burst = [_outcome(client) for _ in range(3)]
        stats = target.stats()
    assert down == ["ServiceUnavailableException"] * 3
    assert up == "ok"
    assert burst == ["ModelTimeoutException", "ModelTimeoutException", "ok"]
    assert stats.calls == 7
    assert stats.ok == 2
    assert stats.outcomes == {"ServiceUnavailableException": 3, "ok": 2, "ModelTimeoutException": 2}


def test_set_script_changes_behaviour_live(client_for: Any) -> None:
    with StandIn(models={HAIKU: TargetScript()}) as standin:
        client = client_for(standin)
        before = _outcome(client)
        standin.target(HAIKU).set_script(TargetScript(throttle_probability=1.0))
        assert (before, _outcome(client)) == ("ok", "ThrottlingException")
