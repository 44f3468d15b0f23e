"""The asyncio entry point under many concurrent calls."""

from __future__ import annotations

import asyncio
import contextlib

from mangaroute import Router
from mangaroute.invoke import InvokeSettings
from mangaroute.testing import Latency, StandIn, TargetScript
from tests.invoke.conftest import ClientFactory
from tests.invoke.support import HAIKU, MESSAGES, PROVISIONED, SCALE, Recorder


def test_many_concurrent_calls(
    standin: StandIn, router: Router, recorder: Recorder, make_client: ClientFactory
) -> None:
    script = TargetScript(latency=Latency(100, 300), output_tokens=8)
    for model in (PROVISIONED, HAIKU):
        standin.target(model).set_script(script)
    standin.target(PROVISIONED).fail_next("ThrottlingException", calls=20)
    client = make_client(router, max_workers=16, settings=InvokeSettings(time_scale=SCALE))

    async def run() -> list[str | None]:
        calls = [
            client.aconverse(messages=MESSAGES, session_id=f"s{i}")  # 2 cores: no budget
            for i in range(300)
        ]
        return [reply.routing.target for reply in await asyncio.gather(*calls)]

    answered_by = asyncio.run(run())
    assert len(answered_by) == 300 and None not in answered_by
    assert answered_by.count("haiku") >= 20
    assert len(recorder.outcomes) == 320  # 300 answers + 20 throttles
    assert sum(o[1].value == "throttled" for o in recorder.outcomes) == 20
    assert not router.snapshot().target("primary").in_flight


def test_a_cancelled_call_leaves_nothing_behind(
    standin: StandIn, router: Router, recorder: Recorder, make_client: ClientFactory
) -> None:
    # 1 s of real time: the call is still in flight when it is cancelled, however loaded
    standin.target(PROVISIONED).set_script(TargetScript(latency=Latency(50_000)))
    client = make_client(router)

    async def run() -> None:
        task = asyncio.create_task(client.aconverse(messages=MESSAGES))
        for _ in range(10_000):  # until the attempt reaches the target, not a fixed pause
            if standin.target(PROVISIONED).stats().calls:
                break
            await asyncio.sleep(0.001)
        assert not task.done()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(run())
    client.close()  # the abandoned attempt finishes and records itself
    assert [o[0] for o in recorder.outcomes] == ["primary"]
    assert not router.snapshot().target("primary").in_flight
