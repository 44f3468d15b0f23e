"""Recorded traffic as a simulated day: CSV traces and Bedrock model-invocation logs.

``mangaroute simulate --trace FILE`` replays real messages instead of drawing a day. Reading
(:func:`read_trace`) keeps each message's absolute time, class and token counts in compact
arrays; :func:`place` puts them on the simulated day in the scenario's zone (local time of day
kept, or shifted to a chosen start); :func:`rescale` replays them at another volume. The
result is a :class:`~mangaroute.simulate.traffic.Replay`, which the engine runs unchanged.

Formats (``docs/simulate.md``, "Replaying traffic", lists them for users):

* CSV with a header row: a timestamp, input tokens, output tokens, optionally a class,
  ``max_tokens`` and cached input tokens (:data:`CSV_HEADERS` holds the accepted names).
* Bedrock model-invocation log records, one JSON object a line, as invocation logging writes
  them to CloudWatch Logs or (gzip-compressed) to S3: ``timestamp``, ``modelId``,
  ``input.inputTokenCount``, ``output.outputTokenCount`` (AWS, "Monitor model invocation using
  CloudWatch Logs and Amazon S3",
  https://docs.aws.amazon.com/bedrock/latest/userguide/model-invocation-logging.html).

Both may be gzip-compressed (recognised by content, not name). This module reads the file;
:mod:`mangaroute.simulate.trace_formats` turns each format's lines into rows. Input is read one
line at a time with a bounded line length, so a huge or malformed file costs at most
:data:`MAX_LINE_BYTES` of text plus about 30 bytes a kept row, and every bad row raises a
:class:`TraceError` naming the file, the line and the field.
"""

from __future__ import annotations

import gzip
import random
import zlib
from array import array
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from importlib import resources
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO

from mangaroute.core.errors import ConfigError
from mangaroute.simulate.trace_formats import (
    CSV_HEADERS,
    MAX_MESSAGES,
    MAX_TOKENS,
    SIMPLE_MAX_OUTPUT,
    Rows,
    TraceError,
    class_by_rule,
    parse_timestamp,
    read_csv,
    read_log,
)
from mangaroute.simulate.traffic import DAY_S, Replay

__all__ = [
    "CSV_HEADERS",
    "FORMATS",
    "MAX_LINE_BYTES",
    "MAX_MESSAGES",
    "MAX_TOKENS",
    "SIMPLE_MAX_OUTPUT",
    "Trace",
    "TraceError",
    "class_by_rule",
    "parse_timestamp",
    "place",
    "read_trace",
    "rescale",
    "shipped_traces",
]

TRACE_DIR = ("data", "traces")
FORMATS = ("auto", "csv", "invocation-log")
MAX_LINE_BYTES = 16 * 1024 * 1024
"""Longest line read (an invocation-log record carries the prompt and the answer)."""
DAY_NS = DAY_S * 1_000_000_000
MINUTE_NS = 60_000_000_000


@dataclass(frozen=True, slots=True)
class Trace:
    """A trace as read, in file order: absolute times, not yet placed on the day."""

    source: str
    format: str
    classes: tuple[str, ...]
    epoch_ns: array[int]
    whole_second: bytearray
    """1 where the timestamp had only whole seconds (such rows are spread over their second
    when placed)."""
    klass: array[int]
    input_tokens: array[int]
    output_tokens: array[int]
    max_tokens: array[int] | None
    cached_tokens: array[int] | None
    skipped: int = 0
    """Records left out: invocation-log records of failed calls (``errorCode``, no output)."""
    by_rule: int = 0
    """Rows whose class came from :func:`class_by_rule`."""

    def __len__(self) -> int:
        return len(self.epoch_ns)


def shipped_traces() -> list[str]:
    """File names of the example traces that ship with the package."""
    folder = resources.files("mangaroute").joinpath(*TRACE_DIR)
    return sorted(e.name for e in folder.iterdir() if e.name.startswith("example"))


def read_trace(path: str, *, classes: Sequence[str], fmt: str = "auto") -> Trace:
    """Read a CSV trace or an invocation log (``fmt``: one of :data:`FORMATS`; ``auto`` looks
    at the first record). ``classes`` are the request classes rows may name (the config's).
    Raises :class:`TraceError` for a bad row, an unreadable file or no usable rows."""
    if fmt not in FORMATS:
        raise ConfigError(f"--trace-format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    rows = Rows(path, tuple(classes))
    with ExitStack() as stack:
        lines = _records(stack, path)
        first = next(lines, None)
        if first is not None:
            kind = fmt if fmt != "auto" else _sniff(first[1])
            reader = read_log if kind == "invocation-log" else read_csv
            reader(_chain(first, lines), rows)
            return _finish(rows, kind)
    raise TraceError(path, 0, "", "is empty: a trace needs a header and at least one row")


def place(
    trace: Trace,
    *,
    utc_offset_hours: float,
    seed: int,
    start_s: float | None = None,
    hours: tuple[float, float] | None = None,
) -> Replay:
    """Put ``trace`` on the simulated day. Each message keeps its local time of day at
    ``utc_offset_hours`` (the day is the local date of the first message), or, with
    ``start_s``, the first message arrives at that local time and the rest keep their spacing.
    Whole-second timestamps are spread uniformly over their second (seeded). ``hours``
    (seconds after midnight) keeps only the messages within it. Raises :class:`TraceError`
    when the trace does not fit on one day or nothing is left."""
    offset = round(utc_offset_hours * 3600) * 1_000_000_000
    first, last = min(trace.epoch_ns) + offset, max(trace.epoch_ns) + offset
    if last - first >= DAY_NS:
        raise TraceError(
            trace.source, 0, "", f"spans {(last - first) / 3.6e12:.1f} h: replay at most one day"
        )
    shift = -(first // DAY_NS) * DAY_NS if start_s is None else round(start_s * 1e9) - first
    if last + shift >= DAY_NS:
        raise TraceError(
            trace.source,
            0,
            "",
            f"runs past local midnight (until {_clock(last + shift)}): place it earlier "
            "with --trace-start HH:MM",
        )
    low, high = (0, DAY_NS) if hours is None else (round(hours[0] * 1e9), round(hours[1] * 1e9))
    kept = array("L")
    times = array("q")
    for i, t in _spread(trace, offset + shift, random.Random(f"{seed}/trace-place")):
        if low <= t < high:
            kept.append(i)
            times.append(t)
    if not kept:
        raise TraceError(trace.source, 0, "", "has no rows within --hours")
    if all(a <= b for a, b in zip(times, islice(times, 1, None), strict=False)):
        order: Sequence[int] = range(len(kept))  # a sorted trace is not sorted again
    else:
        order = array("L", sorted(range(len(kept)), key=times.__getitem__))
    index = array("L", (kept[k] for k in order))
    start = times[order[0]] // MINUTE_NS * 60
    end = min(DAY_S, (times[order[-1]] // MINUTE_NS + 1) * 60)
    window = (float(start), float(end)) if hours is None else hours
    return Replay(
        trace.classes,
        array("q", (times[k] for k in order)),
        array("b", (trace.klass[i] for i in index)),
        array("I", (trace.input_tokens[i] for i in index)),
        array("I", (trace.output_tokens[i] for i in index)),
        window,
        _pick(trace.max_tokens, index),
        _pick(trace.cached_tokens, index),
        trace.source,
    )


def rescale(
    replay: Replay, *, seed: int, rate: float | None = None, messages: int | None = None
) -> Replay:
    """``replay`` at ``rate`` times its arrival rate, or with exactly ``messages`` messages,
    over the same times of day. Message i is kept ``floor((i+1)m/n + U) - floor(im/n + U)``
    times (a systematic sample with a seeded offset U: exactly m messages, spread evenly in
    time); its extra copies arrive at seeded uniform times between it and the next message."""
    n = len(replay)
    if (rate is None) == (messages is None):
        raise ValueError("give exactly one of rate and messages")
    if rate is not None:
        if not 0 < rate < float("inf"):
            raise ConfigError(f"--trace-rate must be > 0, got {rate:g}")
        messages = round(n * rate)
        if messages < 1:
            raise ConfigError(f"--trace-rate {rate:g} leaves no message of {n}")
    assert messages is not None
    if not 1 <= messages <= MAX_MESSAGES:
        raise ConfigError(f"--trace-messages must be in 1..{MAX_MESSAGES:,}, got {messages:,}")
    rng = random.Random(f"{seed}/trace-rescale")
    offset = int(rng.random() * n)
    times = replay.time_ns
    end_ns = round(replay.window[1] * 1e9)
    index = array("L")
    out_times = array("q")
    for i in range(n):
        copies = ((i + 1) * messages + offset) // n - (i * messages + offset) // n
        if not copies:
            continue
        t = times[i]
        gap = (times[i + 1] if i + 1 < n else end_ns) - t
        extra = sorted(t + int(rng.random() * gap) for _ in range(copies - 1))
        out_times.append(t)
        out_times.extend(extra)
        index.extend([i] * copies)
    return Replay(
        replay.classes,
        out_times,
        array("b", (replay.klass[i] for i in index)),
        array("I", (replay.input_tokens[i] for i in index)),
        array("I", (replay.output_tokens[i] for i in index)),
        replay.window,
        _pick(replay.max_tokens, index),
        _pick(replay.cached_tokens, index),
        replay.source,
    )


def _spread(trace: Trace, shift: int, rng: random.Random) -> Iterator[tuple[int, int]]:
    """``(row, time on the day)``: the time shifted, a run of rows stamped with the same whole
    second spread over that second by sorted uniform draws (so a sorted trace stays sorted)."""
    epochs, whole = trace.epoch_ns, trace.whole_second
    n = len(epochs)
    i = 0
    while i < n:
        t = epochs[i] + shift
        end = i + 1
        if whole[i]:
            while end < n and whole[end] and epochs[end] == epochs[i]:
                end += 1
            draws = sorted(int(rng.random() * 1e9) for _ in range(end - i))
            for row, draw in zip(range(i, end), draws, strict=True):
                yield row, min(t + draw, DAY_NS - 1)
        else:
            yield i, t
        i = end


def _pick(values: array[int] | None, index: Sequence[int]) -> array[int] | None:
    return None if values is None else array("I", (values[i] for i in index))


def _clock(ns: int) -> str:
    minutes = ns // MINUTE_NS
    day, minute = divmod(minutes, 1440)
    return f"{minute // 60:02d}:{minute % 60:02d}" + (f" +{day}d" if day else "")


def _finish(rows: Rows, kind: str) -> Trace:
    if not rows.epoch:
        skipped = f" ({rows.skipped} records of failed calls skipped)" if rows.skipped else ""
        raise TraceError(rows.source, 0, "", f"has no usable rows{skipped}")
    return Trace(
        rows.source,
        kind,
        rows.classes,
        rows.epoch,
        rows.whole,
        rows.klass,
        rows.tin,
        rows.tout,
        rows.max_tokens if any(rows.max_tokens) else None,
        rows.cached if any(rows.cached) else None,
        rows.skipped,
        rows.by_rule,
    )


def _sniff(line: str) -> str:
    return "invocation-log" if line.lstrip().startswith("{") else "csv"


def _chain(first: tuple[int, str], rest: Iterator[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    yield first
    yield from rest


def _records(stack: ExitStack, path: str) -> Iterator[tuple[int, str]]:
    """Numbered lines of ``path`` (a file, or a shipped example by name; gzip by content),
    without blank lines and ``#`` comments."""
    raw = _open(stack, path)
    head = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
    stream: Any = raw
    if head == b"\x1f\x8b":
        stream = stack.enter_context(gzip.GzipFile(fileobj=raw, mode="rb"))
    return _numbered(stream, path)


def _open(stack: ExitStack, path: str) -> Any:
    file = Path(path)
    if not file.exists() and path in shipped_traces():
        resource = resources.files("mangaroute").joinpath(*TRACE_DIR, path)
        return stack.enter_context(resource.open("rb"))
    try:
        return stack.enter_context(file.open("rb"))
    except OSError as exc:
        shipped = ", ".join(shipped_traces())
        raise TraceError(
            path, 0, "", f"cannot be read: {exc.strerror or exc} (shipped traces: {shipped})"
        ) from None


def _numbered(stream: BinaryIO, path: str) -> Iterator[tuple[int, str]]:
    number = 0
    while True:
        number += 1
        try:
            data = stream.readline(MAX_LINE_BYTES + 1)
        except (OSError, EOFError, zlib.error) as exc:
            raise TraceError(path, number, "", f"cannot be read: {exc}") from None
        if not data:
            return
        if len(data) > MAX_LINE_BYTES:
            raise TraceError(path, number, "", f"is longer than {MAX_LINE_BYTES:,} bytes")
        try:
            text = data.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise TraceError(path, number, "", f"is not UTF-8 text ({exc.reason})") from None
        text = text.rstrip("\r\n")
        if text.strip() and not text.lstrip().startswith("#"):
            yield number, text
