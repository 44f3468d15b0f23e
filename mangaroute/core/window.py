"""Time-based sliding windows: a ring of time buckets.

A window of ``buckets`` x ``bucket_ns`` (for example 12 x 5 s) keeps, per bucket, latency and
time-to-first-token histograms, a count per outcome and token sums, plus running totals over
the whole ring. ``add`` touches one bucket and the totals (O(1)); when time moves past a
bucket, its contents are subtracted from the totals and it is reused, so an idle target's old
samples age out and memory stays constant (bounded by the histogram's bin count).

The window is not thread-safe: the router guards each target's window with that target's lock.
"""

from __future__ import annotations

from mangaroute.core.histogram import LogScale, subtract_counts
from mangaroute.core.outcome import OK, TIMEOUT

_NO_EPOCH = -(2**62)


class Bucket:
    """Everything observed during one time slice (or, for the totals, the whole window)."""

    __slots__ = ("counts", "epoch", "input_tokens", "latency", "output_tokens", "ttft")

    def __init__(self) -> None:
        self.epoch = _NO_EPOCH
        self.latency: dict[int, int] = {}
        self.ttft: dict[int, int] = {}
        self.counts = [0, 0, 0, 0]  # indexed by outcome code: ok, throttled, error, timeout
        self.input_tokens = 0
        self.output_tokens = 0

    def clear(self) -> None:
        self.latency.clear()
        self.ttft.clear()
        self.counts[:] = (0, 0, 0, 0)
        self.input_tokens = 0
        self.output_tokens = 0

    @property
    def requests(self) -> int:
        return sum(self.counts)


class SlidingWindow:
    """A time-based ring of :class:`Bucket` with running totals."""

    __slots__ = ("_bucket_ns", "_buckets", "_current", "_epoch", "_scale", "_started_ns", "totals")

    def __init__(
        self, scale: LogScale, *, buckets: int = 12, bucket_ns: int = 5_000_000_000, now_ns: int
    ) -> None:
        if buckets < 2:
            raise ValueError(f"a sliding window needs at least 2 buckets, got {buckets}")
        if bucket_ns <= 0:
            raise ValueError(f"bucket width must be > 0 ns, got {bucket_ns}")
        self._scale = scale
        self._bucket_ns = bucket_ns
        self._buckets = [Bucket() for _ in range(buckets)]
        self.totals = Bucket()
        self._started_ns = now_ns
        self._epoch = now_ns // bucket_ns
        self._current = self._buckets[self._epoch % buckets]
        self._current.epoch = self._epoch

    def add(
        self,
        now_ns: int,
        outcome: int,
        latency_ms: float,
        ttft_ms: float | None,
        input_tokens: int,
        output_tokens: int,
    ) -> None:
        """Count one finished call. Latency enters the histogram for ``ok`` and ``timeout``
        outcomes only: a fast error or a throttle says nothing about how long an answer takes,
        and letting it in is what makes naive latency routing favour a failing target."""
        epoch = now_ns // self._bucket_ns
        if epoch > self._epoch:
            self._roll(epoch)
        bucket = self._current
        totals = self.totals
        bucket.counts[outcome] += 1
        totals.counts[outcome] += 1
        bucket.input_tokens += input_tokens
        totals.input_tokens += input_tokens
        bucket.output_tokens += output_tokens
        totals.output_tokens += output_tokens
        if outcome in (OK, TIMEOUT):
            index = self._scale.index(latency_ms)
            bucket.latency[index] = bucket.latency.get(index, 0) + 1
            totals.latency[index] = totals.latency.get(index, 0) + 1
            if ttft_ms is not None and outcome == OK:
                index = self._scale.index(ttft_ms)
                bucket.ttft[index] = bucket.ttft.get(index, 0) + 1
                totals.ttft[index] = totals.ttft.get(index, 0) + 1

    def advance(self, now_ns: int) -> bool:
        """Age out buckets that ``now_ns`` has left behind (called at snapshot rebuilds so
        that a target nobody calls still forgets); True when the ring moved."""
        epoch = now_ns // self._bucket_ns
        if epoch > self._epoch:
            self._roll(epoch)
            return True
        return False

    def span_ns(self, now_ns: int) -> int:
        """The time the totals cover, for turning counts into rates: the full buckets plus the
        current partial one, never more than the window has existed, and never less than one
        bucket (so the first call of a young window does not read as a huge rate)."""
        full = (len(self._buckets) - 1) * self._bucket_ns
        partial = now_ns % self._bucket_ns + 1
        return max(self._bucket_ns, min(full + partial, now_ns - self._started_ns))

    def _roll(self, epoch: int) -> None:
        ring = self._buckets
        size = len(ring)
        if epoch - self._epoch >= size:
            for bucket in ring:
                bucket.clear()
            self.totals.clear()
        else:
            totals = self.totals
            for step in range(self._epoch + 1, epoch + 1):
                bucket = ring[step % size]
                if bucket.epoch != _NO_EPOCH:
                    subtract_counts(totals.latency, bucket.latency)
                    subtract_counts(totals.ttft, bucket.ttft)
                    for code in range(4):
                        totals.counts[code] -= bucket.counts[code]
                    totals.input_tokens -= bucket.input_tokens
                    totals.output_tokens -= bucket.output_tokens
                    bucket.clear()
        for step in range(max(self._epoch + 1, epoch - size + 1), epoch + 1):
            ring[step % size].epoch = step
        self._epoch = epoch
        self._current = ring[epoch % size]
