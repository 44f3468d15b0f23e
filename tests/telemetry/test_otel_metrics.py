"""OTelObserver: the GenAI metrics and mangaroute's own, recorded off the request path."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from mangaroute import FakeClock, Router, parse_config
from mangaroute.core.breaker import BreakerState
from mangaroute.core.snapshot import BreakerEvent, SwitchEvent
from mangaroute.telemetry import OTelObserver, semconv
from tests.telemetry.helpers import MANGA_CONFIG, points, units


@pytest.fixture
def observer(meter_provider: MeterProvider) -> Iterator[OTelObserver]:
    config = parse_config(MANGA_CONFIG)
    observer = OTelObserver(meter_provider, targets=config.targets, start=False)
    yield observer
    observer.close()


@pytest.fixture
def router(observer: OTelObserver) -> Router:
    return Router(
        parse_config(MANGA_CONFIG),
        observer=observer,
        clock=FakeClock(10**12),
        rng=random.Random(5),
    )


def test_decisions_are_counted_by_target_and_reason(
    router: Router, observer: OTelObserver, metric_reader: InMemoryMetricReader
) -> None:
    for _ in range(3):
        router.choose("chat")
    assert observer.drain() == 3
    [point] = points(metric_reader)[semconv.METRIC_DECISIONS]
    assert point.value == 3
    assert dict(point.attributes) == {
        semconv.TARGET: "fast",
        semconv.PATTERN: "bedrock_on_demand",
        semconv.REASON: "best",
        semconv.REQUEST_CLASS: "chat",
        semconv.POLICY: "ordered",
    }


def test_genai_duration_tokens_and_time_to_first_chunk(
    router: Router, observer: OTelObserver, metric_reader: InMemoryMetricReader
) -> None:
    decision = router.choose("chat")
    router.record(decision, latency_ms=640.0, ttft_ms=210.0, input_tokens=512, output_tokens=280)
    router.record("fast", latency_ms=90.0)  # no tokens reported: no token usage recorded
    observer.drain()
    found = points(metric_reader)
    genai = {
        semconv.GEN_AI_OPERATION_NAME: "chat",
        semconv.GEN_AI_PROVIDER_NAME: "aws.bedrock",
        semconv.GEN_AI_REQUEST_MODEL: "anthropic.claude-3-haiku-20240307-v1:0",
        semconv.SERVER_ADDRESS: "bedrock-runtime.ap-northeast-1.amazonaws.com",
        semconv.SERVER_PORT: 443,
        semconv.TARGET: "fast",
    }
    [duration] = found[semconv.METRIC_OPERATION_DURATION]
    assert dict(duration.attributes) == {**genai, semconv.OUTCOME: "ok"}
    assert duration.count == 2
    assert duration.sum == pytest.approx(0.73)
    assert tuple(duration.explicit_bounds) == semconv.DURATION_BUCKETS_S
    [ttfc] = found[semconv.METRIC_TIME_TO_FIRST_CHUNK]
    assert (ttfc.count, ttfc.sum) == (1, pytest.approx(0.21))
    assert tuple(ttfc.explicit_bounds) == semconv.DURATION_BUCKETS_S
    tokens = {p.attributes[semconv.GEN_AI_TOKEN_TYPE]: p for p in found[semconv.METRIC_TOKEN_USAGE]}
    assert (tokens["input"].count, tokens["input"].sum) == (1, 512)
    assert (tokens["output"].count, tokens["output"].sum) == (1, 280)
    assert tuple(tokens["input"].explicit_bounds) == semconv.TOKEN_BUCKETS
    assert dict(tokens["input"].attributes) == {**genai, semconv.GEN_AI_TOKEN_TYPE: "input"}
    assert units(metric_reader)[semconv.METRIC_OPERATION_DURATION] == "s"
    assert units(metric_reader)[semconv.METRIC_TOKEN_USAGE] == "{token}"


def test_spend_is_token_prices_times_tokens(
    router: Router, observer: OTelObserver, metric_reader: InMemoryMetricReader
) -> None:
    router.record("fast", latency_ms=500.0, input_tokens=1_000_000, output_tokens=200_000)
    router.record("slow", latency_ms=900.0, input_tokens=1000, output_tokens=1000)
    router.record("manga", latency_ms=400.0, input_tokens=1000, output_tokens=1000)  # hourly only
    observer.drain()
    spend = {
        p.attributes[semconv.TARGET]: p.value for p in points(metric_reader)[semconv.METRIC_SPEND]
    }
    assert spend == {"fast": pytest.approx(0.25 + 0.25), "slow": pytest.approx(0.018)}
    assert units(metric_reader)[semconv.METRIC_SPEND] == "USD"


def test_failures_carry_error_type_and_distinct_types_are_bounded(
    meter_provider: MeterProvider, metric_reader: InMemoryMetricReader
) -> None:
    config = parse_config(MANGA_CONFIG)
    observer = OTelObserver(meter_provider, targets=config.targets, start=False, max_error_types=2)
    router = Router(config, observer=observer, clock=FakeClock(10**12))
    router.record("fast", "throttled", latency_ms=50.0, error_code="ThrottlingException")
    router.record("fast", "timeout", latency_ms=1500.0)
    router.record("fast", "error", latency_ms=20.0, error_code="SomethingNew")
    observer.close()
    errors = {
        p.attributes.get(semconv.ERROR_TYPE): p.attributes[semconv.OUTCOME]
        for p in points(metric_reader)[semconv.METRIC_OPERATION_DURATION]
    }
    assert errors == {"ThrottlingException": "throttled", "timeout": "timeout", "_OTHER": "error"}


def test_switches_and_breakers(
    router: Router, observer: OTelObserver, metric_reader: InMemoryMetricReader
) -> None:
    router.eject("slow", "access_denied")
    observer.on_event(
        SwitchEvent("fast", "slow", "high_latency(2612ms), high_errors(12.0%)", 0, 0.0)
    )
    observer.on_event(
        BreakerEvent(
            "fast", BreakerState.CLOSED, BreakerState.OPEN, "consecutive_failures(5)", 0, 0.0
        )
    )
    observer.drain()
    found = points(metric_reader)
    [switch] = found[semconv.METRIC_SWITCHES]
    assert dict(switch.attributes) == {
        semconv.FROM_TARGET: "fast",
        semconv.TO_TARGET: "slow",
        semconv.REASON: "high_latency,high_errors",
    }
    transitions = {
        p.attributes[semconv.TARGET]: p for p in found[semconv.METRIC_BREAKER_TRANSITIONS]
    }
    assert transitions["slow"].attributes[semconv.BREAKER_STATE] == "open"
    assert transitions["slow"].attributes[semconv.FROM_STATE] == "closed"
    state = {
        (p.attributes[semconv.TARGET], p.attributes[semconv.BREAKER_STATE]): p.value
        for p in found[semconv.METRIC_BREAKER_STATE]
    }
    assert state[("slow", "open")] == 1 and state[("slow", "closed")] == 0
    assert state[("fast", "open")] == 1
    assert state[("manga", "closed")] == 1 and state[("manga", "half_open")] == 0
    assert len(state) == 9


def test_a_full_buffer_drops_and_counts(
    meter_provider: MeterProvider, metric_reader: InMemoryMetricReader
) -> None:
    config = parse_config(MANGA_CONFIG)
    observer = OTelObserver(meter_provider, buffer_size=4, start=False)
    router = Router(config, observer=observer, clock=FakeClock(10**12))
    for _ in range(10):
        router.choose("chat")
    assert observer.dropped == 6
    observer.close()
    found = points(metric_reader)
    assert found[semconv.METRIC_DECISIONS][0].value == 4
    assert found[semconv.METRIC_DROPPED][0].value == 6


def test_the_background_thread_drains_and_close_is_idempotent(
    meter_provider: MeterProvider, metric_reader: InMemoryMetricReader
) -> None:
    config = parse_config(MANGA_CONFIG)
    with OTelObserver(meter_provider, drain_interval_s=0.01) as observer:
        router = Router(config, observer=observer)
        router.choose("chat")
        deadline = time.monotonic() + 5
        while semconv.METRIC_DECISIONS not in points(metric_reader):
            assert time.monotonic() < deadline, "the drain thread never ran"
            time.sleep(0.01)
    observer.close()
    with pytest.raises(ValueError, match="buffer_size"):
        OTelObserver(meter_provider, buffer_size=0, start=False)


def test_config_reloads_are_counted_by_result(
    router: Router, observer: OTelObserver, metric_reader: InMemoryMetricReader
) -> None:
    router.reconfigure(parse_config(MANGA_CONFIG))
    router.reconfigure(parse_config(MANGA_CONFIG))
    router.reject_reload("/etc/mangaroute/router.toml", "[targets.x] unknown key 'foo'")
    router.eject("slow", "deploy", 60.0, by="ops")  # an AdminEvent: not a reload
    observer.drain()
    reloads = {
        p.attributes[semconv.RELOAD_RESULT]: p.value
        for p in points(metric_reader)[semconv.METRIC_RELOADS]
    }
    assert reloads == {"accepted": 2, "rejected": 1}
