"""langchain-aws's ChatBedrockConverse on the drop-in client, against the local stand-in:
plain, streamed, a tool call, and the primary going down mid-conversation."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip(
    "langchain_aws", reason="langchain-aws not installed: pip install mangaroute[frameworks]"
)

from langchain_aws import ChatBedrockConverse
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool

import mangaroute
from mangaroute.dropin import RoutedBedrockRuntime
from mangaroute.testing import StandIn
from tests.dropin.support import HAIKU, PROVISIONED, Decisions

QUESTION = "Which volume of Frieren comes next?"


@tool
def volume_count(series: str) -> int:
    """How many volumes a manga series has."""
    return 14


def _chat(bedrock: RoutedBedrockRuntime) -> ChatBedrockConverse:
    """The one line that changes: ``client=`` is the drop-in client, ``model`` a class."""
    return ChatBedrockConverse(
        client=bedrock,
        model="mangaroute/chat",
        provider="anthropic",
        base_model_id="anthropic.claude-3-haiku-20240307-v1:0",  # streaming and tool support
    )


def _answered(standin: StandIn) -> tuple[int, int]:
    return standin.target(PROVISIONED).stats().calls, standin.target(HAIKU).stats().calls


def test_invoke(bedrock: RoutedBedrockRuntime, standin: StandIn) -> None:
    reply = _chat(bedrock).invoke(QUESTION)
    assert isinstance(reply, AIMessage)
    assert len(str(reply.content).split()) == 8
    assert reply.usage_metadata is not None
    assert (reply.usage_metadata["input_tokens"], reply.usage_metadata["output_tokens"]) == (9, 8)
    assert reply.response_metadata["stopReason"] == "end_turn"
    assert _answered(standin) == (1, 0)
    assert bedrock.unrouted_calls() == {}


def test_stream(bedrock: RoutedBedrockRuntime, standin: StandIn) -> None:
    chunks = list(_chat(bedrock).stream(QUESTION))
    texts = [block["text"] for c in chunks if isinstance(c.content, list) for block in c.content]
    assert len(texts) == 8  # one delta per stand-in token
    usage = [c.usage_metadata for c in chunks if c.usage_metadata]
    assert [(u["input_tokens"], u["output_tokens"]) for u in usage] == [(9, 8)]
    assert _answered(standin) == (1, 0)


@pytest.mark.parametrize("streamed", [False, True])
def test_a_tool_call_round_trip(
    bedrock: RoutedBedrockRuntime, standin: StandIn, streamed: bool
) -> None:
    llm = _chat(bedrock).bind_tools([volume_count])
    history: list[BaseMessage] = [HumanMessage("How many volumes of Frieren are out?")]
    if streamed:
        gathered = None
        for chunk in llm.stream(history):
            gathered = chunk if gathered is None else gathered + chunk
        assert gathered is not None
        call_message: AIMessage = gathered  # type: ignore[assignment]
    else:
        call_message = llm.invoke(history)
    [call] = call_message.tool_calls
    assert (call["name"], call["args"]) == ("volume_count", {"series": "Frieren"})
    history += [
        call_message,
        ToolMessage(str(volume_count.invoke(call["args"])), tool_call_id=call["id"]),
    ]
    answer = llm.invoke(history)
    assert answer.tool_calls == []
    assert answer.response_metadata["stopReason"] == "end_turn"
    assert _answered(standin) == (2, 0)


@pytest.mark.parametrize("streamed", [False, True])
def test_the_primary_going_down_mid_conversation_is_invisible(
    bedrock: RoutedBedrockRuntime, standin: StandIn, decisions: Decisions, streamed: bool
) -> None:
    llm = _chat(bedrock)
    history: list[BaseMessage] = [HumanMessage(QUESTION)]
    for turn in range(4):
        if turn == 2:
            standin.target(PROVISIONED).fail_with("ServiceUnavailableException")
        if streamed:
            text = "".join(
                b["text"] for c in llm.stream(history) if isinstance(c.content, list)
                for b in c.content
            )  # fmt: skip
            reply = AIMessage(text)
        else:
            reply = llm.invoke(history)
        assert len(str(reply.content).split()) == 8
        history += [reply, HumanMessage("And the one after that?")]
    primary = standin.target(PROVISIONED).stats()
    assert primary.outcomes == {"ok": 2, "ServiceUnavailableException": 2}
    assert standin.target(HAIKU).stats().calls == 2  # turns 3 and 4 failed over
    assert decisions.targets == ["primary"] * 4


def test_the_context_reaches_calls_langchain_runs_in_its_executor(
    bedrock: RoutedBedrockRuntime, decisions: Decisions
) -> None:
    llm = ChatBedrockConverse(
        client=bedrock, model="mangaroute/split", provider="anthropic", base_model_id=HAIKU
    )

    async def conversation(session_id: str) -> None:
        with mangaroute.context(session_id=session_id):
            for _ in range(3):
                await llm.ainvoke(QUESTION)  # boto3 runs in langchain's executor thread

    for session_id in ("user-1", "user-2", "user-3", "user-4"):
        asyncio.run(conversation(session_id))
    per_session = [decisions.targets[i : i + 3] for i in range(0, 12, 3)]
    assert all(len(set(picks)) == 1 for picks in per_session), per_session
    assert {picks[0] for picks in per_session} == {"primary", "haiku"}


def test_when_no_target_answers_langchain_sees_boto3s_error(
    bedrock: RoutedBedrockRuntime, standin: StandIn
) -> None:
    llm = ChatBedrockConverse(
        client=bedrock, model="mangaroute/solo", provider="anthropic", base_model_id=HAIKU
    )
    standin.target(PROVISIONED).fail_with("ThrottlingException")
    with pytest.raises(bedrock.exceptions.ThrottlingException) as caught:
        llm.invoke(QUESTION)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    retrying = llm.with_retry(
        retry_if_exception_type=(bedrock.exceptions.ThrottlingException,),
        stop_after_attempt=2,
        wait_exponential_jitter=False,
    )
    with pytest.raises(bedrock.exceptions.ThrottlingException):
        retrying.invoke(QUESTION)  # langchain's own retry recognises it and tries again
    assert standin.target(PROVISIONED).stats().outcomes == {"ThrottlingException": 3}
