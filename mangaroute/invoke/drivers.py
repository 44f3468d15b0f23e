"""Drivers: run a :class:`~mangaroute.invoke.plan.FailoverPlan`'s attempts and report back.

* :func:`run_inline` - one attempt at a time on the caller's thread (sync, no hedging): the
  routed call costs the caller nothing beyond the plan itself.
* :func:`run_threads` - attempts in a thread pool, so a hedge can race the primary (sync).
* :func:`run_async` - attempts in a thread pool awaited from asyncio (boto3 is blocking).

When a call ends with attempts still running, each one is told (its ``cancel`` event: a
stream stops reading, an answer's span ends ``cancelled``) and left a callback that closes
its stream if it opens one, so no connection leaks whichever attempt finishes last.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait

from mangaroute.core.clock import NS_PER_S, Clock
from mangaroute.invoke.attempt import AttemptDone, AttemptRunner
from mangaroute.invoke.errors import DeadlineExceeded
from mangaroute.invoke.plan import FailoverPlan, Launch
from mangaroute.invoke.result import RoutingResult
from mangaroute.invoke.spans import cancelled

__all__ = ["Attempting", "Won", "run_async", "run_inline", "run_threads"]

Attempting = Callable[[Launch, threading.Event | None], AttemptDone]
"""Runs one attempt: ``attempt(launch, cancel)``."""
Won = tuple[AttemptDone, RoutingResult]


def start(plan: FailoverPlan, runner: AttemptRunner) -> Launch:
    try:
        return plan.start()
    except DeadlineExceeded:
        runner.router.release(plan.decision)
        raise


def run_inline(plan: FailoverPlan, runner: AttemptRunner, attempt: Attempting) -> Won:
    launch: Launch | None = start(plan, runner)
    while launch is not None:
        done = attempt(launch, None)
        if done.error is None:
            routing = plan.succeeded(
                launch, done.end_ns, done.ttft_ms, losers="abandoned", started_ns=done.started_ns
            )
            return done, routing
        assert done.failure is not None
        launch = plan.failed(
            launch, done.failure, done.error, done.end_ns, started_ns=done.started_ns
        )
    raise AssertionError("an inline plan always has a next attempt or raises")


class _Race:
    """What the concurrent drivers share: settling results, cancelling the losers."""

    def __init__(self, plan: FailoverPlan, runner: AttemptRunner) -> None:
        self.plan = plan
        self.runner = runner
        self.time_scale = runner.time_scale
        self.cancels: list[threading.Event] = []
        self.futures: dict[Future[AttemptDone], Launch] = {}

    def submit(self, pool: Executor, attempt: Attempting, launch: Launch) -> Future[AttemptDone]:
        cancel = threading.Event()
        self.cancels.append(cancel)
        future = pool.submit(attempt, launch, cancel)
        self.futures[future] = launch
        return future

    def wait_s(self, clock: Clock) -> float | None:
        """Real seconds until the hedge is due, or ``None`` (no hedge to wait for)."""
        at = self.plan.hedge_at_ns
        if at is None:
            return None
        return max(0.0, (at - clock()) / NS_PER_S * self.time_scale)

    def settle(self, future: Future[AttemptDone]) -> Won | Launch | None:
        """Hand one finished attempt to the plan: the winner, the next launch, or nothing."""
        self.futures.pop(future)
        done = future.result()
        if done.cancelled:
            return None
        if done.error is None:
            losers = "cancelled" if self.plan.streaming else "abandoned"
            routing = self.plan.succeeded(
                done.launch, done.end_ns, done.ttft_ms, losers=losers, started_ns=done.started_ns
            )
            return done, routing
        assert done.failure is not None
        return self.plan.failed(
            done.launch, done.failure, done.error, done.end_ns, started_ns=done.started_ns
        )

    def leave(self) -> None:
        """The call is over: cancel running streams and clean up whatever finishes later."""
        for cancel in self.cancels:
            cancel.set()
        for future, launch in self.futures.items():
            future.add_done_callback(functools.partial(self._discard, launch))
        self.futures.clear()

    def _discard(self, launch: Launch, future: Future[AttemptDone]) -> None:
        decision = self.plan.decision
        if future.cancelled():
            self.runner.release(launch, decision)
            return
        if future.exception() is not None:
            return
        done = future.result()
        if done.stream is not None:
            done.stream.source.close()
            self.runner.release(launch, decision)
            cancelled(done.stream.span)


def _ordered(futures: set[Future[AttemptDone]], race: _Race) -> list[Future[AttemptDone]]:
    return sorted(futures, key=lambda f: race.futures[f].index)


def run_threads(
    plan: FailoverPlan, runner: AttemptRunner, attempt: Attempting, pool: Executor
) -> Won:
    race = _Race(plan, runner)
    race.submit(pool, attempt, start(plan, runner))
    try:
        while race.futures:
            done, _ = wait(race.futures, race.wait_s(runner.clock), FIRST_COMPLETED)
            if not done:
                hedge = plan.hedge(runner.clock())
                if hedge is not None:
                    race.submit(pool, attempt, hedge)
                continue
            for future in _ordered(done, race):
                step = race.settle(future)
                if isinstance(step, tuple):
                    return step
                if step is not None:
                    race.submit(pool, attempt, step)
    finally:
        race.leave()
    raise AssertionError("a plan always ends with an answer or an error")


async def run_async(
    plan: FailoverPlan, runner: AttemptRunner, attempt: Attempting, pool: Executor
) -> Won:
    race = _Race(plan, runner)
    waiting: dict[asyncio.Future[AttemptDone], Future[AttemptDone]] = {}

    def submit(launch: Launch) -> None:
        future = race.submit(pool, attempt, launch)
        waiting[asyncio.wrap_future(future)] = future

    submit(start(plan, runner))
    try:
        while waiting:
            done, _ = await asyncio.wait(
                waiting, timeout=race.wait_s(runner.clock), return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                hedge = plan.hedge(runner.clock())
                if hedge is not None:
                    submit(hedge)
                continue
            finished = {waiting.pop(wrapper) for wrapper in done}
            for future in _ordered(finished, race):
                step = race.settle(future)
                if isinstance(step, tuple):
                    return step
                if step is not None:
                    submit(step)
    finally:
        for wrapper in waiting:
            wrapper.cancel()
        race.leave()
    raise AssertionError("a plan always ends with an answer or an error")
