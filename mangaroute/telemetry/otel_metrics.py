"""OpenTelemetry metrics from the router's observer hook.

:class:`OTelObserver` implements :class:`mangaroute.core.observer.Observer`. The router calls
it on the request path, so each call only appends a tuple to a bounded buffer (a
``collections.deque``; ``append`` is atomic): well under a microsecond. A background thread
replays the buffer into the OpenTelemetry instruments every ``drain_interval_s`` - one SDK
measurement costs 5-12 µs (attribute cleaning and hashing), several per call would eat the
overhead budget (≤ 30 µs per choose + record, see ``benchmarks/bench_telemetry.py``). When the
buffer is full, measurements are dropped and counted (``mangaroute.telemetry.dropped``).

Metrics (names in :mod:`.semconv`):

* GenAI conventions - ``gen_ai.client.operation.duration`` (s),
  ``gen_ai.client.token.usage`` ({token}, by ``gen_ai.token.type``),
  ``gen_ai.client.operation.time_to_first_chunk`` (s, streamed calls only), each with the
  conventions' explicit bucket boundaries as an advisory;
* mangaroute's - ``mangaroute.decisions`` (by target, pattern, reason, class, policy),
  ``mangaroute.spend`` (USD: the target's token prices x the reported tokens, prompt-cache
  reads and writes at their own prices), ``mangaroute.cache.tokens`` ({token}, by
  ``mangaroute.cache.kind`` ``read`` / ``write``: Converse's ``cacheReadInputTokens`` /
  ``cacheWriteInputTokens``),
  ``mangaroute.switches``, ``mangaroute.breaker.transitions``, ``mangaroute.breaker.state``
  (an observable gauge: 1 for the state a target's breaker is in, 0 for the others),
  ``mangaroute.config.reloads`` (by ``mangaroute.reload.result``: accepted / rejected).

Failovers are counted by the tracing API (``mangaroute.failovers``), which sees attempts.

One series per call beside OpenTelemetry's botocore instrumentation: while it is active
(:func:`~mangaroute.telemetry.naming.botocore_instrumented`, the test the spans use) it records
``gen_ai.client.operation.duration`` and ``gen_ai.client.token.usage`` for every Bedrock
``Converse`` / ``ConverseStream`` call itself, so this observer leaves those two out for
Bedrock targets (SageMaker and Lambda calls, which it does not measure, keep them). Their
``server.address`` is the endpoint the clients call: pass the clients' ``endpoint_url`` (a URL,
or a mapping by service name, as :class:`~mangaroute.invoke.RoutedClient` takes it) so the
metrics name the same server as the spans and the instrumentation.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Mapping

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions

from mangaroute.core.breaker import BreakerState
from mangaroute.core.decision import Decision
from mangaroute.core.observation import Observation
from mangaroute.core.outcome import Outcome
from mangaroute.core.snapshot import BreakerEvent, ReloadEvent, RouterEvent, SwitchEvent
from mangaroute.core.targets import Target
from mangaroute.telemetry import instruments
from mangaroute.telemetry import semconv as sc
from mangaroute.telemetry._worker import BackgroundExport
from mangaroute.telemetry.naming import (
    botocore_instrumented,
    provider_of,
    reason_kind,
    server_of,
    service_of,
)

__all__ = ["OTelObserver"]

Attributes = dict[str, str | int]


class OTelObserver(BackgroundExport):
    """Router observer that records OpenTelemetry metrics off the request path.

    ``targets`` (the config's) lets the breaker-state gauge report every target from the
    start; targets seen later are added. ``max_error_types`` bounds the distinct
    ``error.type`` values (the rest become ``_OTHER``): error codes come from callers (the
    sidecar's ``Report``) and must not grow the number of time series without limit.
    """

    def __init__(
        self,
        meter_provider: metrics.MeterProvider | None = None,
        *,
        targets: Iterable[Target] = (),
        buffer_size: int = 65_536,
        drain_interval_s: float = 0.5,
        max_error_types: int = 64,
        endpoint_url: str | Mapping[str, str] | None = None,
        start: bool = True,
    ) -> None:
        if buffer_size < 1:
            raise ValueError(f"buffer_size must be >= 1, got {buffer_size}")
        meter = instruments.mangaroute_meter(meter_provider)
        self._duration = instruments.OPERATION_DURATION.histogram(meter)
        self._tokens = instruments.TOKEN_USAGE.histogram(meter)
        self._first_chunk = instruments.TIME_TO_FIRST_CHUNK.histogram(meter)
        self._decisions = instruments.DECISIONS.counter(meter)
        self._spend = instruments.SPEND.counter(meter)
        self._cache_tokens = instruments.CACHE_TOKENS.counter(meter)
        self._switches = instruments.SWITCHES.counter(meter)
        self._reloads = instruments.RELOADS.counter(meter)
        self._transitions = instruments.BREAKER_TRANSITIONS.counter(meter)
        instruments.BREAKER_STATE.observable_gauge(meter, self._observe_breakers)
        instruments.DROPPED.observable_counter(meter, self._observe_dropped)
        self._buffer: deque[Decision | Observation | RouterEvent] = deque()
        self._capacity = buffer_size
        self._dropped = 0
        self._drop_lock = threading.Lock()
        self._drain_lock = threading.Lock()
        self._max_error_types = max_error_types
        self._endpoint_url = endpoint_url
        self._botocore = False
        self._targets: dict[str, Target] = {t.name: t for t in targets}
        self._breakers: dict[str, BreakerState] = {}
        self._target_labels: dict[str, Attributes] = {}
        self._outcome_labels: dict[tuple[str, str | None], Attributes] = {}
        self._token_labels: dict[tuple[str, str], Attributes] = {}
        self._decision_labels: dict[tuple[str, str, str, str], Attributes] = {}
        self._error_types: set[str] = set()
        super().__init__("mangaroute-otel-metrics", drain_interval_s, self.drain, start=start)

    # -- the request path: append only ------------------------------------------------

    def on_decision(self, decision: Decision) -> None:
        if len(self._buffer) < self._capacity:
            self._buffer.append(decision)
        else:
            self._drop()

    def on_outcome(self, observation: Observation) -> None:
        if len(self._buffer) < self._capacity:
            self._buffer.append(observation)
        else:
            self._drop()

    def on_event(self, event: RouterEvent) -> None:
        if isinstance(event, BreakerEvent):
            self._breakers[event.target] = event.to_state
        if len(self._buffer) < self._capacity:
            self._buffer.append(event)
        else:
            self._drop()

    def _drop(self) -> None:
        with self._drop_lock:
            self._dropped += 1

    # -- off the request path -----------------------------------------------------------

    @property
    def dropped(self) -> int:
        """Measurements dropped so far because the buffer was full."""
        return self._dropped

    def drain(self) -> int:
        """Replay buffered measurements into the instruments now; returns how many.

        Histogram values are recorded one by one; counter increments are summed per label
        set first (one SDK call per label set, not per measurement).
        """
        buffer = self._buffer
        done = 0
        with self._drain_lock:
            self._botocore = botocore_instrumented()
            decisions: dict[tuple[str, str, str, str], int] = {}
            spend: dict[str, float] = {}
            cached: dict[tuple[str, str], int] = {}
            while buffer:
                item = buffer.popleft()
                if isinstance(item, Observation):
                    self._replay_outcome(spend, cached, item)
                elif isinstance(item, Decision):
                    self._count_decision(decisions, item)
                else:
                    self._replay_event(item)
                done += 1
            for key, count in decisions.items():
                self._decisions.add(count, self._decision_labels[key])
            for name, cost in spend.items():
                target = self._targets[name]
                self._spend.add(cost, {sc.TARGET: name, sc.PATTERN: target.pattern.value})
            for (name, cache_kind), tokens in cached.items():
                labels = {**self._labels(self._targets[name]), sc.CACHE_KIND: cache_kind}
                self._cache_tokens.add(tokens, labels)
        return done

    def force_flush(self) -> int:
        return self.drain()

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the background thread and replay what is left (idempotent)."""
        if not self._first_close():
            return
        self._worker.stop(timeout_s)
        self.drain()

    def _labels(self, target: Target) -> Attributes:
        labels = self._target_labels.get(target.name)
        if labels is None:
            self._targets.setdefault(target.name, target)
            url = self._endpoint_url
            if isinstance(url, Mapping):
                url = url.get(service_of(target))
            address, port = server_of(target, url)
            labels = {
                sc.GEN_AI_OPERATION_NAME: sc.OPERATION_CHAT,
                sc.GEN_AI_PROVIDER_NAME: provider_of(target),
                sc.GEN_AI_REQUEST_MODEL: target.model_id,
                sc.SERVER_ADDRESS: address,
                sc.SERVER_PORT: port,
                sc.TARGET: target.name,
            }
            self._target_labels[target.name] = labels
        return labels

    def _error_type(self, outcome: Outcome, error_code: str | None) -> str | None:
        if outcome is Outcome.OK and error_code is None:
            return None
        error = error_code or str(outcome)
        if error not in self._error_types:
            if len(self._error_types) >= self._max_error_types:
                return sc.ERROR_OTHER
            self._error_types.add(error)
        return error

    def _count_decision(
        self, counts: dict[tuple[str, str, str, str], int], decision: Decision
    ) -> None:
        target = decision.target
        key = (target.name, decision.reason, decision.request_class, decision.policy)
        count = counts.get(key)
        if count is not None:
            counts[key] = count + 1
            return
        counts[key] = 1
        if key not in self._decision_labels:
            self._targets.setdefault(target.name, target)
            labels: Attributes = {
                sc.TARGET: target.name,
                sc.PATTERN: target.pattern.value,
                sc.REASON: decision.reason,
                sc.REQUEST_CLASS: decision.request_class,
                sc.POLICY: decision.policy,
            }
            self._decision_labels[key] = labels

    def _replay_outcome(
        self,
        spend: dict[str, float],
        cached: dict[tuple[str, str], int],
        observation: Observation,
    ) -> None:
        target = observation.target
        outcome = observation.outcome
        base = self._labels(target)
        error = self._error_type(outcome, observation.error_code)
        key = (target.name, error)
        labels = self._outcome_labels.get(key)
        if labels is None:
            labels = dict(base)
            labels[sc.OUTCOME] = str(outcome)
            if error is not None:
                labels[sc.ERROR_TYPE] = error
            self._outcome_labels[key] = labels
        measured = self._botocore and labels[sc.GEN_AI_PROVIDER_NAME] == sc.PROVIDER_AWS_BEDROCK
        if not measured:  # the botocore instrumentation records this call's series itself
            self._duration.record(observation.latency_ms / 1000.0, labels)
        ttft_ms = observation.ttft_ms
        if ttft_ms is not None:
            self._first_chunk.record(ttft_ms / 1000.0, base)
        read, write = observation.cache_read_tokens, observation.cache_write_tokens
        prompt = observation.input_tokens + read + write  # as the conventions count
        output = observation.output_tokens
        if prompt or output:
            if not measured:
                self._tokens.record(prompt, self._token_label(target, sc.TOKEN_TYPE_INPUT))
                self._tokens.record(output, self._token_label(target, sc.TOKEN_TYPE_OUTPUT))
            cost = observation.token_cost_usd()
            if cost > 0:
                spend[target.name] = spend.get(target.name, 0.0) + cost
        if read:
            key = (target.name, sc.CACHE_READ)
            cached[key] = cached.get(key, 0) + read
        if write:
            key = (target.name, sc.CACHE_WRITE)
            cached[key] = cached.get(key, 0) + write

    def _token_label(self, target: Target, token_type: str) -> Attributes:
        key = (target.name, token_type)
        labels = self._token_labels.get(key)
        if labels is None:
            labels = {**self._labels(target), sc.GEN_AI_TOKEN_TYPE: token_type}
            self._token_labels[key] = labels
        return labels

    def _replay_event(self, event: RouterEvent) -> None:
        if isinstance(event, SwitchEvent):
            self._switches.add(
                1,
                {
                    sc.FROM_TARGET: event.from_target,
                    sc.TO_TARGET: event.to_target,
                    sc.REASON: reason_kind(event.reason),
                },
            )
        elif isinstance(event, ReloadEvent):
            result = "accepted" if event.accepted else "rejected"
            self._reloads.add(1, {sc.RELOAD_RESULT: result})
        elif isinstance(event, BreakerEvent):
            self._transitions.add(
                1,
                {
                    sc.TARGET: event.target,
                    sc.FROM_STATE: event.from_state.value,
                    sc.BREAKER_STATE: event.to_state.value,
                },
            )

    def _observe_breakers(self, options: CallbackOptions) -> Iterable[metrics.Observation]:
        breakers = self._breakers
        for name, target in list(self._targets.items()):
            current = breakers.get(name, BreakerState.CLOSED)
            for state in BreakerState:
                yield metrics.Observation(
                    1 if state is current else 0,
                    {
                        sc.TARGET: name,
                        sc.PATTERN: target.pattern.value,
                        sc.BREAKER_STATE: state.value,
                    },
                )

    def _observe_dropped(self, options: CallbackOptions) -> Iterable[metrics.Observation]:
        yield metrics.Observation(self._dropped)
