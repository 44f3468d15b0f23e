"""Many threads and many asyncio tasks on one router: exact counts, no exceptions."""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter
from collections.abc import Callable

from mangaroute import Decision, Router, parse_config

from ..conftest import SMALL_CONFIG

THREADS = 8
CALLS = 100_000


def race(worker: Callable[[int], None]) -> None:
    """Run ``worker(0..THREADS-1)`` on as many threads, released together; re-raise the
    first exception any of them raised."""
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            start.wait()
            worker(index)
        except BaseException as exc:  # pragma: no cover - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def test_eight_threads_of_mixed_calls_keep_exact_counts() -> None:
    # A real clock: snapshot rebuilds race with records, as in production. Generous breaker
    # and window settings keep every target routable so the counts are predictable.
    text = SMALL_CONFIG.replace("consecutive_failures = 3", "consecutive_failures = 10000")
    text = (
        text.replace("error_rate = 0.5", "error_rate = 1.0")
        .replace("window_s = 60", "window_s = 3600")
        .replace("bucket_s = 5", "bucket_s = 600")
    )
    text = text.replace('filters = ["healthy", "headroom"]', 'filters = ["healthy"]')
    router = Router(parse_config(text), rng=random.Random(1))
    recorded = [[0, 0, 0, 0] for _ in range(THREADS)]  # ok, throttled, error, by name
    outcomes = ("ok", "throttled", "error")

    def worker(index: int) -> None:
        rng = random.Random(index)
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

    race(worker)
    views = {v.name: v for v in router.snapshot().targets}
    fast = views["fast"]
    assert fast.ok == sum(r[0] for r in recorded)
    assert fast.throttled == sum(r[1] for r in recorded)
    assert fast.errors == sum(r[2] for r in recorded)
    assert views["slow"].ok == sum(r[3] for r in recorded)
    assert fast.requests == THREADS * CALLS * 5 // 8
    # 24,900 unreported choices per thread, far beyond the cap: exactly the newest 10,000 stay
    assert fast.in_flight == router.config.window.max_outstanding == 10_000
    assert views["slow"].in_flight == views["steady"].in_flight == 0


def test_in_flight_counts_are_exact_while_threads_race_rebuilds() -> None:
    """The per-target counters (updated lock-free by choose, record, release and the sweep)
    against what each thread knows it left open, with rebuilds and sweeps racing them."""
    text = SMALL_CONFIG.replace("refresh_ms = 5", "refresh_ms = 0.01\nmax_outstanding = 100000")
    router = Router(parse_config(text), rng=random.Random(3))
    kept: list[list[Decision]] = [[] for _ in range(THREADS)]

    def worker(index: int) -> None:
        for i in range(20_000):
            decision = router.choose("pinned" if i % 3 == 0 else "chat")
            if i % 10 == 0:
                kept[index].append(decision)
            elif i % 10 == 1:
                router.release(decision)
            else:
                router.record(decision, "throttled", latency_ms=5.0)
            if i % 500 == 0:
                router.snapshot()

    race(worker)
    left = Counter(d.target.name for decisions in kept for d in decisions)
    assert sum(left.values()) == THREADS * 2_000
    views = router.snapshot().targets
    assert {v.name: v.in_flight for v in views} == {
        "fast": left["fast"],
        "slow": left["slow"],
        "steady": left["steady"],
    }
    for decisions in kept:
        for decision in decisions:
            router.release(decision)
    assert sum(v.in_flight for v in router.snapshot().targets) == 0


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
