"""pydantic-ai's BedrockConverseModel on the drop-in client, against the local stand-in:
plain, streamed, a tool call, and the primary going down mid-conversation."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

pytest.importorskip(
    "pydantic_ai", reason="pydantic-ai not installed: pip install mangaroute[frameworks]"
)

from pydantic_ai import Agent
from pydantic_ai.exceptions import ModelHTTPError, ModelRateLimitError, ModelUnavailableError
from pydantic_ai.messages import ModelMessage, ModelResponse, ToolCallPart
from pydantic_ai.models.bedrock import BedrockConverseModel
from pydantic_ai.providers.bedrock import BedrockProvider

import mangaroute
from mangaroute.dropin import RoutedBedrockRuntime
from mangaroute.testing import StandIn
from tests.dropin.support import HAIKU, PROVISIONED, Decisions

QUESTION = "Which volume of Frieren comes next?"


@pytest.fixture(autouse=True)
def run_sync_loop() -> Iterator[None]:
    """``Agent.run_sync`` runs on the thread's event loop and leaves it open for the next
    call (pydantic_ai._utils.get_event_loop); give it one the test closes."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield
    asyncio.set_event_loop(None)
    loop.close()


def _agent(bedrock: RoutedBedrockRuntime) -> Agent[None, str]:
    """The one line that changes: ``bedrock_client=`` is the drop-in client."""
    model = BedrockConverseModel(
        "mangaroute/chat", provider=BedrockProvider(bedrock_client=bedrock)
    )
    return Agent(model, instructions="You are MangaAssist.")


def _answered(standin: StandIn) -> tuple[int, int]:
    return standin.target(PROVISIONED).stats().calls, standin.target(HAIKU).stats().calls


def test_run(bedrock: RoutedBedrockRuntime, standin: StandIn) -> None:
    result = _agent(bedrock).run_sync(QUESTION)
    assert len(result.output.split()) == 8
    assert (result.usage.input_tokens, result.usage.output_tokens) == (14, 8)
    assert _answered(standin) == (1, 0)
    assert bedrock.unrouted_calls() == {}


def test_run_stream(bedrock: RoutedBedrockRuntime, standin: StandIn) -> None:
    agent = _agent(bedrock)

    async def streamed() -> list[str]:
        async with agent.run_stream(QUESTION) as run:
            return [delta async for delta in run.stream_text(delta=True, debounce_by=None)]

    deltas = asyncio.run(streamed())
    assert len(deltas) == 8  # one per stand-in token, as ConverseStream sent them
    assert len("".join(deltas).split()) == 8
    assert _answered(standin) == (1, 0)


def test_a_tool_call_round_trip(bedrock: RoutedBedrockRuntime, standin: StandIn) -> None:
    agent = _agent(bedrock)
    asked: list[str] = []

    @agent.tool_plain
    def volume_count(series: str) -> int:
        """How many volumes a manga series has."""
        asked.append(series)
        return 14

    result = agent.run_sync("How many volumes of Frieren are out?")
    assert asked == ["Frieren"]
    calls = [
        part
        for message in result.all_messages()
        if isinstance(message, ModelResponse)
        for part in message.parts
        if isinstance(part, ToolCallPart)
    ]
    assert [(c.tool_name, c.args_as_dict()) for c in calls] == [
        ("volume_count", {"series": "Frieren"})
    ]
    assert len(result.output.split()) == 8
    assert _answered(standin) == (2, 0)


async def _streamed_turn(
    agent: Agent[None, str], prompt: str, history: list[ModelMessage]
) -> tuple[str, list[ModelMessage]]:
    async with agent.run_stream(prompt, message_history=history) as run:
        output = await run.get_output()
    return output, run.all_messages()


@pytest.mark.parametrize("streamed", [False, True])
def test_the_primary_going_down_mid_conversation_is_invisible(
    bedrock: RoutedBedrockRuntime, standin: StandIn, decisions: Decisions, streamed: bool
) -> None:
    agent = _agent(bedrock)
    history: list[ModelMessage] = []
    with mangaroute.context(session_id="user-42", budget_ms=30_000):
        for turn in range(4):
            if turn == 2:
                standin.target(PROVISIONED).fail_with("ThrottlingException")
            prompt = QUESTION if turn == 0 else "And then?"
            if streamed:
                text, history = asyncio.run(_streamed_turn(agent, prompt, history))
            else:
                result = agent.run_sync(prompt, message_history=history)
                text = result.output
                history = result.all_messages()
            assert len(text.split()) == 8
    assert len(history) == 8
    assert standin.target(PROVISIONED).stats().outcomes == {"ok": 2, "ThrottlingException": 2}
    assert standin.target(HAIKU).stats().calls == 2
    assert decisions.targets == ["primary"] * 4


def test_the_context_reaches_calls_pydantic_ai_runs_in_worker_threads(
    bedrock: RoutedBedrockRuntime, decisions: Decisions
) -> None:
    model = BedrockConverseModel(
        "mangaroute/split", provider=BedrockProvider(bedrock_client=bedrock)
    )
    agent = Agent(model)
    for session_id in ("user-1", "user-2", "user-3", "user-4"):
        with mangaroute.context(session_id=session_id):
            for _ in range(3):
                agent.run_sync(QUESTION)  # boto3 runs in an anyio worker thread
    per_session = [decisions.targets[i : i + 3] for i in range(0, 12, 3)]
    assert all(len(set(picks)) == 1 for picks in per_session), per_session
    assert {picks[0] for picks in per_session} == {"primary", "haiku"}


@pytest.mark.parametrize(
    ("scripted", "category", "status"),
    [
        ("ThrottlingException", ModelRateLimitError, 429),
        ("ServiceUnavailableException", ModelUnavailableError, 503),
    ],
)
def test_when_no_target_answers_pydantic_ai_sees_bedrocks_error(
    bedrock: RoutedBedrockRuntime,
    standin: StandIn,
    scripted: str,
    category: type[Exception],
    status: int,
) -> None:
    model = BedrockConverseModel(
        "mangaroute/solo", provider=BedrockProvider(bedrock_client=bedrock)
    )
    standin.target(PROVISIONED).fail_with(scripted)
    with pytest.raises(ModelHTTPError) as caught:
        Agent(model).run_sync(QUESTION)
    assert isinstance(caught.value, category)
    assert caught.value.status_code == status
    assert caught.value.body["Error"]["Code"] == scripted  # type: ignore[index]
