"""CloudWatch metrics: the seed's metric set, aggregated in process, flushed in the background.

The seed (section 6.1, ``DeploymentPatternMonitor``) calls ``PutMetricData`` once per request,
on the request path. Here :class:`CloudWatchMetrics` is a router observer that only bumps an
in-process aggregate under a lock (a few dict updates); a background thread swaps the
aggregate out every ``interval_s`` seconds and hands the datapoints to a sink - EMF lines
(:class:`~mangaroute.telemetry.sinks.EmfSink`, the default) or batched ``PutMetricData``
(:class:`~mangaroute.telemetry.sinks.PutMetricDataSink`).

The metric set (namespace default ``MangaAssist/Deployment``):

===================  =========================================  =============  ==========
metric               dimensions                                 unit           datapoint
===================  =========================================  =============  ==========
RoutingDecision      Target, Pattern, Reason / Target, Pattern  Count          statistic set
InferenceLatency     Target, Pattern                            Milliseconds   values/counts
InferenceSuccess     Target, Pattern                            None (1 / 0)   values/counts
InferenceCost        Target, Pattern / (none: the total)        None (USD)     statistic set
CacheReadInputTokens Target, Pattern                            Count          statistic set
CacheWriteInputTokens Target, Pattern                           Count          statistic set
PatternSwitch        FromTarget, ToTarget, FromPattern,         Count          statistic set
                     ToPattern, Reason / (none: the total)
BreakerState         Target, Pattern                            None (0/1/2)   statistic set
ConfigReload         Result (accepted / rejected)               Count          statistic set
DroppedDatapoints    (none)                                     Count          statistic set
===================  =========================================  =============  ==========

``CacheReadInputTokens`` / ``CacheWriteInputTokens`` (named as Bedrock's own runtime metrics)
are sent for a target in an interval where some call reported prompt-cache usage; their
statistic set spans every call recorded for it then, so ``Sum`` is the tokens and
``Average`` the tokens per call. ``InferenceCost`` prices them with the target's cache prices.

**A deliberate difference from the seed**: its ``Pattern`` dimension carries target names
(``provisioned-sonnet``). Here ``Target`` carries the target name and ``Pattern`` the
deployment pattern (``bedrock_provisioned``), so a dashboard can show either; the switch
metric names both ends by target and by pattern. The rollups with fewer dimensions exist
because alarms cannot aggregate across dimensions (no ``SEARCH`` in alarms).

Every datapoint is exact for the statistics CloudWatch derives (a statistic set of ``n``
decisions is the same as ``n`` datapoints of 1), except latency: its values are the
representatives of log-scale bins within 1 % of each observation (the core's
:class:`~mangaroute.core.histogram.LogScale`), which bounds the distinct values per interval
and keeps percentiles (``p99``) available.

When the sink fails or hangs, datapoints wait in a bounded buffer (``max_pending``); beyond it
the oldest are dropped and counted (``dropped``, and the ``DroppedDatapoints`` metric), with a
warning at most once a minute. The request path never waits for the sink.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import TypeVar

from mangaroute.core.breaker import BreakerState
from mangaroute.core.decision import Decision
from mangaroute.core.histogram import LogScale
from mangaroute.core.observation import Observation
from mangaroute.core.outcome import Outcome
from mangaroute.core.snapshot import BreakerEvent, ReloadEvent, RouterEvent, SwitchEvent
from mangaroute.core.targets import Target
from mangaroute.runtime import RateLimitedLog
from mangaroute.telemetry._worker import BackgroundExport
from mangaroute.telemetry.datum import (
    MAX_VALUES_PER_DATUM,
    Dimensions,
    MetricDatum,
    MetricSink,
    Statistics,
)
from mangaroute.telemetry.naming import reason_kind

__all__ = [
    "DEFAULT_NAMESPACE",
    "CloudWatchMetrics",
    "MetricDatum",
    "MetricSink",
    "Statistics",
]

logger = logging.getLogger("mangaroute.telemetry")

DEFAULT_NAMESPACE = "MangaAssist/Deployment"

ROUTING_DECISION = "RoutingDecision"
INFERENCE_LATENCY = "InferenceLatency"
INFERENCE_SUCCESS = "InferenceSuccess"
INFERENCE_COST = "InferenceCost"
CACHE_READ_TOKENS = "CacheReadInputTokens"
CACHE_WRITE_TOKENS = "CacheWriteInputTokens"
PATTERN_SWITCH = "PatternSwitch"
CONFIG_RELOAD = "ConfigReload"
RESULT = "Result"
BREAKER_STATE = "BreakerState"
DROPPED_DATAPOINTS = "DroppedDatapoints"
_INF = float("inf")
_Key = TypeVar("_Key", bound=Hashable)

TARGET, PATTERN, REASON = "Target", "Pattern", "Reason"
FROM_TARGET, TO_TARGET, FROM_PATTERN, TO_PATTERN = (
    "FromTarget",
    "ToTarget",
    "FromPattern",
    "ToPattern",
)

BREAKER_VALUES: dict[BreakerState, float] = {
    BreakerState.CLOSED: 0.0,
    BreakerState.HALF_OPEN: 1.0,
    BreakerState.OPEN: 2.0,
}
"""``BreakerState`` values: 0 closed, 1 half-open, 2 open (alarm on ``Maximum >= 2``)."""


class _TargetTotals:
    __slots__ = ("cache", "cost_max", "cost_min", "cost_sum", "failed", "latency", "ok")

    def __init__(self) -> None:
        self.latency: dict[int, int] = {}
        self.ok = 0
        self.failed = 0
        self.cost_sum = 0.0
        self.cost_min = float("inf")
        self.cost_max = 0.0
        self.cache: list[int] | None = None
        """Calls that used the prompt cache, then sum, min and max of reads, then of writes."""


class _Aggregate:
    __slots__ = ("decisions", "reloads", "series", "switches", "targets")

    def __init__(self) -> None:
        self.decisions: dict[tuple[str, str], int] = {}
        self.targets: dict[str, _TargetTotals] = {}
        self.switches: dict[tuple[str, str, str], int] = {}
        self.reloads: dict[str, int] = {}
        """Config reloads by result (``accepted``, ``rejected``)."""
        self.series = 0


class CloudWatchMetrics(BackgroundExport):
    """Router observer that aggregates the seed's CloudWatch metrics and flushes them.

    ``sink`` defaults to EMF lines on stdout. ``targets`` (the config's) gives every target's
    pattern and a ``BreakerState`` from the start. ``wall_clock`` (unix seconds) stamps the
    datapoints; ``clock`` (monotonic ns) paces the warnings. ``start=False`` leaves flushing
    to explicit :meth:`flush` calls (tests, the simulator).
    """

    def __init__(
        self,
        sink: MetricSink | None = None,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        targets: Iterable[Target] = (),
        interval_s: float = 10.0,
        high_resolution: bool = False,
        max_pending: int = 20_000,
        max_series: int = 10_000,
        warn_every_s: float = 60.0,
        wall_clock: Callable[[], float] = time.time,
        clock: Callable[[], int] = time.monotonic_ns,
        start: bool = True,
    ) -> None:
        if not namespace or namespace.startswith("AWS/"):
            raise ValueError(
                f"namespace must be non-empty and not start with 'AWS/': {namespace!r}"
            )
        if max_pending < 1 or max_series < 1:
            raise ValueError("max_pending and max_series must be >= 1")
        if sink is None:
            from mangaroute.telemetry.sinks import EmfSink  # noqa: PLC0415 - sinks imports us

            sink = EmfSink()
        self.sink = sink
        self.namespace = namespace
        self._resolution = 1 if high_resolution else 60
        self._max_pending = max_pending
        self._max_series = max_series
        self._wall = wall_clock
        self._warning = RateLimitedLog(warn_every_s, clock, logger)
        self._scale = LogScale(0.01)
        self._lock = threading.Lock()
        self._export_lock = threading.Lock()
        self._agg = _Aggregate()
        self._targets: dict[str, Target] = {t.name: t for t in targets}
        self._breakers: dict[str, BreakerState] = {}
        self._pending: list[MetricDatum] = []
        self._in_flight = 0
        self._sealed = threading.Event()
        self._dropped = 0
        self._dropped_reported = 0
        super().__init__("mangaroute-cloudwatch", interval_s, self.flush, start=start)

    # -- the request path: bump the aggregate under the lock ----------------------------

    def on_decision(self, decision: Decision) -> None:
        target = decision.target
        key = (target.name, decision.reason)
        if target.name not in self._targets:
            self._targets[target.name] = target
        with self._lock:  # _count, inlined: this runs in every choose(); the call cost 4 %
            decisions = self._agg.decisions
            count = decisions.get(key)
            if count is not None:
                decisions[key] = count + 1
            elif self._room():
                decisions[key] = 1

    def on_outcome(self, observation: Observation) -> None:
        latency_ms = observation.latency_ms
        if not 0.0 <= latency_ms < _INF:  # the router validated it; a direct caller may not
            return
        index = self._scale.index(latency_ms)
        target = observation.target
        cost = observation.token_cost_usd()
        name = target.name
        if name not in self._targets:
            self._targets[name] = target
        with self._lock:
            totals = self._agg.targets.get(name)
            if totals is None:
                if not self._room():
                    return
                totals = self._agg.targets[name] = _TargetTotals()
            latency = totals.latency
            latency[index] = latency.get(index, 0) + 1
            if observation.outcome is Outcome.OK:
                totals.ok += 1
            else:
                totals.failed += 1
            totals.cost_sum += cost
            totals.cost_min = min(totals.cost_min, cost)
            totals.cost_max = max(totals.cost_max, cost)
            read, write = observation.cache_read_tokens, observation.cache_write_tokens
            if read or write:
                _count_cache(totals, read, write)

    def on_event(self, event: RouterEvent) -> None:
        if isinstance(event, BreakerEvent):
            self._breakers[event.target] = event.to_state
            return
        if isinstance(event, ReloadEvent):
            result = "accepted" if event.accepted else "rejected"
            with self._lock:
                self._count(self._agg.reloads, result)
            return
        if not isinstance(event, SwitchEvent):
            return  # an operator's action: logged by the router, not a metric
        key = (event.from_target, event.to_target, reason_kind(event.reason))
        with self._lock:
            self._count(self._agg.switches, key)

    def _count(self, counts: dict[_Key, int], key: _Key) -> None:
        """One more of ``key`` this interval, if it is counted already or one more series
        fits (called under the lock)."""
        count = counts.get(key)
        if count is not None:
            counts[key] = count + 1
        elif self._room():
            counts[key] = 1

    def _room(self) -> bool:
        """Whether one more series fits this interval (called under the lock)."""
        agg = self._agg
        if agg.series >= self._max_series:
            self._dropped += 1
            return False
        agg.series += 1
        return True

    # -- off the request path -----------------------------------------------------------

    @property
    def dropped(self) -> int:
        """Datapoints (and observations beyond ``max_series``) dropped so far."""
        return self._dropped

    @property
    def pending(self) -> int:
        """Datapoints waiting for the sink."""
        return len(self._pending)

    def collect(self) -> list[MetricDatum]:
        """Swap the aggregate out and turn it into datapoints (without sending them)."""
        with self._lock:
            agg, self._agg = self._agg, _Aggregate()
        return self._datums(agg, self._wall())

    def flush(self, timeout_s: float | None = None) -> bool:
        """Collect, queue and send everything pending; True when nothing is left unsent.

        Called every ``interval_s`` by the background thread. With ``timeout_s``, gives up
        (returns False) if another flush holds the sink longer than that.
        """
        if not self._export_lock.acquire(timeout=-1 if timeout_s is None else timeout_s):
            return False
        try:
            return self._send()
        finally:
            self._export_lock.release()

    def _send(self) -> bool:
        """One export of everything pending (the caller holds the export lock). Every
        datapoint is in one place at a time - the aggregate, ``_pending``, the batch in
        flight - so :meth:`close` can count exactly what did not leave."""
        if self._sealed.is_set():  # closed: count what was observed since, send nothing
            self._seal()
            return False
        with self._lock:
            agg, self._agg = self._agg, _Aggregate()
        data = self._datums(agg, self._wall())
        with self._lock:
            if self._sealed.is_set():  # closed meanwhile: this part was not counted yet
                self._dropped += len(data) if agg.series else 0
                return False
            self._pending.extend(data)
            trimmed = self._trim_locked()
            batch, self._pending = self._pending, []
            self._in_flight = len(batch)
        self._warn_trimmed(trimmed)
        if not batch:
            return True
        try:
            self.sink.export(self.namespace, batch)
        except Exception as exc:
            unsent: Sequence[MetricDatum] = getattr(exc, "unsent", batch)
            with self._lock:
                self._in_flight = 0
                if self._sealed.is_set():  # close() has counted this batch as dropped
                    return False
                self._pending = [*unsent, *self._pending]
                trimmed = self._trim_locked()
            self._warn_trimmed(trimmed)
            self._warning.warn(
                "CloudWatch metrics: %s failed (%s: %s); %d datapoints kept for the next "
                "flush, %d dropped so far",
                type(self.sink).__name__,
                type(exc).__name__,
                exc,
                len(self._pending),
                self._dropped,
            )
            return False
        with self._lock:
            self._in_flight = 0
        return True

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the thread, flush what is left and close the sink, returning within
        ``timeout_s`` even when the sink hangs (its own timeouts and retries can add up to
        far more). Whatever has not left by then - the batch in flight, the datapoints
        waiting, what was never collected - is counted in :attr:`dropped` (a batch still in
        flight counts even if CloudWatch takes it later: it was not confirmed in time).
        The final flush runs on a daemon thread, which ends when the sink gives up.
        Idempotent."""
        if not self._first_close():
            return
        self._worker.stop(0.0)
        finisher = threading.Thread(
            target=self.flush, name="mangaroute-cloudwatch-close", daemon=True
        )
        finisher.start()
        finisher.join(timeout_s)
        lost = self._seal()
        if lost:
            logger.warning("CloudWatch metrics: %d datapoints not sent at close", lost)
        try:
            self.sink.close()
        except Exception:
            logger.exception("CloudWatch metrics: closing %s failed", type(self.sink).__name__)

    def _seal(self) -> int:
        """Count everything not sent as dropped, and refuse what comes later."""
        with self._lock:
            self._sealed.set()
            agg, self._agg = self._agg, _Aggregate()
            uncollected = len(self._datums(agg, self._wall())) if agg.series else 0
            lost = self._in_flight + len(self._pending) + uncollected
            self._pending = []
            self._dropped += lost
        return lost

    def _trim_locked(self) -> int:
        """Drop the oldest pending datapoints beyond ``max_pending`` (under the lock)."""
        excess = len(self._pending) - self._max_pending
        if excess <= 0:
            return 0
        del self._pending[:excess]
        self._dropped += excess
        return excess

    def _warn_trimmed(self, excess: int) -> None:
        if excess:
            self._warning.warn(
                "CloudWatch metrics: buffer full, dropped the %d oldest datapoints", excess
            )

    def _datums(self, agg: _Aggregate, now: float) -> list[MetricDatum]:
        out: list[MetricDatum] = []
        res = self._resolution

        def add(
            name: str,
            dims: Dimensions,
            unit: str,
            stats: Statistics | None = None,
            values: tuple[float, ...] = (),
            counts: tuple[int, ...] = (),
        ) -> None:
            out.append(MetricDatum(name, dims, unit, now, values, counts, stats, res))

        dims: Dimensions
        per_target: dict[tuple[str, str], int] = {}
        for (name, reason), n in agg.decisions.items():
            pattern = self._pattern(name)
            dims = ((TARGET, name), (PATTERN, pattern), (REASON, reason))
            add(ROUTING_DECISION, dims, "Count", Statistics(n, n, 1, 1))
            per_target[(name, pattern)] = per_target.get((name, pattern), 0) + n
        for (name, pattern), n in per_target.items():
            add(
                ROUTING_DECISION,
                ((TARGET, name), (PATTERN, pattern)),
                "Count",
                Statistics(n, n, 1, 1),
            )
        cost_n = 0
        cost_sum, cost_min, cost_max = 0.0, float("inf"), 0.0
        for name, t in agg.targets.items():
            dims = ((TARGET, name), (PATTERN, self._pattern(name)))
            for values, counts in _value_chunks(self._scale, t.latency):
                add(INFERENCE_LATENCY, dims, "Milliseconds", values=values, counts=counts)
            pairs = [(v, c) for v, c in ((0.0, t.failed), (1.0, t.ok)) if c]
            values = tuple(v for v, _ in pairs)
            add(INFERENCE_SUCCESS, dims, "None", values=values, counts=tuple(c for _, c in pairs))
            n = t.ok + t.failed
            add(INFERENCE_COST, dims, "None", Statistics(n, t.cost_sum, t.cost_min, t.cost_max))
            cache = t.cache
            if cache is not None:
                for metric, at in ((CACHE_READ_TOKENS, 1), (CACHE_WRITE_TOKENS, 4)):
                    low = cache[at + 1] if cache[0] == n else 0  # calls without cache read 0
                    add(metric, dims, "Count", Statistics(n, cache[at], low, cache[at + 2]))
            cost_n += n
            cost_sum += t.cost_sum
            cost_min, cost_max = min(cost_min, t.cost_min), max(cost_max, t.cost_max)
        if cost_n:
            add(INFERENCE_COST, (), "None", Statistics(cost_n, cost_sum, cost_min, cost_max))
        switches = 0
        for (source, dest, why), n in agg.switches.items():
            dims = (
                (FROM_TARGET, source),
                (TO_TARGET, dest),
                (FROM_PATTERN, self._pattern(source)),
                (TO_PATTERN, self._pattern(dest)),
                (REASON, why),
            )
            add(PATTERN_SWITCH, dims, "Count", Statistics(n, n, 1, 1))
            switches += n
        if switches:
            add(PATTERN_SWITCH, (), "Count", Statistics(switches, switches, 1, 1))
        for result, n in agg.reloads.items():
            add(CONFIG_RELOAD, ((RESULT, result),), "Count", Statistics(n, n, 1, 1))
        for name in list(self._targets):
            state = BREAKER_VALUES[self._breakers.get(name, BreakerState.CLOSED)]
            dims = ((TARGET, name), (PATTERN, self._pattern(name)))
            add(BREAKER_STATE, dims, "None", Statistics(1, state, state, state))
        dropped = self._dropped - self._dropped_reported
        if dropped > 0:
            self._dropped_reported += dropped
            add(DROPPED_DATAPOINTS, (), "Count", Statistics(1, dropped, dropped, dropped))
        return out

    def _pattern(self, name: str) -> str:
        target = self._targets.get(name)
        return target.pattern.value if target is not None else "unknown"


def _count_cache(totals: _TargetTotals, read: int, write: int) -> None:
    cache = totals.cache
    if cache is None:
        totals.cache = [1, read, read, read, write, write, write]
        return
    cache[0] += 1
    cache[1] += read
    cache[2] = min(cache[2], read)
    cache[3] = max(cache[3], read)
    cache[4] += write
    cache[5] = min(cache[5], write)
    cache[6] = max(cache[6], write)


def _value_chunks(
    scale: LogScale, histogram: dict[int, int]
) -> Iterable[tuple[tuple[float, ...], tuple[int, ...]]]:
    """A latency histogram as ``(values, counts)`` pairs of at most 150 values each."""
    items = sorted(histogram.items())
    for start in range(0, len(items), MAX_VALUES_PER_DATUM):
        chunk = items[start : start + MAX_VALUES_PER_DATUM]
        yield (
            tuple(round(scale.value(index), 3) for index, _ in chunk),
            tuple(count for _, count in chunk),
        )
