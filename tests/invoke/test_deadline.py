"""Deadlines, exactly: a FakeClock that each call to the stand-in advances by a set time.

The clients are our own (``FixedClients``) with a ``before-send`` hook that moves the fake
clock by the virtual time each target "takes", so remaining budgets are exact.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from mangaroute import FakeClock, InvalidRequest, MangarouteError, Router
from mangaroute.invoke import DeadlineExceeded, FailoverExhausted, RoutedClient
from mangaroute.invoke.deadline import Deadline
from mangaroute.testing import StandIn
from tests.invoke.support import (
    HAIKU,
    MESSAGES,
    PROFILE,
    PROVISIONED,
    REGION,
    SECRET,
    Recorder,
    make_router,
    session,
)

TAKES_MS = {PROVISIONED: 700.0, HAIKU: 250.0, PROFILE: 500.0}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(10**12)


@pytest.fixture
def fake_timed(standin: StandIn, clock: FakeClock) -> Iterator[dict[str, Any]]:
    client = session().client(
        "bedrock-runtime",
        region_name=REGION,
        endpoint_url=standin.endpoint_url,
        config=Config(retries={"total_max_attempts": 1}),
    )

    def advance(request: Any, **_: Any) -> None:
        model = unquote(request.url.split("/model/")[1].rsplit("/", 1)[0])
        clock.advance(ms=TAKES_MS[model])

    client.meta.events.register("before-send.bedrock-runtime.*", advance)
    yield {"bedrock-runtime": client}
    client.close()


@pytest.fixture
def routed(clock: FakeClock, recorder: Recorder, fake_timed: dict[str, Any]) -> Iterator[Router]:
    yield make_router(clock, recorder)


def make(router: Router, clock: FakeClock, clients: dict[str, Any]) -> RoutedClient:
    return RoutedClient(router, clients=clients, clock=clock, refresh_snapshots=False)


def test_the_deadline_error_carries_every_attempt(
    standin: StandIn, routed: Router, clock: FakeClock, fake_timed: dict[str, Any]
) -> None:
    standin.target(PROVISIONED).fail_with("ServiceUnavailableException")
    standin.target(HAIKU).fail_with("ThrottlingException")
    with make(routed, clock, fake_timed) as client, pytest.raises(DeadlineExceeded) as caught:
        # primary fails at 700 ms (300 left: haiku's p50 300 fits), haiku throttles at
        # 950 ms, and the 50 ms left fit no one (profile's p50 is 600 ms)
        client.converse(messages=MESSAGES, budget_ms=1000)
    error = caught.value
    assert [
        (a.target, a.outcome, a.error_code, a.started_ms, a.latency_ms) for a in error.attempts
    ] == [
        ("primary", "error", "ServiceUnavailableException", 0.0, 700.0),
        ("haiku", "throttled", "ThrottlingException", 700.0, 250.0),
    ]
    assert str(error) == (
        "no target answered: 50 ms left fits no fallback's predicted p50 (profile); attempts: "
        "primary error ServiceUnavailableException after 700 ms; "
        "haiku throttled ThrottlingException after 250 ms"
    )
    assert isinstance(error.__cause__, ClientError)
    assert isinstance(error, TimeoutError | FailoverExhausted | MangarouteError)
    assert error.routing is not None and error.routing.budget_ms == 1000
    assert error.routing.latency_ms == 950.0 and error.routing.target is None
    assert SECRET not in str(error)
    assert standin.target(PROFILE).stats().calls == 0


def test_an_answer_within_the_budget_reports_its_exact_latency(
    standin: StandIn, routed: Router, clock: FakeClock, fake_timed: dict[str, Any]
) -> None:
    standin.target(PROVISIONED).fail_with("ServiceUnavailableException")
    with make(routed, clock, fake_timed) as client:
        reply = client.converse(messages=MESSAGES, budget_ms=1000)
    assert reply.routing.latency_ms == 950.0 and reply.routing.target == "haiku"


def test_a_shared_deadline_spans_calls(
    routed: Router, clock: FakeClock, fake_timed: dict[str, Any]
) -> None:
    with make(routed, clock, fake_timed) as client:
        deadline = client.deadline(1200)
        first = client.converse(messages=MESSAGES, deadline=deadline)
        assert first.routing.budget_ms == 1200
        second = client.converse(messages=MESSAGES, deadline=deadline)
        assert second.routing.budget_ms == 500
        with pytest.raises(DeadlineExceeded, match="deadline had passed") as caught:
            client.converse(messages=MESSAGES, deadline=deadline)
    assert caught.value.attempts == ()


def test_an_expired_budget_calls_nothing_and_releases_the_decision(
    standin: StandIn, routed: Router, clock: FakeClock, fake_timed: dict[str, Any]
) -> None:
    with make(routed, clock, fake_timed) as client, pytest.raises(DeadlineExceeded) as caught:
        client.converse(messages=MESSAGES, budget_ms=0)
    assert standin.target(PROVISIONED).stats().calls == 0
    assert caught.value.routing is not None
    assert routed.pending(caught.value.routing.decision_id) is None


def test_bad_routing_arguments(
    routed: Router, clock: FakeClock, fake_timed: dict[str, Any]
) -> None:
    with make(routed, clock, fake_timed) as client:
        with pytest.raises(InvalidRequest, match="modelId"):
            client.converse(messages=MESSAGES, modelId=HAIKU)
        with pytest.raises(InvalidRequest, match="not both"):
            client.converse(messages=MESSAGES, budget_ms=10, deadline=client.deadline(10))
        with pytest.raises(InvalidRequest, match="budget_ms"):
            client.converse(messages=MESSAGES, budget_ms=-1)


def test_a_huge_bad_budget_is_quoted_in_64_characters() -> None:
    with pytest.raises(InvalidRequest) as caught:
        Deadline.after("9" * 10_000, FakeClock())  # type: ignore[arg-type]
    message = str(caught.value)
    assert message.startswith("budget_ms must be a finite number >= 0, got '999")
    assert message.endswith("... (10000 characters)")
    assert len(message) < 200
