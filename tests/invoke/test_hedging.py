"""Hedging: off by default; when on, the first fallback races a slow primary, within budget."""

from __future__ import annotations

import asyncio
import gc

from mangaroute import Outcome, Router
from mangaroute.invoke import HedgePolicy, InvokeSettings
from mangaroute.testing import Latency, StandIn, TargetScript
from tests.invoke.conftest import ClientFactory
from tests.invoke.support import (
    HAIKU,
    MESSAGES,
    PROVISIONED,
    ROOMY_MS,
    SCALE,
    SLOW_MS,
    Recorder,
)

SLOW = TargetScript(latency=Latency(SLOW_MS), output_tokens=8)


def hedging(ratio: float = 1.0, window: int = 1000) -> InvokeSettings:
    policy = HedgePolicy(after_fraction=0.1, max_ratio=ratio, window=window)
    return InvokeSettings(time_scale=SCALE, hedge=policy)


def test_no_hedging_by_default(
    standin: StandIn, router: Router, make_client: ClientFactory
) -> None:
    standin.target(PROVISIONED).set_script(TargetScript(latency=Latency(300)))
    reply = make_client(router).converse(messages=MESSAGES, budget_ms=ROOMY_MS)
    assert not reply.routing.hedged and standin.target(HAIKU).stats().calls == 0


def test_a_hedge_wins_and_the_slow_primary_is_abandoned(
    standin: StandIn, router: Router, recorder: Recorder, make_client: ClientFactory
) -> None:
    standin.target(PROVISIONED).set_script(SLOW)
    client = make_client(router, settings=hedging())
    client.warm(ROOMY_MS)
    client.converse(messages=MESSAGES, request_class="profile")  # earns the hedge budget
    reply = client.converse(messages=MESSAGES, budget_ms=ROOMY_MS)
    routing = reply.routing
    assert routing.hedged and routing.target == "haiku"
    assert routing.latency_ms < SLOW_MS
    assert [(a.target, a.kind.value, a.outcome) for a in routing.attempts] == [
        ("primary", "primary", "abandoned"),
        ("haiku", "hedge", "ok"),
    ]
    assert routing.attempts[1].started_ms >= ROOMY_MS / 10  # hedged after 10 % of the budget
    client.close()  # waits for the abandoned call, which records its own outcome
    assert [o[0:2] for o in recorder.of("primary")] == [("primary", Outcome.OK)]


def test_a_losing_stream_is_cancelled_and_closed(
    standin: StandIn, router: Router, recorder: Recorder, make_client: ClientFactory
) -> None:
    standin.target(PROVISIONED).set_script(SLOW)
    client = make_client(router, settings=hedging())
    client.warm(ROOMY_MS)
    client.converse(messages=MESSAGES, request_class="profile")
    with client.converse_stream(messages=MESSAGES, budget_ms=ROOMY_MS) as stream:
        events = list(stream)
    assert stream.routing.target == "haiku" and events
    assert [(a.target, a.outcome) for a in stream.routing.attempts] == [
        ("primary", "cancelled"),
        ("haiku", "ok"),
    ]
    client.close()
    assert recorder.of("primary") == []  # cancelled: released, not recorded
    assert router.pending(stream.routing.decision_id) is None
    assert standin.target(PROVISIONED).stats().operations == {"ConverseStream": 1}
    gc.collect()


def test_hedges_stay_within_their_budget(
    standin: StandIn, router: Router, make_client: ClientFactory
) -> None:
    # answers at 15 s, after the hedge point (10 % of the budget) and far inside the budget
    standin.target(PROVISIONED).set_script(TargetScript(latency=Latency(15_000), output_tokens=8))
    client = make_client(router, settings=hedging(ratio=0.05, window=1000))
    client.warm(ROOMY_MS)

    async def run() -> list[bool]:
        gate = asyncio.Semaphore(10)

        async def one() -> bool:
            async with gate:  # each call wants a hedge at 10 s; the budget allows 5 %
                reply = await client.aconverse(messages=MESSAGES, budget_ms=ROOMY_MS)
                return reply.routing.hedged

        return await asyncio.gather(*(one() for _ in range(120)))

    hedged = asyncio.run(run())
    assert 1 <= sum(hedged) <= 6  # at most 5 % extra calls
    client.close()
    primary = standin.target(PROVISIONED).stats().calls
    assert primary == 120 and standin.target(HAIKU).stats().calls == sum(hedged)
