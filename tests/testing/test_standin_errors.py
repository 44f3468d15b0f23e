"""Every scripted error reaches boto3 as the exception botocore would raise for the real API."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ClientError, EventStreamError
from standin_helpers import HAIKU, MESSAGES
from urllib3.exceptions import ProtocolError

from mangaroute.testing import (
    BEDROCK_ERRORS,
    BEDROCK_STREAM_EXCEPTIONS,
    DISCONNECT,
    SAGEMAKER_ERRORS,
    StandIn,
    StreamFailure,
    TargetScript,
)


def _modelled_statuses(service: str, operation: str) -> dict[str, int]:
    model = botocore.session.get_session().get_service_model(service)
    return {
        shape.name: shape.metadata["error"]["httpStatusCode"]
        for shape in model.operation_model(operation).error_shapes
    }


def test_bedrock_statuses_match_botocore_service_model() -> None:
    for operation in ("Converse", "ConverseStream"):
        assert _modelled_statuses("bedrock-runtime", operation) == dict(BEDROCK_ERRORS)


def test_sagemaker_statuses_match_botocore_service_model() -> None:
    modelled = _modelled_statuses("sagemaker-runtime", "InvokeEndpoint")
    assert {k: v for k, v in SAGEMAKER_ERRORS.items() if k != "ThrottlingException"} == modelled


def test_stream_exception_members_match_botocore_service_model() -> None:
    model = botocore.session.get_session().get_service_model("bedrock-runtime")
    members = model.shape_for("ConverseStreamOutput").members
    assert {name for name, shape in members.items() if shape.metadata.get("exception")} == set(
        BEDROCK_STREAM_EXCEPTIONS
    )


@pytest.fixture
def standin() -> Iterator[StandIn]:
    with StandIn(models={HAIKU: TargetScript()}) as running:
        yield running


@pytest.mark.parametrize("operation", ["converse", "converse_stream"])
@pytest.mark.parametrize(("code", "status"), sorted(BEDROCK_ERRORS.items()))
def test_every_bedrock_error_surfaces_with_its_code(
    standin: StandIn, client_for: Any, operation: str, code: str, status: int
) -> None:
    standin.target(HAIKU).fail_next(code)
    with pytest.raises(ClientError) as caught:
        getattr(client_for(standin), operation)(modelId=HAIKU, messages=MESSAGES)
    assert caught.value.response["Error"]["Code"] == code
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert type(caught.value).__name__ == code  # botocore's modelled exception class


@pytest.mark.parametrize("member", sorted(BEDROCK_STREAM_EXCEPTIONS))
def test_in_stream_exception_surfaces_from_the_iterator(client_for: Any, member: str) -> None:
    script = TargetScript(
        output_tokens=6, stream_failure=StreamFailure(after_chunks=2, error=member)
    )
    with StandIn(models={HAIKU: script}) as standin:
        response = client_for(standin).converse_stream(modelId=HAIKU, messages=MESSAGES)
        seen = []
        with (
            contextlib.closing(response["stream"]) as stream,
            pytest.raises(EventStreamError) as caught,
        ):
            for event in stream:
                seen.append(next(iter(event)))
        assert caught.value.response["Error"]["Code"] == member  # lower camel case, as on the wire
        assert seen == ["messageStart", "contentBlockDelta", "contentBlockDelta"]
        assert standin.target(HAIKU).stats().outcomes == {f"stream:{member}": 1}


def test_pascal_case_stream_errors_are_accepted(client_for: Any) -> None:
    failure = StreamFailure(after_chunks=0, error="ThrottlingException")
    assert failure.error == "throttlingException"
    with StandIn(models={HAIKU: TargetScript(stream_failure=failure)}) as standin:
        response = client_for(standin).converse_stream(modelId=HAIKU, messages=MESSAGES)
        with (
            contextlib.closing(response["stream"]) as stream,
            pytest.raises(EventStreamError) as caught,
        ):
            list(stream)
    assert caught.value.response["Error"]["Code"] == "throttlingException"


def test_disconnect_mid_stream_breaks_the_connection(client_for: Any) -> None:
    script = TargetScript(stream_failure=StreamFailure(after_chunks=1, error=DISCONNECT))
    with StandIn(models={HAIKU: script}) as standin:
        response = client_for(standin).converse_stream(modelId=HAIKU, messages=MESSAGES)
        with contextlib.closing(response["stream"]) as stream, pytest.raises(ProtocolError):
            list(stream)  # botocore does not wrap urllib3's error here


def test_stream_failure_does_not_touch_converse(client_for: Any) -> None:
    script = TargetScript(stream_failure=StreamFailure(after_chunks=0))
    with StandIn(models={HAIKU: script}) as standin:
        response = client_for(standin).converse(modelId=HAIKU, messages=MESSAGES)
    assert response["stopReason"] == "end_turn"


def test_stream_failure_after_the_last_delta_drops_the_trailer(client_for: Any) -> None:
    script = TargetScript(output_tokens=2, stream_failure=StreamFailure(after_chunks=99))
    with StandIn(models={HAIKU: script}) as standin:
        response = client_for(standin).converse_stream(modelId=HAIKU, messages=MESSAGES)
        seen = []
        with contextlib.closing(response["stream"]) as stream, pytest.raises(EventStreamError):
            for event in stream:
                seen.append(next(iter(event)))
    assert seen == ["messageStart", "contentBlockDelta", "contentBlockDelta"]
