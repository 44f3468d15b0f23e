"""The MangaAssist traffic day: when messages arrive, of which class, how many tokens.

Figures from the seed document: 1M messages a day (section 2.1: 11.6 req/s on average), an
evening peak 18:00-24:00 JST at about 3.5x the average (``peak_multiplier = 3.5``,
``peak_hours = 6``), flash-sale bursts at about 2x the peak (``burst_factor = 2.0``), about
500 input and 300 output tokens a message. The hourly curve (quiet night, a lunch bump, the
evening peak) is ours: the seed states only the peak; its maximum is 3.5x the mean.

Request classes follow the seed's hybrid split (section 3.1, ``_calc_hybrid``): 50 % of
messages to on-demand Haiku, 15 % to on-demand Sonnet, 10 % to SageMaker, 25 % to provisioned
Sonnet. The 25 % are Sonnet-quality messages that the seed serves on provisioned throughput
at the peak, so by content the mix is **simple 50 %, complex 40 % (15 + 25), manga 10 %**.

Everything random is drawn here, once, from the seed: arrival times, classes, tokens, sessions
and one uniform number per message from which the simulated fleet derives every latency and
failure draw - so each policy in a comparison sees exactly the same day (common random
numbers), and an oracle can know every latency in hindsight.

A recorded day can stand in for the drawn one: :class:`Replay` holds messages read from a
trace (see :mod:`mangaroute.simulate.trace`); a :class:`TrafficModel` carrying one replays its
messages as they are and draws only what a trace does not record (sessions and the per-message
uniform) from the seed.
"""

from __future__ import annotations

import math
import random
from array import array
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist

DAY_S = 86_400
MINUTES = 1440

MANGAASSIST_CURVE: tuple[float, ...] = (
    0.90, 0.35, 0.15, 0.08, 0.06, 0.06, 0.10, 0.20, 0.30, 0.35, 0.40, 0.50,
    0.85, 0.60, 0.35, 0.30, 0.35, 0.55, 2.20, 2.90, 3.30, 3.50, 3.30, 2.60,
)  # fmt: skip
"""Relative traffic per JST hour (00:00 first). Scaled so that the mean is 1, the 21:00 hour
is 3.46x the daily average and 18:00-24:00 carry 72 % of the messages."""

TABLE_SIZE = 4096
"""Quantile tables (token counts, latency multipliers) have this many entries."""


@dataclass(frozen=True, slots=True)
class TokenShape:
    """Tokens of one class: lognormal around the means, ``spread`` its sigma."""

    input_mean: float = 500.0
    output_mean: float = 300.0
    spread: float = 0.35

    def __post_init__(self) -> None:
        if not (self.input_mean >= 1 and self.output_mean >= 1):
            raise ValueError("token means must be >= 1")
        if not 0.0 <= self.spread <= 2.0:
            raise ValueError(f"spread must be in [0, 2], got {self.spread}")


DEFAULT_MIX: dict[str, float] = {"simple": 0.50, "complex": 0.40, "manga": 0.10}
DEFAULT_TOKENS: dict[str, TokenShape] = {
    "simple": TokenShape(450, 250),
    "complex": TokenShape(550, 350),
    "manga": TokenShape(500, 300),
}
"""Averages over the mix: 495 in, 295 out (the seed's 500 / 300)."""


@dataclass(frozen=True, slots=True)
class FlashSale:
    """Extra traffic that lifts the rate to ``multiplier`` x the day's peak rate."""

    start_s: float
    """Seconds after local midnight."""
    minutes: float = 10.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if not 0 <= self.start_s < DAY_S:
            raise ValueError(f"start must be within the day, got {self.start_s} s")
        if not self.minutes > 0 or not self.multiplier > 0:
            raise ValueError("minutes and multiplier must be > 0")


@dataclass(frozen=True, slots=True)
class Replay:
    """Recorded messages, sorted by arrival: what a trace gives the simulator.

    Times are nanoseconds after the simulated day's local midnight; ``max_tokens`` and
    ``cached_tokens`` hold 0 where the trace did not record them (``None``: no message did).
    """

    classes: tuple[str, ...]
    time_ns: array[int]
    klass: array[int]
    input_tokens: array[int]
    output_tokens: array[int]
    window: tuple[float, float]
    """Whole minutes (seconds after midnight) that the messages fall in."""
    max_tokens: array[int] | None = None
    cached_tokens: array[int] | None = None
    source: str = ""

    def __post_init__(self) -> None:
        n = len(self.time_ns)
        sizes = [len(self.klass), len(self.input_tokens), len(self.output_tokens)]
        sizes += [len(a) for a in (self.max_tokens, self.cached_tokens) if a is not None]
        if any(size != n for size in sizes):
            raise ValueError("a replay's arrays must all have one entry per message")
        if n == 0:
            raise ValueError("a replay needs at least one message")
        start, end = self.window
        if not 0 <= start < end <= DAY_S or start % 60 or end % 60:
            raise ValueError(f"window must be whole minutes within the day, got {self.window}")
        if not (start * 1e9 <= self.time_ns[0] and self.time_ns[-1] < end * 1e9):
            raise ValueError("every replayed message must arrive within the window")

    def __len__(self) -> int:
        return len(self.time_ns)


@dataclass(frozen=True, slots=True)
class TrafficModel:
    messages: int = 1_000_000
    curve: tuple[float, ...] = MANGAASSIST_CURVE
    mix: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    tokens: Mapping[str, TokenShape] = field(default_factory=lambda: dict(DEFAULT_TOKENS))
    messages_per_session: float = 5.0
    flash_sales: tuple[FlashSale, ...] = ()
    window: tuple[float, float] = (0.0, float(DAY_S))
    """Simulate only this part of the day (seconds after midnight) at the day's rates: a
    sample; ``messages`` stays the whole day's volume."""
    replay: Replay | None = None
    """Recorded messages to replay instead of drawing the day (``--trace``); the curve, mix,
    tokens and flash sales are then unused, and ``window`` should be the replay's."""

    def __post_init__(self) -> None:
        if self.messages < 1:
            raise ValueError(f"messages must be >= 1, got {self.messages}")
        if len(self.curve) != 24 or min(self.curve) < 0 or sum(self.curve) <= 0:
            raise ValueError("curve must be 24 hourly weights >= 0, not all zero")
        if not self.mix or min(self.mix.values()) < 0 or sum(self.mix.values()) <= 0:
            raise ValueError("mix must give each class a share >= 0, not all zero")
        for name in self.mix:
            if name not in self.tokens:
                raise ValueError(f"class {name!r} has a share in mix but no token shape")
        if not self.messages_per_session >= 1:
            raise ValueError("messages_per_session must be >= 1")
        start, end = self.window
        if not 0 <= start < end <= DAY_S or start % 60 or end % 60:
            raise ValueError(f"window must be whole minutes within the day, got {self.window}")
        if self.replay is not None and self.window != self.replay.window:
            raise ValueError(
                f"a replayed day's window is its trace's, {self.replay.window}, got {self.window}"
            )

    @property
    def classes(self) -> tuple[str, ...]:
        return self.replay.classes if self.replay is not None else tuple(self.mix)

    def day_minute_weights(self) -> list[float]:
        """Relative rate per minute of the whole day: the hourly curve, linear between hour
        centres."""
        curve = self.curve
        weights = []
        for minute in range(MINUTES):
            hour = (minute + 0.5) / 60.0 - 0.5
            low = math.floor(hour)
            frac = hour - low
            weights.append(curve[low % 24] * (1 - frac) + curve[(low + 1) % 24] * frac)
        return weights

    def minute_weights(self) -> list[float]:
        """:meth:`day_minute_weights`, zero outside the window."""
        first, last = int(self.window[0] // 60), int(self.window[1] // 60)
        return [w if first <= m < last else 0.0 for m, w in enumerate(self.day_minute_weights())]

    def window_messages(self) -> int:
        """Messages the window carries (all of them for the whole day)."""
        day = self.day_minute_weights()
        return round(self.messages * sum(self.minute_weights()) / sum(day))

    def peak_rate_per_s(self) -> float:
        weights = self.day_minute_weights()
        return self.messages * max(weights) / sum(weights) / 60.0


@dataclass(slots=True)
class Traffic:
    """One generated day, as compact arrays indexed by message (sorted by arrival)."""

    classes: tuple[str, ...]
    time_ns: array[int]
    """Arrival, nanoseconds after local midnight."""
    klass: array[int]
    """Index into ``classes``."""
    input_tokens: array[int]
    output_tokens: array[int]
    session: array[int]
    draw: array[float]
    """One uniform number in [0, 1) per message; the fleet derives every draw from it."""
    flash_messages: int = 0
    window: tuple[float, float] = (0.0, float(DAY_S))
    max_tokens: array[int] | None = None
    """The request's ``max_tokens`` where a replayed trace recorded it (0: not recorded);
    ``None`` for a drawn day."""
    cached_tokens: array[int] | None = None
    """Input tokens read from the prompt cache, where a replayed trace recorded them."""
    source: str = ""
    """Where the messages came from: empty for a drawn day, the trace file for a replay."""

    def __len__(self) -> int:
        return len(self.time_ns)


def generate(model: TrafficModel, seed: int) -> Traffic:
    """Draw one day (or replay the model's recorded one). Deterministic for a given model and
    seed."""
    if model.replay is not None:
        return _replayed(model.replay, model.messages_per_session, seed)
    rng = random.Random(seed)
    times = _arrivals(model, rng)
    extra = _flash_arrivals(model, rng)
    flash = len(extra)
    if extra:
        times = sorted(times + extra)
    n = len(times)
    classes = model.classes
    shares = list(model.mix.values())
    cumulative = [sum(shares[: i + 1]) / sum(shares) for i in range(len(shares))]
    tables = [
        (
            _lognormal_table(model.tokens[name].input_mean, model.tokens[name].spread),
            _lognormal_table(model.tokens[name].output_mean, model.tokens[name].spread),
        )
        for name in classes
    ]
    sessions = max(1, round(n / model.messages_per_session))
    klass = array("b", bytes(n))
    tin = array("H", bytes(2 * n))
    tout = array("H", bytes(2 * n))
    session = array("I", bytes(4 * n))
    draw = array("d", bytes(8 * n))
    rand = rng.random
    last = len(cumulative) - 1
    size = TABLE_SIZE
    for i in range(n):
        c = bisect_right(cumulative, rand())
        c = min(c, last)
        klass[i] = c
        table_in, table_out = tables[c]
        tin[i] = table_in[int(rand() * size)]
        tout[i] = table_out[int(rand() * size)]
        session[i] = int(rand() * sessions)
        draw[i] = rand()
    return Traffic(
        classes,
        array("q", (round(t * 1e9) for t in times)),
        klass,
        tin,
        tout,
        session,
        draw,
        flash,
        model.window,
    )


def _replayed(replay: Replay, messages_per_session: float, seed: int) -> Traffic:
    """``replay`` as a day: sessions and draws (which no trace records) from the seed, drawn
    as :func:`generate` draws them."""
    rng = random.Random(seed)
    rand = rng.random
    n = len(replay)
    sessions = max(1, round(n / messages_per_session))
    session = array("I", bytes(4 * n))
    draw = array("d", bytes(8 * n))
    for i in range(n):
        session[i] = int(rand() * sessions)
        draw[i] = rand()
    return Traffic(
        replay.classes,
        replay.time_ns,
        replay.klass,
        replay.input_tokens,
        replay.output_tokens,
        session,
        draw,
        0,
        replay.window,
        replay.max_tokens,
        replay.cached_tokens,
        replay.source,
    )


def _arrivals(model: TrafficModel, rng: random.Random) -> list[float]:
    """``messages`` arrival times (s after midnight) from the curve, by inverse transform of
    sorted uniforms: exactly the configured number of messages."""
    weights = model.minute_weights()
    total = sum(weights)
    cumulative = []
    running = 0.0
    for weight in weights:
        running += weight / total
        cumulative.append(running)
    cumulative[-1] = 1.0
    uniforms = sorted(rng.random() for _ in range(model.window_messages()))
    times = []
    minute = 0
    below = 0.0
    for u in uniforms:
        while u >= cumulative[minute] and minute < MINUTES - 1:
            below = cumulative[minute]
            minute += 1
        width = cumulative[minute] - below
        frac = (u - below) / width if width > 0 else 0.0
        times.append((minute + min(max(frac, 0.0), 1.0)) * 60.0)
    return times


def _flash_arrivals(model: TrafficModel, rng: random.Random) -> list[float]:
    """Extra messages lifting each minute of a flash sale to ``multiplier`` x the peak rate."""
    extra: list[float] = []
    if not model.flash_sales:
        return extra
    weights = model.day_minute_weights()
    total = sum(weights)
    peak = model.messages * max(weights) / total / 60.0
    for sale in model.flash_sales:
        start = max(sale.start_s, model.window[0])
        end = min(model.window[1], sale.start_s + sale.minutes * 60.0)
        t = start
        while t < end:
            minute = min(int(t // 60), MINUTES - 1)
            base = model.messages * weights[minute] / total / 60.0
            rate = max(0.0, sale.multiplier * peak - base)
            step_end = min(end, (minute + 1) * 60.0)
            count = _poisson(rng, rate * (step_end - t))
            extra.extend(t + rng.random() * (step_end - t) for _ in range(count))
            t = step_end
    return extra


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw; normal approximation above 50 (flash sales have thousands a minute)."""
    if mean <= 0:
        return 0
    if mean > 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit = math.exp(-mean)
    count = 0
    product = rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _lognormal_table(mean: float, sigma: float) -> list[int]:
    """Quantiles of a lognormal with this mean (integers >= 1, capped at 16x the mean)."""
    mu = math.log(mean) - sigma * sigma / 2.0
    normal = NormalDist()
    cap = 16 * mean
    table = []
    for k in range(TABLE_SIZE):
        z = normal.inv_cdf((k + 0.5) / TABLE_SIZE)
        table.append(max(1, min(round(math.exp(mu + sigma * z)), int(cap))))
    return table


def hourly_counts(traffic: Traffic) -> list[int]:
    """Messages per local hour (for reports and tests)."""
    counts = [0] * 24
    for t in traffic.time_ns:
        counts[min(23, int(t // 3_600_000_000_000))] += 1
    return counts


def class_counts(traffic: Traffic) -> dict[str, int]:
    counts = [0] * len(traffic.classes)
    for c in traffic.klass:
        counts[c] += 1
    return dict(zip(traffic.classes, counts, strict=True))


def mean(values: Sequence[int]) -> float:
    return sum(values) / len(values) if values else 0.0
