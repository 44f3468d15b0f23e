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

Both may be gzip-compressed (recognised by content, not name). Input is read one line at a
time with a bounded line length, so a huge or malformed file costs at most
:data:`MAX_LINE_BYTES` of text plus about 30 bytes a kept row, and every bad row raises a
:class:`TraceError` naming the file, the line and the field.
"""

from __future__ import annotations

import csv
import gzip
import json
import random
import re
import zlib
from array import array
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, BinaryIO

from mangaroute.core.errors import ConfigError
from mangaroute.simulate.traffic import DAY_S, Replay

__all__ = [
    "CSV_HEADERS",
    "FORMATS",
    "MAX_LINE_BYTES",
    "MAX_MESSAGES",
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
MAX_MESSAGES = 5_000_000
"""Most rows a trace may have, and most messages a rescaled replay may have: five
MangaAssist days (a 1M-message day already takes minutes per policy)."""
MAX_TOKENS = 10_000_000
SIMPLE_MAX_OUTPUT = 300
"""The class rule's threshold: an unclassified message with at most this many output tokens
is ``simple``, a longer one ``complex`` (the shipped day's simple answers average 250 tokens,
complex ones 350)."""
DAY_NS = DAY_S * 1_000_000_000
MINUTE_NS = 60_000_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

CSV_HEADERS: dict[str, tuple[str, ...]] = {
    "timestamp": ("timestamp", "time", "ts", "datetime", "start_time", "request_time"),
    "input_tokens": (
        "input_tokens",
        "tokens_in",
        "prompt_tokens",
        "input_token_count",
        "inputtokencount",
    ),
    "output_tokens": (
        "output_tokens",
        "tokens_out",
        "completion_tokens",
        "output_token_count",
        "outputtokencount",
    ),
    "class": ("class", "request_class"),
    "max_tokens": ("max_tokens", "maxtokens"),
    "cached_tokens": ("cached_tokens", "cached_input_tokens", "cache_read_input_tokens"),
}
"""Accepted CSV header names per field (case, spaces and dashes ignored); other columns are
ignored. The first three fields are required."""
REQUIRED = ("timestamp", "input_tokens", "output_tokens")

_EPOCH_RE = re.compile(r"(\d{1,16})(?:\.(\d{1,9}))?")
_EPOCH_MS_FROM = 10**11
"""Epoch numbers at or above this are milliseconds: 1e11 s is the year 5138, 1e11 ms 1973."""
_EPOCH_MS_TO = 10**14


class TraceError(ConfigError):
    """A trace cannot be replayed; the message names the file, the line and the field."""

    def __init__(self, source: str, line: int, field: str, message: str) -> None:
        self.line = line
        self.field = field
        super().__init__(message, source=f"{source}:{line}" if line else source, key=field)


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


def class_by_rule(model_id: str, output_tokens: int) -> str:
    """The class of a message whose trace gives none: by the model that served it where its
    id tells (a custom or imported model - MangaAssist's fine-tuned one - ``manga``, whatever
    its base; else Haiku ``simple``, Sonnet or Opus ``complex``), otherwise by answer length
    (:data:`SIMPLE_MAX_OUTPUT`)."""
    model = model_id.lower()
    if "custom-model" in model or "imported-model" in model:
        return "manga"
    if "haiku" in model:
        return "simple"
    if "sonnet" in model or "opus" in model:
        return "complex"
    return "simple" if output_tokens <= SIMPLE_MAX_OUTPUT else "complex"


def parse_timestamp(text: str) -> tuple[int, bool] | None:
    """``(epoch ns, whole seconds only)`` of ISO 8601 with a UTC offset (``Z`` or ``+09:00``)
    or epoch seconds / milliseconds (told apart by size); ``None`` when it is neither."""
    text = text.strip()
    number = _EPOCH_RE.fullmatch(text)
    if number:
        whole, fraction = int(number.group(1)), number.group(2) or ""
        scale = 1_000_000 if whole >= _EPOCH_MS_FROM else 1_000_000_000
        if whole >= _EPOCH_MS_TO:
            return None
        frac_ns = int(fraction.ljust(9, "0")) * scale // 1_000_000_000
        return whole * scale + frac_ns, scale == 1_000_000_000 and not fraction.strip("0")
    if len(text) < 16 or not text[:4].isdigit():
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None or when.utcoffset() is None:
        return None
    delta = when - EPOCH
    ns = (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
    return ns, when.microsecond == 0


def read_trace(path: str, *, classes: Sequence[str], fmt: str = "auto") -> Trace:
    """Read a CSV trace or an invocation log (``fmt``: one of :data:`FORMATS`; ``auto`` looks
    at the first record). ``classes`` are the request classes rows may name (the config's).
    Raises :class:`TraceError` for a bad row, an unreadable file or no usable rows."""
    if fmt not in FORMATS:
        raise ConfigError(f"--trace-format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    rows = _Rows(path, tuple(classes))
    with ExitStack() as stack:
        lines = _records(stack, path)
        first = next(lines, None)
        if first is not None:
            kind = fmt if fmt != "auto" else _sniff(first[1])
            reader = _read_log if kind == "invocation-log" else _read_csv
            reader(_chain(first, lines), rows)
            return rows.finish(kind)
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
    rng = random.Random(f"{seed}/trace-place")
    low, high = (0, DAY_NS) if hours is None else (round(hours[0] * 1e9), round(hours[1] * 1e9))
    kept = array("L")
    times = array("q")
    for i, epoch in enumerate(trace.epoch_ns):
        t = epoch + offset + shift
        if trace.whole_second[i]:
            t = min(t + int(rng.random() * 1e9), DAY_NS - 1)
        if low <= t < high:
            kept.append(i)
            times.append(t)
    if not kept:
        raise TraceError(trace.source, 0, "", "has no rows within --hours")
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


def _pick(values: array[int] | None, index: Sequence[int]) -> array[int] | None:
    return None if values is None else array("I", (values[i] for i in index))


def _clock(ns: int) -> str:
    minutes = ns // MINUTE_NS
    day, minute = divmod(minutes, 1440)
    return f"{minute // 60:02d}:{minute % 60:02d}" + (f" +{day}d" if day else "")


class _Rows:
    """The rows kept so far, as compact arrays; checks what every format shares."""

    def __init__(self, source: str, classes: tuple[str, ...]) -> None:
        self.source = source
        self.classes = classes
        self.index = {name: k for k, name in enumerate(classes)}
        self.epoch = array("q")
        self.whole = bytearray()
        self.klass = array("b")
        self.tin = array("I")
        self.tout = array("I")
        self.max_tokens = array("I")
        self.cached = array("I")
        self.skipped = 0
        self.by_rule = 0

    def error(self, line: int, field: str, message: str) -> TraceError:
        return TraceError(self.source, line, field, message)

    def timestamp(self, line: int, field: str, value: object) -> tuple[int, bool]:
        parsed = parse_timestamp(value) if isinstance(value, str) else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            parsed = parse_timestamp(str(value))
        if parsed is None:
            raise self.error(
                line,
                field,
                "expected ISO 8601 with a UTC offset (2025-01-15T21:04:05+09:00, ...Z) or epoch "
                f"seconds or milliseconds, got {_show(value)}",
            )
        return parsed

    def count(self, line: int, field: str, value: object, *, least: int = 0) -> int:
        if isinstance(value, str):
            digits = value.strip()
            if digits.isascii() and digits.isdigit() and len(digits) <= 12:
                value = int(digits)
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise self.error(line, field, f"expected a whole number >= {least}, got {_show(value)}")
        if value > MAX_TOKENS:
            raise self.error(line, field, f"{value:,} tokens is more than {MAX_TOKENS:,}")
        return value

    def add(
        self,
        line: int,
        when: tuple[int, bool],
        klass: tuple[str, str] | None,
        model_id: str,
        tokens: tuple[int, int, int, int],
    ) -> None:
        """One row; ``klass`` is ``(name, field)`` as given, or ``None`` for the rule."""
        tin, tout, max_tokens, cached = tokens
        if klass is None:
            name = class_by_rule(model_id, tout)
            if name not in self.index:
                raise self.error(
                    line,
                    "class",
                    f"no class given, and the rule's {name!r} is not a request class of the "
                    f"config ({', '.join(self.classes)}): give each row a class",
                )
            self.by_rule += 1
        else:
            name, field = klass
            if name not in self.index:
                raise self.error(
                    line,
                    field,
                    f"unknown request class {name!r} (the config's: {', '.join(self.classes)})",
                )
        if len(self.epoch) >= MAX_MESSAGES:
            raise self.error(line, "", f"more than {MAX_MESSAGES:,} rows: replay a part of it")
        self.epoch.append(when[0])
        self.whole.append(1 if when[1] else 0)
        self.klass.append(self.index[name])
        self.tin.append(tin)
        self.tout.append(tout)
        self.max_tokens.append(max_tokens)
        self.cached.append(cached)

    def finish(self, kind: str) -> Trace:
        if not self.epoch:
            skipped = f" ({self.skipped} records of failed calls skipped)" if self.skipped else ""
            raise TraceError(self.source, 0, "", f"has no usable rows{skipped}")
        return Trace(
            self.source,
            kind,
            self.classes,
            self.epoch,
            self.whole,
            self.klass,
            self.tin,
            self.tout,
            self.max_tokens if any(self.max_tokens) else None,
            self.cached if any(self.cached) else None,
            self.skipped,
            self.by_rule,
        )


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


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


def _read_csv(lines: Iterator[tuple[int, str]], rows: _Rows) -> None:
    number, header = next(lines)
    names = _split(rows, number, header)
    columns = _csv_columns(rows, number, names)
    at_time, at_in, at_out = (columns[field] for field in REQUIRED)
    optional = [(field, columns.get(field)) for field in ("max_tokens", "cached_tokens")]
    at_class = columns.get("class")
    count = rows.count
    for number, text in lines:
        cells = _split(rows, number, text)
        if len(cells) != len(names):
            raise rows.error(
                number, "", f"has {len(cells)} fields where the header has {len(names)}"
            )
        when = rows.timestamp(number, "timestamp", cells[at_time])
        tin = count(number, "input_tokens", cells[at_in])
        tout = count(number, "output_tokens", cells[at_out])
        limit, cached = (
            count(number, field, cells[k]) if k is not None and cells[k].strip() else 0
            for field, k in optional
        )
        name = "" if at_class is None else cells[at_class].strip()
        rows.add(number, when, (name, "class") if name else None, "", (tin, tout, limit, cached))


def _split(rows: _Rows, number: int, text: str) -> list[str]:
    """The cells of one CSV line (``csv``'s rules, strict; plain lines split directly)."""
    if '"' not in text and "\r" not in text and "\x00" not in text:
        return text.split(",")
    try:
        return next(csv.reader([text], strict=True))
    except (csv.Error, StopIteration) as exc:
        raise rows.error(number, "", f"is not a CSV row: {exc}") from None


def _csv_columns(rows: _Rows, number: int, names: list[str]) -> dict[str, int]:
    by_name = {alias: field for field, aliases in CSV_HEADERS.items() for alias in aliases}
    columns: dict[str, int] = {}
    for k, name in enumerate(names):
        field = by_name.get(re.sub(r"[\s\-]+", "_", name.strip().lower()))
        if field is None:
            continue
        if field in columns:
            raise rows.error(
                number, field, f"two columns name it: {names[columns[field]]!r}, {name!r}"
            )
        columns[field] = k
    for field in REQUIRED:
        if field not in columns:
            raise rows.error(
                number,
                field,
                "the header names no such column (accepted: "
                f"{', '.join(CSV_HEADERS[field])}); got {', '.join(names)[:120]}",
            )
    return columns


def _read_log(lines: Iterator[tuple[int, str]], rows: _Rows) -> None:
    for number, text in lines:
        try:
            record = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise rows.error(number, "", f"is not a JSON record: {str(exc)[:80]}") from None
        if not isinstance(record, dict):
            raise rows.error(number, "", "expected a JSON object (one log record a line)")
        _log_record(rows, number, record)


def _log_record(rows: _Rows, number: int, record: dict[str, Any]) -> None:
    """One invocation-log record (see the module docstring for the fields read)."""
    output = _object(rows, number, record, "output", required="errorCode" not in record)
    if "errorCode" in record and "outputTokenCount" not in output:
        rows.skipped += 1
        return
    when = rows.timestamp(number, "timestamp", record.get("timestamp"))
    model_id = record.get("modelId")
    if not isinstance(model_id, str):
        raise rows.error(number, "modelId", f"expected the model id, got {_show(model_id)}")
    given = _object(rows, number, record, "input", required=True)
    tin = rows.count(number, "input.inputTokenCount", given.get("inputTokenCount"))
    tout = rows.count(number, "output.outputTokenCount", output.get("outputTokenCount"))
    usage = _dig(output, "outputBodyJson", "usage")
    cached = _optional(rows, number, _cache(given, usage, "Read"))
    written = _optional(rows, number, _cache(given, usage, "Write"))
    body = _dig(given, "inputBodyJson")
    max_tokens = _optional(
        rows,
        number,
        (
            "input.inputBodyJson.inferenceConfig.maxTokens",
            _dig(body, "inferenceConfig").get("maxTokens"),
        ),
        ("input.inputBodyJson.max_tokens", body.get("max_tokens")),
    )
    meta = _dig(record, "requestMetadata")
    name = meta.get("class", meta.get("request_class"))
    if name is not None and not isinstance(name, str):
        raise rows.error(number, "requestMetadata.class", f"expected a name, got {_show(name)}")
    klass = (name, "requestMetadata.class") if name else None
    rows.add(number, when, klass, model_id, (tin + cached + written, tout, max_tokens, cached))


def _object(
    rows: _Rows, number: int, record: dict[str, Any], key: str, *, required: bool
) -> dict[str, Any]:
    value = record.get(key)
    if isinstance(value, dict):
        return value
    if value is None and not required:
        return {}
    raise rows.error(number, key, f"expected an object, got {_show(value)}")


def _dig(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    for key in keys:
        value = data.get(key)
        data = value if isinstance(value, dict) else {}
    return data


def _cache(given: dict[str, Any], usage: dict[str, Any], kind: str) -> list[tuple[str, object]]:
    """Where cache read/write input tokens may be: the record's own count, else the Converse
    usage block (``cacheReadInputTokens``) or the Anthropic body's (``cache_read_input_tokens``).
    """
    anthropic = f"cache_{'creation' if kind == 'Write' else 'read'}_input_tokens"
    return [
        (f"input.cache{kind}InputTokenCount", given.get(f"cache{kind}InputTokenCount")),
        (
            f"output.outputBodyJson.usage.cache{kind}InputTokens",
            usage.get(f"cache{kind}InputTokens"),
        ),
        (f"output.outputBodyJson.usage.{anthropic}", usage.get(anthropic)),
    ]


def _optional(
    rows: _Rows, number: int, *places: tuple[str, object] | list[tuple[str, object]]
) -> int:
    """The first recorded value of ``places`` (``(field, value)``), 0 when none is."""
    flat: list[tuple[str, object]] = []
    for place_ in places:
        flat.extend(place_ if isinstance(place_, list) else [place_])
    for field, value in flat:
        if value is not None:
            return rows.count(number, field, value)
    return 0
