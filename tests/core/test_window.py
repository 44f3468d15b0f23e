"""Time-based sliding windows: totals equal the recent buckets, old samples age out."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mangaroute.core.histogram import LogScale, histogram_of
from mangaroute.core.outcome import ERROR, OK, THROTTLED, TIMEOUT
from mangaroute.core.window import SlidingWindow

BUCKET_NS = 1_000_000_000
BUCKETS = 6
START = 10**12

events = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=4 * BUCKET_NS),  # time step
        st.sampled_from([OK, THROTTLED, ERROR, TIMEOUT]),
        st.floats(min_value=1.0, max_value=10_000.0, allow_nan=False),
        st.integers(min_value=0, max_value=2000),
    ),
    max_size=120,
)


@given(events, st.integers(min_value=0, max_value=20 * BUCKET_NS))
@settings(max_examples=200, deadline=None)
def test_totals_are_exactly_the_samples_of_the_live_buckets(
    steps: list[tuple[int, int, float, int]], tail: int
) -> None:
    scale = LogScale(0.01)
    window = SlidingWindow(scale, buckets=BUCKETS, bucket_ns=BUCKET_NS, now_ns=START)
    now = START
    seen: list[tuple[int, int, float, int]] = []
    for step, outcome, latency, tokens in steps:
        now += step
        window.add(now, outcome, latency, None, tokens, 0)
        seen.append((now, outcome, latency, tokens))
    now += tail
    window.advance(now)
    oldest_live_epoch = now // BUCKET_NS - BUCKETS + 1
    live = [s for s in seen if s[0] // BUCKET_NS >= oldest_live_epoch]
    totals = window.totals
    assert totals.counts == [sum(1 for s in live if s[1] == code) for code in range(4)]
    assert totals.input_tokens == sum(s[3] for s in live)
    assert totals.latency == histogram_of(scale, [s[2] for s in live if s[1] in (OK, TIMEOUT)])


def test_an_idle_window_forgets_everything_after_its_length() -> None:
    window = SlidingWindow(LogScale(), buckets=12, bucket_ns=5 * BUCKET_NS, now_ns=START)
    for i in range(100):
        window.add(START + i * 10_000_000, OK, 500.0, 120.0, 500, 300)
    assert window.totals.requests == 100
    window.advance(START + 59 * BUCKET_NS)
    assert window.totals.requests == 100  # still inside the 60 s window
    window.advance(START + 61 * BUCKET_NS)
    assert window.totals.requests == 0
    assert window.totals.latency == {} and window.totals.ttft == {}


def test_fast_errors_and_throttles_do_not_enter_the_latency_histogram() -> None:
    window = SlidingWindow(LogScale(), buckets=4, bucket_ns=BUCKET_NS, now_ns=START)
    window.add(START, ERROR, 5.0, None, 0, 0)
    window.add(START, THROTTLED, 3.0, None, 0, 0)
    window.add(START, TIMEOUT, 1500.0, None, 0, 0)
    window.add(START, OK, 600.0, 150.0, 10, 20)
    assert sum(window.totals.latency.values()) == 2
    assert sum(window.totals.ttft.values()) == 1
    assert window.totals.counts == [1, 1, 1, 1]


def test_span_starts_at_one_bucket_and_grows_to_the_window() -> None:
    window = SlidingWindow(LogScale(), buckets=12, bucket_ns=5 * BUCKET_NS, now_ns=START)
    assert window.span_ns(START + 1) == 5 * BUCKET_NS
    assert window.span_ns(START + 30 * BUCKET_NS) == 30 * BUCKET_NS
    assert window.span_ns(START + 3600 * BUCKET_NS) <= 60 * BUCKET_NS


def test_a_late_sample_from_an_older_reading_lands_in_the_current_bucket() -> None:
    window = SlidingWindow(LogScale(), buckets=4, bucket_ns=BUCKET_NS, now_ns=START)
    window.add(START + 3 * BUCKET_NS, OK, 100.0, None, 0, 0)
    window.add(START + 2 * BUCKET_NS, OK, 100.0, None, 0, 0)  # another thread's older clock
    assert window.totals.counts[OK] == 2
