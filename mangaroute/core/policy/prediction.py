"""Deadline-aware latency prediction: how long *this* call would take on each target.

A foundation-model call takes a time to first token (TTFT) and then a time per output token,
so a 600-token answer takes longer than a 100-token one on the same target. At each snapshot
rebuild :class:`LatencyPredictor` turns a target's window into a line

    predicted p99 (ms) = a + b x output_tokens

``a`` is the observed TTFT p99. ``b`` is the median time per output token - the window's
median latency minus its median TTFT, over the window's average answer length - scaled by the
TTFT's tail ratio (p99 / p50): a call that is slow to start is slow to finish, and medians are
not inflated by the mix of short and long answers that inflates a whole-call p99. Without
streamed TTFT samples (or before a target has ``min_samples``) the target's p99 is split into
``ttft_share`` before the first token and the rest over ``avg_output_tokens`` - the seed's
profiles are whole-call latencies of MangaAssist's ~300-token answers.

The line is then inflated by load, in the spirit of Finagle's peak-EWMA load balancer (cost =
latency x (outstanding + 1)) - for targets whose latency grows with load: those with parallel
slots (a concurrency limit, or instances serving so many requests per second: slots = rate x
observed median latency, Little's law). A foundation-model endpoint runs many calls in
parallel, so the outstanding work is normalised - the larger of the target's utilization and
its in-flight calls over its slots (utilization alone while the median is still the prior's,
see :func:`parallel_slots`) - and only the part above ``load_knee`` counts:
``factor = 1 + load_weight x (rho - knee) / (1 - knee)``. A tokens-per-minute limit (Bedrock
model units and quotas) throttles rather than slows down, so it inflates nothing. The window p99
itself is the peak-sensitive part: a slow spike enters at once and leaves only when its bucket
ages out.

Fast failures must not look attractive: latency windows only hold ``ok`` and ``timeout``
samples (see :mod:`mangaroute.core.window`), and :meth:`LatencyPredictor.expected_ms` divides
by the success rate - a target failing half its calls costs about two attempts per answer.
The per-request check itself (``a + b x tokens <= budget``) runs in ``choose()`` over these
precomputed pairs: O(targets), no allocation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from mangaroute.core.limits import check_fields
from mangaroute.core.snapshot import TargetView


@dataclass(frozen=True, slots=True)
class LatencyPredictor:
    """Per-target predicted p99 as ``a + b x output_tokens``; see the module docstring."""

    ttft_share: float = 0.35
    """Share of a whole-call p99 taken as TTFT when no TTFT was observed."""
    avg_output_tokens: int = 300
    """Answer length the prior profiles describe; also the estimate for calls that give none."""
    load_knee: float = 0.7
    load_weight: float = 1.0
    max_error_rate: float = 0.95
    first_token: bool = False
    """The calls are streamed and answered at their first token: the rankers' and filters'
    latency (:meth:`p99_ms`, :meth:`expected_ms`) is the predicted time to first token,
    whatever the answer length (``[router] streamed`` or ``[policies.N.prediction]
    first_token``). The per-call deadline check is told per call (``choose(first_token=)``)."""

    def __post_init__(self) -> None:
        check_fields(self, "prediction")

    def load_factor(self, view: TargetView) -> float:
        """``>= 1``: how much the current load stretches this target's latency."""
        capacity = view.target.capacity
        if not (capacity.concurrency or capacity.requests_per_second):
            return 1.0
        rho = view.utilization
        slots = parallel_slots(view)
        if slots > 0:
            rho = max(rho, view.in_flight / slots)
        if rho <= self.load_knee:
            return 1.0
        return 1.0 + self.load_weight * (rho - self.load_knee) / (1.0 - self.load_knee)

    def line(self, view: TargetView) -> tuple[float, float]:
        """``(a, b)``: predicted p99 in ms is ``a + b x output_tokens`` (load included)."""
        factor = self.load_factor(view)
        tokens = view.output_tokens_per_call
        ttft50, ttft99 = view.ttft_p50_ms, view.ttft_p99_ms
        if (
            view.latency_source == "observed"
            and tokens > 0
            and 0.0 < ttft50 < view.p50_ms
            and ttft50 <= ttft99
        ):
            per_token = (view.p50_ms - ttft50) / tokens * (ttft99 / ttft50)
            return ttft99 * factor, per_token * factor
        p99 = view.p99_ms
        ttft = p99 * self.ttft_share
        per_token = (p99 - ttft) / self.avg_output_tokens
        if view.latency_source == "prior":
            ttft = max(ttft, self.seen_ttft_p99(view))
        return ttft * factor, per_token * factor

    @staticmethod
    def seen_ttft_p99(view: TargetView) -> float:
        """What the window's first tokens already say while the prior stands in (0 without
        any): their median - robust with a handful of samples, where their p99 is just the
        slowest one - times the prior's tail ratio (p99 / p50). :meth:`line` never predicts
        less than this, so a target the window shows to be slow is not taken for the fast
        one its prior describes because it has too few calls to be "observed" (a fine-tuned
        endpoint four times slower, serving 15 calls a minute: first tokens at a median of
        1.3 s against the prior's 420 ms p99)."""
        ttft50 = view.ttft_p50_ms
        if not (ttft50 > 0 and view.p50_ms > 0):  # NaN: no first token seen yet
            return 0.0
        return ttft50 * view.p99_ms / view.p50_ms

    def p99_ms(self, view: TargetView, output_tokens: int | None = None) -> float:
        """Predicted p99 of one call answering ``output_tokens`` tokens."""
        a, b = self.line(view)
        if self.first_token:
            return a
        return a + b * (self.avg_output_tokens if output_tokens is None else output_tokens)

    def expected_ms(self, view: TargetView, output_tokens: int | None = None) -> float:
        """Predicted p99 divided by the success rate: the time per *useful* answer, so a
        target that fails fast does not look fast."""
        failure = min(view.error_rate, self.max_error_rate)
        return self.p99_ms(view, output_tokens) / (1.0 - failure)


def parallel_slots(view: TargetView) -> float:
    """Calls a target can run at once at full capacity (0 when it has no such limit or it is
    not known yet): its concurrency, or its request rate x the *observed* median latency
    (Little's law).

    The in-flight count is measured, so the call duration it is divided by must be measured
    too. Before the window has ``min_samples`` the view's p50 is the prior profile's, which
    describes the seed's reference answers, not these calls: a fine-tuned endpoint of 1.6
    req/s whose prior says 500 ms but whose answers take 7 s would get 0.8 slots instead of
    11, and two calls in flight would read as 2.5 times its capacity. Until then only the
    measured request rate (``utilization``) counts."""
    capacity = view.target.capacity
    if capacity.concurrency:
        return float(capacity.concurrency)
    if capacity.requests_per_second and view.latency_source == "observed" and view.p50_ms > 0:
        return capacity.requests_per_second * view.p50_ms / 1000.0
    return 0.0


@dataclass(frozen=True, slots=True)
class PredictedLatency:
    """Ranker: lowest predicted time per useful answer first (the predictor's
    :meth:`~LatencyPredictor.expected_ms` at the typical answer length)."""

    predictor: LatencyPredictor = field(default_factory=LatencyPredictor)
    name: str = "predicted"

    def rank(self, views: Sequence[TargetView]) -> tuple[list[TargetView], dict[str, float]]:
        scores = {view.name: self.predictor.expected_ms(view) for view in views}
        return sorted(views, key=lambda view: scores[view.name]), scores


@dataclass(frozen=True, slots=True)
class Reliable:
    """Filter: drop a target failing at least ``max_error_rate`` of at least ``min_requests``
    calls in the window - before its breaker opens, and also when errors stay below the
    breaker's threshold (fast errors at 30 % keep a breaker closed but waste a third of the
    attempts)."""

    max_error_rate: float = 0.2
    min_requests: int = 20
    name: str = "reliable"

    def __post_init__(self) -> None:
        check_fields(self, "reliable")

    def exclude(self, view: TargetView) -> str | None:
        if view.requests >= self.min_requests and view.error_rate >= self.max_error_rate:
            return f"unreliable({view.error_rate:.2f})"
        return None
