"""Many threads and many asyncio tasks on one router: exact counts, no exceptions."""

from __future__ import annotations

import asyncio
import random
import threading

from mangaroute import Router, parse_config

from ..conftest import SMALL_CONFIG

THREADS = 8
CALLS = 100_000


def test_eight_threads_of_mixed_calls_keep_exact_counts() -> None:
    # A real clock: snapshot rebuilds race with records, as in production. Generous breaker
    # and window settings keep every target routable so the counts are predictable.
    text = SMALL_CONFIG.replace("consecutive_failures = 3", "consecutive_failures = 1000000")
    text = (
        text.replace("error_rate = 0.5", "error_rate = 1.0")
        .replace("window_s = 60", "window_s = 3600")
        .replace("bucket_s = 5", "bucket_s = 600")
    )
    text = text.replace('filters = ["healthy", "headroom"]', 'filters = ["healthy"]')
    router = Router(parse_config(text), rng=random.Random(1))
    errors: list[BaseException] = []
    recorded = [[0, 0, 0, 0] for _ in range(THREADS)]  # ok, throttled, error, by name
    start = threading.Barrier(THREADS)
    outcomes = ("ok", "throttled", "error")

    def worker(index: int) -> None:
        rng = random.Random(index)
        try:
            start.wait()
            for i in range(CALLS):
                if i % 4 == 3:
                    router.snapshot() if i % 1000 == 3 else router.choose("chat")
                    continue
                decision = router.choose("chat", budget_ms=2000.0)
                if i % 8 == 0:
                    router.record("slow", "ok", latency_ms=10.0)
                    recorded[index][3] += 1
                    router.release(decision)
                    continue
                outcome = outcomes[rng.randrange(3)]
                router.record(
                    decision,
                    outcome,
                    latency_ms=rng.uniform(1, 900),
                    input_tokens=1,
                    output_tokens=2,
                )
                recorded[index][outcomes.index(outcome)] += 1
        except BaseException as exc:  # pragma: no cover - the assertion reports it
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    views = {v.name: v for v in router.snapshot().targets}
    fast = views["fast"]
    assert fast.ok == sum(r[0] for r in recorded)
    assert fast.throttled == sum(r[1] for r in recorded)
    assert fast.errors == sum(r[2] for r in recorded)
    assert views["slow"].ok == sum(r[3] for r in recorded)
    assert fast.requests == THREADS * CALLS * 5 // 8
    assert fast.in_flight <= router.config.window.max_outstanding


def test_asyncio_tasks_share_a_router_without_blocking_the_loop() -> None:
    router = Router(parse_config(SMALL_CONFIG), rng=random.Random(2))

    async def task(n: int) -> int:
        done = 0
        for _ in range(200):
            async with router.call("chat") as call:
                await asyncio.sleep(0)
                call.tokens(10, 10)
            done += 1
        return done

    async def main() -> tuple[list[int], int]:
        ticks = 0

        async def heartbeat() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        beat = asyncio.create_task(heartbeat())
        results = await asyncio.gather(*(task(n) for n in range(50)))
        beat.cancel()
        return results, ticks

    results, ticks = asyncio.run(main())
    assert sum(results) == 10_000
    assert ticks >= 200  # the heartbeat ran between every round of the 50 tasks
    views = router.snapshot().targets
    assert sum(v.ok for v in views) == sum(v.requests for v in views) == 10_000
    assert sum(v.in_flight for v in views) == 0
