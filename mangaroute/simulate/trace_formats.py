"""The rows of a trace, by format: CSV lines and Bedrock model-invocation log records.

:mod:`mangaroute.simulate.trace` reads the file (gzip, line numbers, line-length bound) and
hands each format's reader numbered lines and a :class:`Rows` collector; the readers here turn
a line into a row or a :class:`TraceError` naming the file, the line and the field. Field by
field, what is read is in ``docs/simulate.md`` ("Replaying traffic"): for invocation logs the
record as AWS documents it ("Monitor model invocation using CloudWatch Logs and Amazon S3",
https://docs.aws.amazon.com/bedrock/latest/userguide/model-invocation-logging.html).
"""

from __future__ import annotations

import csv
import json
import re
from array import array
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from mangaroute.core.errors import ConfigError

__all__ = [
    "CSV_HEADERS",
    "MAX_MESSAGES",
    "MAX_TOKENS",
    "SIMPLE_MAX_OUTPUT",
    "Rows",
    "TraceError",
    "class_by_rule",
    "parse_timestamp",
    "read_csv",
    "read_log",
]

MAX_MESSAGES = 5_000_000
"""Most rows a trace may have, and most messages a rescaled replay may have: five
MangaAssist days (a 1M-message day already takes minutes per policy)."""
MAX_TOKENS = 10_000_000
SIMPLE_MAX_OUTPUT = 300
"""The class rule's threshold: an unclassified message with at most this many output tokens
is ``simple``, a longer one ``complex`` (the shipped day's simple answers average 250 tokens,
complex ones 350)."""
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


class Rows:
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


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def read_csv(lines: Iterator[tuple[int, str]], rows: Rows) -> None:
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


def _split(rows: Rows, number: int, text: str) -> list[str]:
    """The cells of one CSV line (``csv``'s rules, strict; plain lines split directly)."""
    if '"' not in text and "\r" not in text and "\x00" not in text:
        return text.split(",")
    try:
        return next(csv.reader([text], strict=True))
    except (csv.Error, StopIteration) as exc:
        raise rows.error(number, "", f"is not a CSV row: {exc}") from None


def _csv_columns(rows: Rows, number: int, names: list[str]) -> dict[str, int]:
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


def read_log(lines: Iterator[tuple[int, str]], rows: Rows) -> None:
    for number, text in lines:
        try:
            record = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise rows.error(number, "", f"is not a JSON record: {str(exc)[:80]}") from None
        if not isinstance(record, dict):
            raise rows.error(number, "", "expected a JSON object (one log record a line)")
        _log_record(rows, number, record)


def _log_record(rows: Rows, number: int, record: dict[str, Any]) -> None:
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
    rows: Rows, number: int, record: dict[str, Any], key: str, *, required: bool
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
    rows: Rows, number: int, *places: tuple[str, object] | list[tuple[str, object]]
) -> int:
    """The first recorded value of ``places`` (``(field, value)``), 0 when none is."""
    flat: list[tuple[str, object]] = []
    for place_ in places:
        flat.extend(place_ if isinstance(place_, list) else [place_])
    for field, value in flat:
        if value is not None:
            return rows.count(number, field, value)
    return 0
