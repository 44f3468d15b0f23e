"""Routed ConverseStream: TTFT, failover only before the first token, streams always closed."""

from __future__ import annotations

import asyncio
import gc

import pytest
from botocore.exceptions import EventStreamError
from urllib3.exceptions import ProtocolError

from mangaroute import Outcome, Router
from mangaroute.invoke import AsyncRoutedStream, FailoverExhausted
from mangaroute.testing import Latency, StandIn, StreamFailure, TargetScript
from tests.invoke.conftest import ClientFactory
from tests.invoke.support import HAIKU, MESSAGES, PROFILE, PROVISIONED, ROOMY_MS, Recorder


def texts(events: list[dict[str, object]]) -> str:
    return "".join(
        e["contentBlockDelta"]["delta"]["text"]  # type: ignore[index]
        for e in events
        if "contentBlockDelta" in e
    )


def test_a_stream_records_its_time_to_first_token(
    standin: StandIn, router: Router, recorder: Recorder, make_client: ClientFactory
) -> None:
    script = TargetScript(latency=Latency(200, per_token_ms=20), output_tokens=10)
    standin.target(PROVISIONED).set_script(script)
    client = make_client(router)
    with client.converse_stream(messages=MESSAGES, budget_ms=ROOMY_MS) as stream:
        assert stream.routing.target == "primary" and stream.ttft_ms is not None
        events = list(stream)
    kinds = [next(iter(e)) for e in events]
    assert kinds[0] == "messageStart" and kinds[-1] == "metadata"
    assert kinds.count("contentBlockDelta") == 10
    assert len(texts(events).split()) == 10
    ((name, outcome, latency, ttft, code),) = recorder.outcomes
    assert (name, outcome, code) == ("primary", Outcome.OK, None)
    assert ttft == pytest.approx(stream.ttft_ms) and ttft >= 200
    assert latency == pytest.approx(stream.latency_ms) and latency >= ttft + 9 * 20
    assert stream.usage == {"inputTokens": 9, "outputTokens": 10}
    assert router.snapshot().target("primary").ttft_p50_ms == pytest.approx(ttft, rel=0.05)


def test_failover_before_the_first_token(
    standin: StandIn, router: Router, recorder: Recorder, make_client: ClientFactory
) -> None:
    failure = StreamFailure(after_chunks=0, error="throttlingException")
    standin.target(PROVISIONED).set_script(TargetScript(stream_failure=failure))
    standin.target(HAIKU).fail_next("ServiceUnavailableException")
    client = make_client(router)
    with client.converse_stream(messages=MESSAGES) as stream:
        events = list(stream)
    assert stream.routing.target == "profile"
    assert [(a.target, a.outcome, a.error_code) for a in stream.routing.attempts] == [
        ("primary", "throttled", "ThrottlingException"),
        ("haiku", "error", "ServiceUnavailableException"),
        ("profile", "ok", None),
    ]
    assert texts(events)
    assert [o[0] for o in recorder.outcomes] == ["primary", "haiku", "profile"]


@pytest.mark.parametrize("error", ["modelStreamErrorException", "disconnect"])
def test_a_mid_stream_error_is_raised_as_is_and_never_retried(
    error: str,
    standin: StandIn,
    router: Router,
    recorder: Recorder,
    make_client: ClientFactory,
) -> None:
    script = TargetScript(output_tokens=10, stream_failure=StreamFailure(3, error=error))
    standin.target(PROVISIONED).set_script(script)
    client = make_client(router)
    stream = client.converse_stream(messages=MESSAGES)
    received = []
    expected = ProtocolError if error == "disconnect" else EventStreamError
    with pytest.raises(expected) as caught:
        received.extend(stream)
    if error != "disconnect":
        assert caught.value.response["Error"]["Code"] == error  # type: ignore[attr-defined]
    assert sum("contentBlockDelta" in e for e in received) == 3
    assert standin.target(HAIKU).stats().calls == 0
    ((name, outcome, latency, ttft, code),) = recorder.outcomes
    assert name == "primary" and outcome is Outcome.ERROR
    assert ttft is not None and ttft <= latency
    assert code == ("ProtocolError" if error == "disconnect" else "ModelStreamErrorException")
    stream.close()  # already closed: a no-op
    gc.collect()  # an unclosed socket would warn here (warnings are errors)


def test_leaving_a_stream_early_releases_the_decision(
    standin: StandIn, router: Router, recorder: Recorder, make_client: ClientFactory
) -> None:
    standin.target(PROVISIONED).set_script(TargetScript(output_tokens=50))
    client = make_client(router)
    with client.converse_stream(messages=MESSAGES) as stream:
        next(stream)
        next(stream)
    assert recorder.outcomes == []
    assert router.pending(stream.routing.decision_id) is None
    assert list(stream) == []
    gc.collect()


def test_no_target_reaching_a_first_token_raises(
    standin: StandIn, router: Router, make_client: ClientFactory
) -> None:
    for model in (PROVISIONED, HAIKU, PROFILE):
        standin.target(model).fail_with("InternalServerException")
    client = make_client(router)
    with pytest.raises(FailoverExhausted) as caught:
        client.converse_stream(messages=MESSAGES)
    assert len(caught.value.attempts) == 3


def test_a_sagemaker_answer_is_replayed_as_a_stream(
    router: Router, recorder: Recorder, make_client: ClientFactory
) -> None:
    client = make_client(router)
    with client.converse_stream(messages=MESSAGES, request_class="manga") as stream:
        events = list(stream)
    assert stream.routing.target == "manga"
    assert [next(iter(e)) for e in events] == [
        "messageStart",
        "contentBlockDelta",
        "contentBlockStop",
        "messageStop",
        "metadata",
    ]
    ((_, outcome, latency, ttft, _),) = recorder.outcomes
    assert outcome is Outcome.OK and ttft is not None and ttft <= latency


def test_async_stream(standin: StandIn, router: Router, make_client: ClientFactory) -> None:
    standin.target(PROVISIONED).fail_next("ThrottlingException")
    client = make_client(router)

    async def main() -> tuple[AsyncRoutedStream, list[dict[str, object]]]:
        stream = await client.aconverse_stream(messages=MESSAGES)
        async with stream:
            return stream, [event async for event in stream]

    stream, events = asyncio.run(main())
    assert stream.routing.target == "haiku" and stream.ttft_ms is not None
    assert texts(events) and stream.latency_ms is not None


def test_a_stream_asks_the_router_for_a_target_by_its_first_token(
    router: Router, make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The budget of a stream is for its first token, so choose() is told so (deadline-aware
    policies then predict time to first token); a plain Converse call is answered whole."""
    seen: list[bool] = []
    choose = router.choose

    def spy(*args: object, **kwargs: object) -> object:
        seen.append(bool(kwargs.get("first_token")))
        return choose(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(router, "choose", spy)
    client = make_client(router)
    with client.converse_stream(messages=MESSAGES, budget_ms=ROOMY_MS, output_tokens=300) as s:
        list(s)
    client.converse(messages=MESSAGES, budget_ms=ROOMY_MS, output_tokens=300)
    assert seen == [True, False]
