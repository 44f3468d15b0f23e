"""``RoutedClient``: one call instead of ``bedrock.converse(...)``; the router does the rest.

Each call chooses a target with the router, calls it through its pattern's invoker, records
the outcome, fails over by the rules in :mod:`mangaroute.invoke.rules` while the deadline
allows, and returns the answer with its :class:`~mangaroute.invoke.result.RoutingResult`.

Sync calls run on the caller's thread (in a thread pool only when hedging). The ``a...``
variants are coroutines for asyncio: boto3 is blocking, so each attempt runs in a
thread-pool executor - yours (``executor=``) or one the client makes with ``max_workers``
threads. Size it, and ``max_pool_connections`` in the botocore config, to the number of
calls you run at once; a call waiting for a worker waits inside its own budget.

With ``telemetry=RoutingTelemetry(...)`` every routed call is traced: a ``route`` span and
a span per attempt (:mod:`mangaroute.invoke.spans`). Tracing is off by default: without
an SDK the OpenTelemetry API's no-op path still costs 10-60 us per routed call
(``docs/invoke.md``, Overhead).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from botocore.config import Config

from mangaroute._closing import AsyncClosesOnExit
from mangaroute.core.clock import Clock
from mangaroute.core.decision import Decision
from mangaroute.core.errors import InvalidRequest
from mangaroute.core.limits import check_fields
from mangaroute.core.router import Router
from mangaroute.core.targets import Pattern
from mangaroute.invoke.attempt import AttemptDone, AttemptRunner
from mangaroute.invoke.client_cache import ClientCache, ClientProvider, FixedClients
from mangaroute.invoke.deadline import Deadline
from mangaroute.invoke.drivers import Attempting, Won, run_async, run_inline, run_threads
from mangaroute.invoke.errors import UnsupportedTarget
from mangaroute.invoke.hedging import HedgeBudget, HedgePolicy
from mangaroute.invoke.invokers import BedrockInvoker, Invoker
from mangaroute.invoke.plan import FIT_PERCENTILES, FailoverPlan, Launch
from mangaroute.invoke.result import ConverseResponse
from mangaroute.invoke.retry import RetryBudget, RetryPolicy
from mangaroute.invoke.sagemaker import SageMakerInvoker
from mangaroute.invoke.spans import FinishOnError
from mangaroute.invoke.stream import AsyncRoutedStream, RoutedStream
from mangaroute.runtime.refresher import SnapshotRefresher
from mangaroute.telemetry.tracing import RouteSpan, RoutingTelemetry

__all__ = ["DEFAULT_HEDGE", "DEFAULT_INVOKERS", "InvokeSettings", "RoutedClient"]

_BEDROCK = BedrockInvoker()
_SAGEMAKER = SageMakerInvoker()
DEFAULT_INVOKERS: Mapping[Pattern, Invoker] = {
    Pattern.BEDROCK_ON_DEMAND: _BEDROCK,
    Pattern.BEDROCK_PROVISIONED: _BEDROCK,
    Pattern.SAGEMAKER_REALTIME: _SAGEMAKER,
    Pattern.SAGEMAKER_SERVERLESS: _SAGEMAKER,
}
"""Bedrock for on-demand ids, inference profiles and provisioned ARNs; SageMaker (TGI
mapping) for real-time and serverless endpoints. No Lambda invoker: pass your own."""


DEFAULT_HEDGE: HedgePolicy | None = None
"""The hedging ``InvokeSettings()`` uses: what ``python scripts/tune_hedge.py`` found pays on
the simulator, per request class. Today that is none: no hedging.

The sweep of 2026-12-08 (1:10 scale, 20:00-22:00, the default day, the bad day,
``sagemaker-slow`` and ``regional-incident``, seeds 7-9; the rule is in the script) kept no
delay for any class. Simple questions gained up to 0.16 points of first tokens within the SLO
but at $0.05-0.06 per answer gained, above the rule's ten average messages ($0.031); complex
and manga questions gained under 0.08 points and lost up to 0.04-0.15 points in some runs. An
earlier sweep the same day, before the latency predictor stopped pushing quiet manga traffic
off the fine-tuned endpoint (docs/policies.md, "A quiet endpoint and its prior"), had chosen
manga at 0.2; with that defect fixed it no longer pays. docs/invoke.md, "Hedging", has the
table. Pass your own :class:`HedgePolicy` to hedge anyway."""


@dataclass(frozen=True, slots=True)
class InvokeSettings:
    """How routed calls fail over."""

    fit: str = "p50"
    """A fallback is tried only if this predicted percentile of its latency (time to first
    token for streams, once observed) fits the budget left: ``p50`` (default - a better
    than even chance beats failing now), ``p90`` or ``p99`` (stricter)."""
    eject_cooldown_s: float = 3600.0
    """How long ResourceNotFound / AccessDenied keep a target's breaker open."""
    hedge: HedgePolicy | None = DEFAULT_HEDGE
    """Hedging: :data:`DEFAULT_HEDGE`, what the simulator found pays per class - today none,
    so off (docs/invoke.md, "Hedging")."""
    retry: RetryPolicy | None = None
    """Retries of fast failures within a retry budget, off by default
    (:mod:`mangaroute.invoke.retry`)."""
    time_scale: float = 1.0
    """Real seconds per second of the router's clock: socket timeouts are the budget times
    this. Leave at 1; the demo and tests run the router in scaled time against the stand-in."""

    def __post_init__(self) -> None:
        if self.fit not in FIT_PERCENTILES:
            raise ValueError(f"fit must be one of {FIT_PERCENTILES}, got {self.fit!r}")
        check_fields(self, "invoke")


class RoutedClient(AsyncClosesOnExit):
    """Routed Converse / ConverseStream across the router's targets.

    Clients: pass a boto3 ``session`` (and optionally ``endpoint_url`` / ``config``) and
    mangaroute makes its clients per region and timeout bucket (:class:`ClientCache`); or
    pass ``clients`` - a :class:`ClientProvider`, or your own clients by service name.
    ``clock`` defaults to the router's. With ``refresh_snapshots`` (default) a background
    thread rebuilds the router's snapshot when it is due (something changed), so
    ``choose()`` does not rebuild it on the caller's thread
    (:mod:`mangaroute.runtime.refresher`). ``telemetry`` traces every routed call (default:
    off - ``RoutingTelemetry(enabled=False)``; pass ``RoutingTelemetry()`` to use the global
    OpenTelemetry tracer provider). Close the client (or use ``with``) to stop its threads
    and the clients it made.
    """

    def __init__(
        self,
        router: Router,
        *,
        session: Any = None,
        clients: ClientProvider | Mapping[str | tuple[str, str], Any] | None = None,
        endpoint_url: str | Mapping[str, str] | None = None,
        config: Config | None = None,
        invokers: Mapping[Pattern, Invoker] | None = None,
        settings: InvokeSettings | None = None,
        clock: Clock | None = None,
        executor: Executor | None = None,
        max_workers: int = 32,
        refresh_snapshots: bool = True,
        telemetry: RoutingTelemetry | None = None,
    ) -> None:
        self.router = router
        self.telemetry = telemetry if telemetry is not None else RoutingTelemetry(enabled=False)
        if clock is None:
            clock = router.clock
        self.settings = settings or InvokeSettings()
        merged = {**DEFAULT_INVOKERS, **(invokers or {})}
        for target in router.targets:
            if target.pattern not in merged:
                raise UnsupportedTarget(
                    f"target {target.name!r} is a {target.pattern.value} target, which "
                    f"mangaroute does not call itself; pass "
                    f"invokers={{Pattern.{target.pattern.name}: <your Invoker>}}"
                )
        self._own_clients = clients is None
        if clients is None:
            provider: ClientProvider = ClientCache(
                session, endpoint_url=endpoint_url, config=config
            )
        elif isinstance(clients, Mapping):
            provider = FixedClients(clients)
        else:
            provider = clients
        self.clients = provider
        self._clock = clock
        self._runner = AttemptRunner(
            router,
            provider,
            merged,
            clock,
            time_scale=self.settings.time_scale,
            eject_cooldown_s=self.settings.eject_cooldown_s,
        )
        hedge, retry = self.settings.hedge, self.settings.retry
        hedging = hedge is not None and hedge.hedges_any
        self._hedge_budget = HedgeBudget(hedge) if hedge is not None and hedging else None
        self._retry_budget = RetryBudget(retry) if retry is not None else None
        self._executor = executor
        self._own_executor: ThreadPoolExecutor | None = None
        self._max_workers = max_workers
        self._lock = threading.Lock()
        self._refresher: SnapshotRefresher | None = None
        if refresh_snapshots:
            self._refresher = SnapshotRefresher(router, time_scale=self.settings.time_scale)
            self._refresher.start()

    # -- entry points ---------------------------------------------------------------------

    def converse(
        self,
        *,
        messages: Sequence[Mapping[str, Any]],
        request_class: str | None = None,
        session_id: str | None = None,
        budget_ms: float | None = None,
        deadline: Deadline | None = None,
        input_tokens: int = 0,
        output_tokens: int = 0,
        **fields: Any,
    ) -> ConverseResponse:
        """Bedrock Converse, routed. ``fields`` are Converse's other arguments (``system``,
        ``inferenceConfig``, ``toolConfig``, ``additionalModelRequestFields``, ...), passed
        on unchanged; ``modelId`` is the router's to choose. Give the latency budget as
        ``budget_ms`` or a shared ``deadline``; the token estimates inform capacity."""
        plan, attempt, route = self._start(
            messages,
            fields,
            request_class,
            session_id,
            budget_ms,
            deadline,
            input_tokens,
            output_tokens,
            streaming=False,
        )
        with route:  # current for the call; an escaping error becomes its error.type
            return _answered(self._run(plan, attempt), route)

    async def aconverse(
        self,
        *,
        messages: Sequence[Mapping[str, Any]],
        request_class: str | None = None,
        session_id: str | None = None,
        budget_ms: float | None = None,
        deadline: Deadline | None = None,
        input_tokens: int = 0,
        output_tokens: int = 0,
        **fields: Any,
    ) -> ConverseResponse:
        """:meth:`converse` for asyncio; attempts run in the executor."""
        plan, attempt, route = self._start(
            messages,
            fields,
            request_class,
            session_id,
            budget_ms,
            deadline,
            input_tokens,
            output_tokens,
            streaming=False,
        )
        with route:
            return _answered(await run_async(plan, self._runner, attempt, self._pool()), route)

    def converse_stream(
        self,
        *,
        messages: Sequence[Mapping[str, Any]],
        request_class: str | None = None,
        session_id: str | None = None,
        budget_ms: float | None = None,
        deadline: Deadline | None = None,
        input_tokens: int = 0,
        output_tokens: int = 0,
        **fields: Any,
    ) -> RoutedStream:
        """ConverseStream, routed. Returns once a target has produced its first token (or a
        complete answer), failing over until then; iterate the result for the events."""
        plan, attempt, route = self._start(
            messages,
            fields,
            request_class,
            session_id,
            budget_ms,
            deadline,
            input_tokens,
            output_tokens,
            streaming=True,
        )
        with FinishOnError(route):
            won = self._run(plan, attempt)
        return self._stream(won, plan.decision, route)

    async def aconverse_stream(
        self,
        *,
        messages: Sequence[Mapping[str, Any]],
        request_class: str | None = None,
        session_id: str | None = None,
        budget_ms: float | None = None,
        deadline: Deadline | None = None,
        input_tokens: int = 0,
        output_tokens: int = 0,
        **fields: Any,
    ) -> AsyncRoutedStream:
        """:meth:`converse_stream` for asyncio; ``async for`` the events."""
        plan, attempt, route = self._start(
            messages,
            fields,
            request_class,
            session_id,
            budget_ms,
            deadline,
            input_tokens,
            output_tokens,
            streaming=True,
        )
        pool = self._pool()
        with FinishOnError(route):
            won = await run_async(plan, self._runner, attempt, pool)
        return AsyncRoutedStream(self._stream(won, plan.decision, route), pool)

    def warm(self, budget_ms: float) -> None:
        """Create now the clients calls with budgets up to ``budget_ms`` will use (with a
        :class:`ClientCache`; other providers are left alone)."""
        warm = getattr(self.clients, "warm", None)
        if warm is None:
            return
        invokers = self._runner.invokers
        services = {(invokers[t.pattern].service, t.region) for t in self.router.targets}
        warm(sorted(services), budget_ms / 1000 * self._scale)

    def deadline(self, budget_ms: float) -> Deadline:
        """A deadline ``budget_ms`` from now on this client's clock."""
        return Deadline.after(budget_ms, self._clock)

    # -- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Wait for running attempts, stop the executor and close the clients made here."""
        with self._lock:
            pool, self._own_executor = self._own_executor, None
            refresher, self._refresher = self._refresher, None
        if refresher is not None:
            refresher.close()
        if pool is not None:
            pool.shutdown(wait=True)
        if self._own_clients:
            self.clients.close()

    # -- internals ------------------------------------------------------------------------

    @property
    def _scale(self) -> float:
        return self.settings.time_scale

    def _pool(self) -> Executor:
        if self._executor is not None:
            return self._executor
        with self._lock:
            if self._own_executor is None:
                self._own_executor = ThreadPoolExecutor(
                    self._max_workers, thread_name_prefix="mangaroute-invoke"
                )
            return self._own_executor

    def _run(self, plan: FailoverPlan, attempt: Attempting) -> Won:
        """A sync call's attempts: inline on the caller's thread, or in the pool when the
        call may hedge."""
        if plan.hedge_at_ns is None:
            return run_inline(plan, self._runner, attempt)
        return run_threads(plan, self._runner, attempt, self._pool())

    def _start(
        self,
        messages: Sequence[Mapping[str, Any]],
        fields: dict[str, Any],
        request_class: str | None,
        session_id: str | None,
        budget_ms: float | None,
        deadline: Deadline | None,
        input_tokens: int,
        output_tokens: int,
        *,
        streaming: bool,
    ) -> tuple[FailoverPlan, Attempting, RouteSpan]:
        """What every entry point does first: check the request, choose, plan the failover,
        open the ``route`` span, and bind the attempt each launch runs."""
        request = _request(messages, fields)
        now = self._clock()
        if budget_ms is not None:
            if deadline is not None:
                raise InvalidRequest("pass budget_ms or deadline, not both")
            deadline = Deadline.after(budget_ms, lambda: now)
        remaining = None if deadline is None else max(0.0, deadline.remaining_ms(now))
        decision = self.router.choose(
            request_class,
            session_id=session_id,
            budget_ms=remaining,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            first_token=streaming,  # a stream's budget is for its first token
        )
        plan = FailoverPlan(
            decision,
            now_ns=now,
            deadline=deadline,
            snapshot=self.router.snapshot,
            fit=self.settings.fit,
            streaming=streaming,
            hedge=self.settings.hedge,
            hedge_budget=self._hedge_budget,
            retry=self.settings.retry,
            retry_budget=self._retry_budget,
            jitter=random.random,
        )
        snapshot = self.router.current_snapshot  # the one choose() read; no rebuild
        route = self.telemetry.route(
            decision, snapshot=snapshot, budget_ms=remaining, conversation_id=session_id
        )
        run = self._runner.open_stream if streaming else self._runner.converse

        def attempt(launch: Launch, cancel: threading.Event | None) -> AttemptDone:
            return run(launch, decision, request, route, cancel)

        return plan, attempt, route

    def _stream(self, won: Won, decision: Decision, route: RouteSpan) -> RoutedStream:
        done, routing = won
        assert done.stream is not None
        return RoutedStream(done.stream, routing, self._runner, done.launch, decision, route)


def _request(messages: Sequence[Mapping[str, Any]], fields: dict[str, Any]) -> dict[str, Any]:
    if "modelId" in fields:
        raise InvalidRequest("modelId is the router's to choose; do not pass it")
    return {"messages": messages, **fields}


def _answered(won: Won, route: RouteSpan) -> ConverseResponse:
    """A Converse call's answer; its route span ends naming the target that answered."""
    done, routing = won
    route.finish(target=routing.target)
    assert done.response is not None
    return ConverseResponse(done.response, routing)
