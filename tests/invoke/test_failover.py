"""Failover rules against the stand-in with real boto3 clients."""

from __future__ import annotations

import logging

import pytest
from botocore.exceptions import ClientError

from mangaroute import BreakerState, FakeClock, Outcome, Router, parse_config
from mangaroute.invoke import ClientCache, FailoverExhausted, InvokeSettings
from mangaroute.testing import Latency, StandIn, TargetScript
from tests.invoke.conftest import ClientFactory
from tests.invoke.support import (
    CONFIG,
    ENDPOINT,
    HAIKU,
    MESSAGES,
    PROFILE,
    PROVISIONED,
    ROOMY_MS,
    SCALE,
    SECRET,
    Recorder,
    make_router,
    scaled_clock,
    session,
)

RETRYABLE = [
    ("ThrottlingException", "throttled"),
    ("ServiceUnavailableException", "error"),
    ("ModelNotReadyException", "error"),
    ("InternalServerException", "error"),
    ("ModelTimeoutException", "timeout"),
]


@pytest.mark.parametrize(("code", "outcome"), RETRYABLE)
def test_retryable_errors_fail_over_to_the_next_target(
    code: str,
    outcome: str,
    standin: StandIn,
    router: Router,
    recorder: Recorder,
    make_client: ClientFactory,
) -> None:
    standin.target(PROVISIONED).fail_with(code)
    client = make_client(router)
    reply = client.converse(
        messages=MESSAGES, budget_ms=ROOMY_MS, inferenceConfig={"maxTokens": 50}
    )
    routing = reply.routing
    assert reply["output"]["message"]["role"] == "assistant"
    assert routing.target == "haiku" and routing.failovers == 1
    assert [(a.target, a.kind.value, a.outcome, a.error_code) for a in routing.attempts] == [
        ("primary", "primary", outcome, code),
        ("haiku", "failover", "ok", None),
    ]
    assert [(o[0], o[1].value, o[4]) for o in recorder.outcomes] == [
        ("primary", outcome, code),
        ("haiku", "ok", None),
    ]
    assert standin.target(PROFILE).stats().calls == 0


def test_a_refused_connection_fails_over(
    standin: StandIn, router: Router, make_client: ClientFactory
) -> None:

    cache = ClientCache(
        session(),
        endpoint_url={
            "bedrock-runtime": standin.endpoint_url,
            "sagemaker-runtime": "http://127.0.0.1:9",
        },
        min_timeout_s=0.001,
    )
    client = make_client(router, clients=cache)
    try:
        reply = client.converse(messages=MESSAGES, request_class="manga", budget_ms=ROOMY_MS)
    finally:
        client.close()
        cache.close()
    first, second = reply.routing.attempts
    assert (first.target, first.error_code) == ("manga", "EndpointConnectionError")
    assert (second.target, second.outcome) == ("haiku", "ok")


def test_a_read_timeout_fails_over_inside_the_budget(
    standin: StandIn, router: Router, make_client: ClientFactory
) -> None:

    # 2.56 s of real time at SCALE; the read timeout is the ClientCache step below it,
    # 2^(33/3) ms = 2.048 s, which leaves the fallback 512 ms of real time, ample under load.
    budget_ms = 128_000
    standin.target(PROVISIONED).set_script(TargetScript(latency=Latency(5 * budget_ms)))
    client = make_client(router)
    reply = client.converse(messages=MESSAGES, budget_ms=budget_ms)
    first, second = reply.routing.attempts
    assert (first.target, first.outcome, first.error_code) == (
        "primary",
        "timeout",
        "ReadTimeoutError",
    )
    assert first.latency_ms < budget_ms  # cut by the read timeout, set below the budget
    assert (second.target, second.outcome) == ("haiku", "ok")


def test_every_target_failing_raises_with_every_attempt(
    standin: StandIn, router: Router, make_client: ClientFactory
) -> None:
    for model in (PROVISIONED, HAIKU, PROFILE):
        standin.target(model).fail_with("ServiceUnavailableException")
    client = make_client(router)
    with pytest.raises(FailoverExhausted) as caught:
        client.converse(messages=MESSAGES)
    error = caught.value
    assert [a.target for a in error.attempts] == ["primary", "haiku", "profile"]
    assert isinstance(error.__cause__, ClientError)
    assert SECRET not in str(error)


@pytest.mark.parametrize("code", ["AccessDeniedException", "ResourceNotFoundException"])
def test_access_denied_ejects_the_target_and_logs_once(
    code: str,
    standin: StandIn,
    recorder: Recorder,
    make_client: ClientFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:

    clock = FakeClock(10**12)
    router = make_router(clock, recorder)
    standin.target(PROVISIONED).fail_with(code)
    client = make_client(
        router,
        clock=clock,
        settings=InvokeSettings(time_scale=SCALE, eject_cooldown_s=60),
        refresh_snapshots=False,
    )
    with caplog.at_level(logging.ERROR, logger="mangaroute.invoke"):
        first = client.converse(messages=MESSAGES)
        view = router.snapshot().target("primary")
        assert view.breaker is BreakerState.OPEN and code in view.breaker_reason
        second = client.converse(messages=MESSAGES)  # the ejected target is not chosen
        clock.advance(seconds=61)  # half-open: one probe goes to it and is ejected again
        third = client.converse(messages=MESSAGES)
    assert [a.target for a in first.routing.attempts] == ["primary", "haiku"]
    assert [a.target for a in second.routing.attempts] == ["haiku"]
    assert third.routing.reason == "probe"
    assert [a.target for a in third.routing.attempts] == ["primary", "haiku"]
    loud = [r for r in caplog.records if r.name == "mangaroute.invoke"]
    assert len(loud) == 1 and loud[0].levelno == logging.ERROR
    message = loud[0].getMessage()
    assert "primary" in message and code in message and PROVISIONED in message
    assert SECRET not in message
    assert router.snapshot().target("primary").ejections >= 2


def test_an_unknown_model_id_is_resource_not_found(
    standin: StandIn, router: Router, make_client: ClientFactory
) -> None:

    wrong = CONFIG.replace(PROVISIONED, PROVISIONED + "-typo")
    typo_router = Router(parse_config(wrong), clock=scaled_clock)
    client = make_client(typo_router)
    reply = client.converse(messages=MESSAGES)
    assert reply.routing.attempts[0].error_code == "ResourceNotFoundException"
    assert typo_router.snapshot().target("primary").breaker is BreakerState.OPEN
    assert standin.unknown_calls() == {PROVISIONED + "-typo": 1}


def test_validation_errors_are_raised_unchanged_and_never_retried(
    standin: StandIn, router: Router, recorder: Recorder, make_client: ClientFactory
) -> None:
    standin.target(PROVISIONED).fail_next("ValidationException")
    client = make_client(router)
    with pytest.raises(ClientError) as caught:
        client.converse(messages=MESSAGES, budget_ms=ROOMY_MS)
    error = caught.value
    assert type(error).__name__ == "ValidationException"
    assert error.response["Error"]["Code"] == "ValidationException"
    assert standin.target(HAIKU).stats().calls == 0
    assert recorder.outcomes[0][1:][0] is Outcome.ERROR
    assert router.snapshot().target("primary").breaker is BreakerState.CLOSED


def test_a_model_error_fails_over_once(
    standin: StandIn, router: Router, make_client: ClientFactory
) -> None:
    standin.target(PROVISIONED).fail_next("ModelErrorException")
    client = make_client(router)
    assert client.converse(messages=MESSAGES).routing.target == "haiku"
    standin.target(PROVISIONED).fail_next("ModelErrorException")
    standin.target(HAIKU).fail_next("ModelErrorException")
    with pytest.raises(FailoverExhausted, match="second model error") as caught:
        client.converse(messages=MESSAGES)
    assert [a.target for a in caught.value.attempts] == ["primary", "haiku"]
    assert standin.target(PROFILE).stats().calls == 0


def test_manga_requests_fail_over_from_sagemaker_to_bedrock(
    standin: StandIn, router: Router, make_client: ClientFactory
) -> None:
    standin.target(ENDPOINT).fail_next("ServiceUnavailable")
    client = make_client(router)
    reply = client.converse(messages=MESSAGES, request_class="manga")
    assert [(a.target, a.error_code) for a in reply.routing.attempts] == [
        ("manga", "ServiceUnavailable"),
        ("haiku", None),
    ]
