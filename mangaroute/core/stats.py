"""One target's statistics: the counters its calls update, and the view a snapshot takes.

:class:`TargetStats` is the mutable part of the router - a sliding window, a breaker and
cumulative token counts per target, guarded by the target's own lock, so ``record()`` on one
target never waits for another. :meth:`TargetStats.view` derives the immutable
:class:`~mangaroute.core.snapshot.TargetView` a rebuild puts in the snapshot: predicted
percentiles (observed once there are ``min_samples``, else the target's prior), rates,
utilization against the target's capacity, the breaker's state, and the other replicas'
share where shared state is attached. Quantiles are recomputed only when the window changed.
"""

from __future__ import annotations

import math
import threading

from mangaroute.core.breaker import Breaker, BreakerState
from mangaroute.core.clock import NS_PER_S
from mangaroute.core.fleet import FleetView
from mangaroute.core.histogram import LogScale
from mangaroute.core.snapshot import BreakerEvent, RouterEvent, TargetView
from mangaroute.core.targets import Target
from mangaroute.core.window import SlidingWindow

__all__ = ["TargetStats"]

_QUANTILES = (0.5, 0.9, 0.99)
_NAN3 = (math.nan, math.nan, math.nan)


class TargetStats:
    """Mutable per-target state, guarded by ``lock``."""

    __slots__ = (
        "breaker",
        "cache_read_total",
        "cache_write_total",
        "dirty",
        "input_total",
        "latency_q",
        "lock",
        "output_total",
        "requests_total",
        "samples",
        "target",
        "ttft_q",
        "window",
    )

    def __init__(self, target: Target, window: SlidingWindow, breaker: Breaker) -> None:
        self.target = target
        self.input_total = 0  # tokens since the router started: the spend ledger's source
        self.output_total = 0
        self.cache_read_total = 0
        self.cache_write_total = 0
        self.requests_total = 0
        self.window = window
        self.breaker = breaker
        self.lock = threading.Lock()
        self.dirty = True
        self.latency_q: tuple[float, float, float] = _NAN3
        self.ttft_q: tuple[float, float, float] = _NAN3
        self.samples = 0

    def breaker_event(self, was: BreakerState, now: int, wall_offset: float) -> BreakerEvent:
        """The event of this target's breaker moving from ``was`` to where it is now."""
        breaker = self.breaker
        return BreakerEvent(
            self.target.name,
            was,
            breaker.state,
            breaker.reason,
            now,
            wall_offset + now / NS_PER_S,
        )

    def view(
        self,
        now: int,
        in_flight: int,
        events: list[RouterEvent],
        min_samples: int,
        scale: LogScale,
        fleet: FleetView | None,
        wall_offset: float = 0.0,
    ) -> TargetView:
        """The target as a snapshot sees it at ``now`` (rolling the window and ticking the
        breaker first; a breaker that moved appends its event to ``events``). An open
        breaker's cool-down end is read under the target's lock, as wall time
        (``wall_offset`` plus the router clock's seconds)."""
        with self.lock:
            window = self.window
            rolled = window.advance(now)
            breaker = self.breaker
            was = breaker.state
            if breaker.tick(now):
                events.append(self.breaker_event(was, now, wall_offset))
            totals = window.totals
            latency = ttft = None
            if self.dirty or rolled:
                latency = dict(totals.latency)
                ttft = dict(totals.ttft)
                self.dirty = False
            ok, throttled, errors, timeouts = totals.counts
            tokens = totals.input_tokens + totals.output_tokens
            output_tokens = totals.output_tokens
            span_s = window.span_ns(now) / NS_PER_S
            breaker_state, reason, ejections = breaker.state, breaker.reason, breaker.ejections
            until = None
            if breaker_state is BreakerState.OPEN:
                until = wall_offset + breaker.reopen_ns / NS_PER_S
        if latency is not None and ttft is not None:
            q50, q90, q99 = scale.quantiles(latency, _QUANTILES)
            self.latency_q = (q50, q90, q99)
            q50, q90, q99 = scale.quantiles(ttft, _QUANTILES)
            self.ttft_q = (q50, q90, q99)
            self.samples = sum(latency.values())
        target = self.target
        samples = self.samples
        if samples >= min_samples:
            p50, p90, p99 = self.latency_q
            source = "observed"
        else:
            prior = target.prior
            p50, p90, p99 = prior.p50_ms, prior.p90_ms, prior.effective_p99_ms
            source = "prior"
        requests = ok + throttled + errors + timeouts
        tpm = tokens / span_s * 60.0
        rps = requests / span_s
        if fleet is not None:
            tpm += fleet.tokens_per_minute.get(target.name, 0.0)
            rps += fleet.requests_per_second.get(target.name, 0.0)
            if breaker_state is BreakerState.CLOSED:
                ejection = fleet.ejected(target.name)
                if ejection is not None:
                    breaker_state = BreakerState.OPEN
                    reason = f"fleet:{ejection.reason}"
        capacity = target.capacity
        utilization = 0.0
        if capacity.tokens_per_minute:
            utilization = tpm / capacity.tokens_per_minute
        if capacity.requests_per_second:
            utilization = max(utilization, rps / capacity.requests_per_second)
        if capacity.concurrency:
            utilization = max(utilization, in_flight / capacity.concurrency)
        return TargetView(
            target=target,
            p50_ms=p50,
            p90_ms=p90,
            p99_ms=p99,
            latency_source=source,
            ttft_p50_ms=self.ttft_q[0],
            ttft_p99_ms=self.ttft_q[2],
            samples=samples,
            requests=requests,
            ok=ok,
            throttled=throttled,
            errors=errors,
            timeouts=timeouts,
            error_rate=(errors + timeouts) / requests if requests else 0.0,
            throttle_rate=throttled / requests if requests else 0.0,
            tokens_per_minute=tpm,
            requests_per_second=rps,
            utilization=utilization,
            in_flight=in_flight,
            breaker=breaker_state,
            breaker_reason=reason,
            ejections=ejections,
            tokens_per_call=tokens / ok if ok else math.nan,
            output_tokens_per_call=output_tokens / ok if ok else math.nan,
            breaker_until=until,
        )
