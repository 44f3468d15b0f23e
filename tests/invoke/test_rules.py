"""The failover rules table: every error maps to one recorded outcome and one verdict."""

from __future__ import annotations

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    EventStreamError,
    ParamValidationError,
    ReadTimeoutError,
)
from urllib3.exceptions import ProtocolError

from mangaroute import Outcome
from mangaroute.invoke import (
    MalformedResponse,
    UnsupportedRequest,
    Verdict,
    classify_failure,
)


def client_error(code: str, status: int, message: str = "scripted") -> ClientError:
    response = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {}}
    response["ResponseMetadata"]["HTTPStatusCode"] = status
    return ClientError(response, "Converse")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "status", "verdict", "outcome"),
    [
        ("ThrottlingException", 429, Verdict.FAILOVER, Outcome.THROTTLED),
        ("ThrottlingException", 400, Verdict.FAILOVER, Outcome.THROTTLED),  # SageMaker
        ("ServiceQuotaExceededException", 400, Verdict.FAILOVER, Outcome.THROTTLED),
        ("ServiceUnavailableException", 503, Verdict.FAILOVER, Outcome.ERROR),
        ("ServiceUnavailable", 503, Verdict.FAILOVER, Outcome.ERROR),
        ("ModelNotReadyException", 429, Verdict.FAILOVER, Outcome.ERROR),
        ("InternalServerException", 500, Verdict.FAILOVER, Outcome.ERROR),
        ("InternalFailure", 500, Verdict.FAILOVER, Outcome.ERROR),
        ("InternalDependencyException", 530, Verdict.FAILOVER, Outcome.ERROR),
        ("ModelTimeoutException", 408, Verdict.FAILOVER, Outcome.TIMEOUT),
        ("ResourceNotFoundException", 404, Verdict.EJECT, Outcome.ERROR),
        ("AccessDeniedException", 403, Verdict.EJECT, Outcome.ERROR),
        ("ValidationException", 400, Verdict.RAISE, Outcome.ERROR),
        ("ValidationError", 400, Verdict.RAISE, Outcome.ERROR),
        ("ModelErrorException", 424, Verdict.MODEL_ERROR, Outcome.ERROR),
        ("ModelError", 424, Verdict.MODEL_ERROR, Outcome.ERROR),
        ("ModelStreamErrorException", 424, Verdict.MODEL_ERROR, Outcome.ERROR),
        ("SomethingNew", 502, Verdict.FAILOVER, Outcome.ERROR),
        ("SomethingNew", 409, Verdict.RAISE, Outcome.ERROR),
    ],
)
def test_client_errors(code: str, status: int, verdict: Verdict, outcome: Outcome) -> None:
    failure = classify_failure(client_error(code, status))
    assert (failure.verdict, failure.outcome, failure.error_code) == (verdict, outcome, code)
    assert failure.recorded


@pytest.mark.parametrize(
    ("member", "verdict", "code"),
    [
        ("throttlingException", Verdict.FAILOVER, "ThrottlingException"),
        ("serviceUnavailableException", Verdict.FAILOVER, "ServiceUnavailableException"),
        ("internalServerException", Verdict.FAILOVER, "InternalServerException"),
        ("modelStreamErrorException", Verdict.MODEL_ERROR, "ModelStreamErrorException"),
        ("validationException", Verdict.RAISE, "ValidationException"),
    ],
)
def test_in_stream_exceptions_use_the_pascal_case_code(
    member: str, verdict: Verdict, code: str
) -> None:
    error = EventStreamError({"Error": {"Code": member, "Message": "m"}}, "ConverseStream")
    failure = classify_failure(error)
    assert (failure.verdict, failure.error_code) == (verdict, code)


def test_a_missing_sagemaker_endpoint_is_ejected_not_raised() -> None:
    missing = client_error("ValidationError", 400, "Endpoint manga-ft of account 1 not found.")
    assert classify_failure(missing).verdict is Verdict.EJECT
    bad_body = client_error("ValidationError", 400, "1 validation error detected: Body")
    assert classify_failure(bad_body).verdict is Verdict.RAISE


@pytest.mark.parametrize(
    ("exc", "outcome"),
    [
        (ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), Outcome.TIMEOUT),
        (ConnectTimeoutError(endpoint_url="http://127.0.0.1:1"), Outcome.TIMEOUT),
        (TimeoutError("socket"), Outcome.TIMEOUT),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), Outcome.ERROR),
        (ConnectionClosedError(endpoint_url="http://127.0.0.1:1"), Outcome.ERROR),
        (ProtocolError("Connection broken"), Outcome.ERROR),
        (ConnectionResetError(), Outcome.ERROR),
    ],
)
def test_transport_failures_fail_over(exc: Exception, outcome: Outcome) -> None:
    failure = classify_failure(exc)
    assert (failure.verdict, failure.outcome, failure.recorded) == (Verdict.FAILOVER, outcome, True)


def test_errors_that_never_reached_the_target_are_not_recorded() -> None:
    param = classify_failure(ParamValidationError(report="messages: required"))
    assert (param.verdict, param.recorded) == (Verdict.RAISE, False)
    skip = classify_failure(UnsupportedRequest("toolConfig"))
    assert (skip.verdict, skip.recorded) == (Verdict.SKIP, False)
    bug = classify_failure(KeyError("oops"))
    assert (bug.verdict, bug.recorded) == (Verdict.RAISE, False)


def test_an_unreadable_endpoint_body_is_a_model_error() -> None:
    failure = classify_failure(MalformedResponse("not TGI"))
    assert (failure.verdict, failure.recorded) == (Verdict.MODEL_ERROR, True)
