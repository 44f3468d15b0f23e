"""The drop-in bedrock-runtime client through real boto3 against the local stand-in: what is
routed, what passes through, the stream's shape, context, and errors as boto3 raises them."""

from __future__ import annotations

import contextlib
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, ParamValidationError

import mangaroute
from mangaroute import InvalidRequest, Router
from mangaroute.dropin import RoutedBedrockRuntime
from mangaroute.dropin.errors import client_error
from mangaroute.testing import StandIn
from tests.dropin.conftest import DropinFactory
from tests.dropin.support import HAIKU, PROVISIONED, REGION, Decisions
from tests.invoke.support import MESSAGES

TOOLS = {
    "tools": [
        {
            "toolSpec": {
                "name": "volume_count",
                "description": "How many volumes a manga series has",
                "inputSchema": {"json": {"type": "object"}},
            }
        }
    ]
}


def _calls(standin: StandIn, model_id: str) -> int:
    return standin.target(model_id).stats().calls


@pytest.mark.parametrize("model_id", ["chat", "mangaroute/chat"])
def test_a_model_id_naming_a_class_is_routed(
    bedrock: RoutedBedrockRuntime, standin: StandIn, model_id: str
) -> None:
    reply = bedrock.converse(modelId=model_id, messages=MESSAGES)
    assert reply["stopReason"] == "end_turn"
    assert reply["usage"]["outputTokens"] == 8
    assert reply.routing.request_class == "chat"
    assert reply.routing.target == "primary"
    assert (_calls(standin, PROVISIONED), _calls(standin, HAIKU)) == (1, 0)
    assert bedrock.unrouted_calls() == {}


def test_aliases_and_a_namespace_name_routed_ids(
    make_dropin: DropinFactory, router: Router, standin: StandIn
) -> None:
    bedrock = make_dropin(router, namespace="mangaassist", aliases={"fast-chat": "chat"})
    for model_id in ("mangaassist/chat", "fast-chat", "solo"):
        assert bedrock.converse(modelId=model_id, messages=MESSAGES).routing.target == "primary"
    assert bedrock.routed_model_ids["mangaassist/split"] == "split"
    assert "mangaroute/chat" not in bedrock.routed_model_ids


def test_an_alias_to_no_class_is_refused_by_name(
    make_dropin: DropinFactory, router: Router
) -> None:
    with pytest.raises(InvalidRequest, match=r"aliases\['fast'\] = 'nope' is not a request class"):
        make_dropin(router, aliases={"fast": "nope"})


def test_any_other_model_id_passes_through_and_is_counted(
    bedrock: RoutedBedrockRuntime, standin: StandIn
) -> None:
    reply = bedrock.converse(modelId=HAIKU, messages=MESSAGES)
    assert not hasattr(reply, "routing")
    assert reply["output"]["message"]["role"] == "assistant"
    response = bedrock.converse_stream(modelId=PROVISIONED, messages=MESSAGES)
    with contextlib.closing(response["stream"]) as stream:
        assert "messageStart" in next(iter(stream))
    assert bedrock.unrouted_calls() == {HAIKU: 1, PROVISIONED: 1}
    assert (_calls(standin, PROVISIONED), _calls(standin, HAIKU)) == (1, 1)


def test_a_routed_stream_has_boto3s_shape(bedrock: RoutedBedrockRuntime) -> None:
    direct = bedrock.converse_stream(modelId=PROVISIONED, messages=MESSAGES, toolConfig=TOOLS)
    with contextlib.closing(direct["stream"]) as stream:
        direct_events = list(stream)
    routed = bedrock.converse_stream(modelId="chat", messages=MESSAGES, toolConfig=TOOLS)
    with contextlib.closing(routed["stream"]) as stream:
        routed_events = list(stream)
    assert [list(e) for e in routed_events] == [list(e) for e in direct_events]
    assert routed_events[1] == {
        "contentBlockStart": {
            "contentBlockIndex": 0,
            "start": {"toolUse": {"toolUseId": routed_events[1]["contentBlockStart"]["start"]
                                  ["toolUse"]["toolUseId"], "name": "volume_count"}},
        }
    }  # fmt: skip
    assert routed_events[4] == {"messageStop": {"stopReason": "tool_use"}}
    assert routed.routing.target == "primary"
    assert routed["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_an_outage_of_the_primary_fails_over(
    bedrock: RoutedBedrockRuntime, standin: StandIn
) -> None:
    standin.target(PROVISIONED).fail_with("ServiceUnavailableException")
    reply = bedrock.converse(modelId="chat", messages=MESSAGES)
    assert reply.routing.target == "haiku"
    assert [(a.target, a.error_code) for a in reply.routing.attempts] == [
        ("primary", "ServiceUnavailableException"),
        ("haiku", None),
    ]


@pytest.mark.parametrize(
    ("scripted", "raised", "status"),
    [
        ("ThrottlingException", "ThrottlingException", 429),
        ("ServiceUnavailableException", "ServiceUnavailableException", 503),
        ("InternalServerException", "InternalServerException", 500),
        ("ModelTimeoutException", "ModelTimeoutException", 408),
        ("ResourceNotFoundException", "ServiceUnavailableException", 503),
    ],
)
def test_when_no_target_answers_boto3s_exception_is_raised(
    bedrock: RoutedBedrockRuntime, standin: StandIn, scripted: str, raised: str, status: int
) -> None:
    standin.target(PROVISIONED).fail_with(scripted)
    with pytest.raises(ClientError) as caught:
        bedrock.converse(modelId="solo", messages=MESSAGES)
    error = caught.value
    assert type(error) is getattr(bedrock.exceptions, raised)
    assert error.response["Error"]["Code"] == raised
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert error.operation_name == "Converse"
    assert [(a.target, a.error_code) for a in error.routing.attempts] == [("primary", scripted)]
    assert isinstance(error.__cause__, mangaroute.invoke.FailoverExhausted)


def test_errors_are_the_pass_through_clients_classes_across_sessions(
    make_dropin: DropinFactory, router: Router, standin: StandIn
) -> None:
    own = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x")
    mine = own.client("bedrock-runtime", region_name=REGION, endpoint_url=standin.endpoint_url)
    bedrock = make_dropin(router, client=mine)  # mangaroute's clients: another session
    standin.target(PROVISIONED).fail_with("ThrottlingException")
    with pytest.raises(mine.exceptions.ThrottlingException):
        bedrock.converse_stream(modelId="solo", messages=MESSAGES)
    standin.target(PROVISIONED).fail_with("ValidationException")  # raised unchanged ...
    with pytest.raises(mine.exceptions.ValidationException):  # ... yet as the caller's class
        bedrock.converse(modelId="solo", messages=MESSAGES)
    mine.close()


def test_an_unknown_class_in_the_namespace_is_a_validation_error(
    bedrock: RoutedBedrockRuntime, standin: StandIn
) -> None:
    with pytest.raises(bedrock.exceptions.ValidationException) as caught:
        bedrock.converse(modelId="mangaroute/nope", messages=MESSAGES)
    message = caught.value.response["Error"]["Message"]
    assert message.startswith("modelId 'mangaroute/nope' names no request class")
    assert "mangaroute/chat" in message
    assert not standin.unknown_calls()  # nothing was sent


def test_missing_messages_is_botocores_param_validation_error(
    bedrock: RoutedBedrockRuntime,
) -> None:
    with pytest.raises(ParamValidationError, match='"messages"'):
        bedrock.converse(modelId="chat")


def test_budget_and_session_come_from_request_metadata_or_the_context(
    bedrock: RoutedBedrockRuntime, decisions: Decisions
) -> None:
    def budget(**kwargs: Any) -> float | None:
        return bedrock.converse(modelId="chat", messages=MESSAGES, **kwargs).routing.budget_ms

    assert budget() is None
    assert budget(requestMetadata={"mangaroute.budget_ms": "1500"}) == 1500.0
    with mangaroute.context(budget_ms=2500):
        assert budget() == 2500.0
        assert budget(requestMetadata={"mangaroute.budget_ms": "900", "team": "a"}) == 900.0
        with mangaroute.context(session_id="user-1"):
            assert budget() == 2500.0  # inherited from the outer block
    assert budget() is None


def test_a_session_id_makes_picks_sticky(
    bedrock: RoutedBedrockRuntime, decisions: Decisions
) -> None:
    for session_id in ("user-1", "user-2", "user-3", "user-4"):
        with mangaroute.context(session_id=session_id):
            for _ in range(5):
                bedrock.converse(modelId="split", messages=MESSAGES)
        bedrock.converse(
            modelId="split",
            messages=MESSAGES,
            requestMetadata={"mangaroute.session_id": session_id},
        )
    per_session = [decisions.targets[i : i + 6] for i in range(0, 24, 6)]
    assert all(len(set(picks)) == 1 for picks in per_session), per_session
    assert {picks[0] for picks in per_session} == {"primary", "haiku"}


def test_a_bad_budget_in_metadata_is_a_validation_error(bedrock: RoutedBedrockRuntime) -> None:
    with pytest.raises(bedrock.exceptions.ValidationException) as caught:
        bedrock.converse(
            modelId="chat", messages=MESSAGES, requestMetadata={"mangaroute.budget_ms": "soon"}
        )
    assert caught.value.response["Error"]["Message"] == (
        "requestMetadata['mangaroute.budget_ms'] must be a positive number of milliseconds "
        "(e.g. '1500'), got 'soon'"
    )


def test_everything_else_is_the_real_clients(bedrock: RoutedBedrockRuntime) -> None:
    real = bedrock._client
    assert bedrock.meta is real.meta
    assert bedrock.meta.region_name == REGION
    assert bedrock.exceptions is real.exceptions
    assert bedrock.invoke_model == real.invoke_model
    assert bedrock.apply_guardrail == real.apply_guardrail
    if hasattr(real, "count_tokens"):  # newer than the boto3 floor (1.38)
        assert bedrock.count_tokens == real.count_tokens
    with pytest.raises(AttributeError):
        bedrock.no_such_operation  # noqa: B018


@pytest.mark.parametrize(
    ("code", "raised"),
    [
        ("ValidationError", "ValidationException"),  # SageMaker's, same meaning
        ("ModelError", "ModelErrorException"),
        ("ServiceUnavailable", "ServiceUnavailableException"),
        ("ValidationException", "ValidationException"),
        ("UnrecognizedClientException", "ClientError"),  # no meaning given: as it came
    ],
)
def test_an_error_the_rules_raise_unchanged_gets_bedrocks_code(
    bedrock: RoutedBedrockRuntime, code: str, raised: str
) -> None:
    original = ClientError({"Error": {"Code": code, "Message": "scripted"}}, "InvokeEndpoint")
    error = client_error(bedrock._client, original, "Converse")
    assert type(error).__name__ == raised
    assert isinstance(error, ClientError)
    assert error.response["Error"] == {"Code": raised if raised != "ClientError" else code,
                                       "Message": "scripted"}  # fmt: skip


def test_botocores_own_errors_are_raised_as_they_are(bedrock: RoutedBedrockRuntime) -> None:
    with pytest.raises(ParamValidationError, match="maxTokens") as caught:
        bedrock.converse(modelId="chat", messages=MESSAGES, inferenceConfig={"maxTokens": 0})
    assert caught.value.__cause__ is None


def test_a_streams_response_metadata_is_its_own(bedrock: RoutedBedrockRuntime) -> None:
    first = bedrock.converse_stream(modelId="chat", messages=MESSAGES)
    second = bedrock.converse_stream(modelId="chat", messages=MESSAGES)
    for response in (first, second):
        list(response["stream"])
    first["ResponseMetadata"]["HTTPHeaders"]["x-seen"] = "1"
    assert second["ResponseMetadata"] == {"HTTPStatusCode": 200, "HTTPHeaders": {}}


def test_a_deadline_in_the_context_is_shared_by_every_call(
    bedrock: RoutedBedrockRuntime, standin: StandIn
) -> None:
    with mangaroute.context(deadline=bedrock.deadline(60_000)):
        first = bedrock.converse(modelId="chat", messages=MESSAGES).routing.budget_ms
        second = bedrock.converse(modelId="chat", messages=MESSAGES).routing.budget_ms
        with mangaroute.context(budget_ms=1500):  # an inner budget replaces the deadline
            inner = bedrock.converse(modelId="chat", messages=MESSAGES).routing.budget_ms
    assert first is not None and second is not None
    assert 60_000 >= first > second  # what is left of one deadline, not a fresh budget
    assert inner == 1500.0


def test_a_passed_deadline_is_a_model_timeout_and_calls_nothing(
    bedrock: RoutedBedrockRuntime, standin: StandIn
) -> None:
    with (
        mangaroute.context(deadline=bedrock.deadline(0)),
        pytest.raises(bedrock.exceptions.ModelTimeoutException) as caught,
    ):
        bedrock.converse(modelId="chat", messages=MESSAGES)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 408
    assert isinstance(caught.value.__cause__, mangaroute.invoke.DeadlineExceeded)
    assert (_calls(standin, PROVISIONED), _calls(standin, HAIKU)) == (0, 0)


def test_a_missing_model_id_is_botocores_error_and_not_counted(
    bedrock: RoutedBedrockRuntime,
) -> None:
    with pytest.raises(ParamValidationError, match='"modelId"'):
        bedrock.converse(messages=MESSAGES)
    assert bedrock.unrouted_calls() == {}


def test_a_bad_endpoint_fails_before_any_thread_starts(router: Router) -> None:
    with pytest.raises(ValueError, match="Invalid endpoint"):
        mangaroute.bedrock_runtime(router, endpoint_url="not a url")
    # the autouse fixture fails the test if a refresher thread was left running


def test_max_tokens_tells_the_router_how_long_the_answer_may_be(
    bedrock: RoutedBedrockRuntime, router: Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Frameworks set ``inferenceConfig.maxTokens``: deadline-aware policies get it as the
    call's answer length (0 - the policy's typical length - when it is not set)."""
    seen: list[int] = []
    choose = router.choose

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get("output_tokens", 0))
        return choose(*args, **kwargs)

    monkeypatch.setattr(router, "choose", spy)
    bedrock.converse(modelId="chat", messages=MESSAGES, inferenceConfig={"maxTokens": 256})
    bedrock.converse(modelId="chat", messages=MESSAGES)
    streamed = bedrock.converse_stream(
        modelId="chat", messages=MESSAGES, inferenceConfig={"maxTokens": 64}
    )
    list(streamed["stream"])
    assert seen == [256, 0, 64]
