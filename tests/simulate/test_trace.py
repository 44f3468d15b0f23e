"""Reading traces: CSV and Bedrock invocation logs, timestamps, classes, bad rows, big files."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mangaroute.core.errors import ConfigError
from mangaroute.simulate import trace as trace_module
from mangaroute.simulate import trace_formats
from mangaroute.simulate.trace import (
    CSV_HEADERS,
    Trace,
    TraceError,
    class_by_rule,
    parse_timestamp,
    read_trace,
)

CLASSES = ("simple", "complex", "manga")
HEADER = "timestamp,input_tokens,output_tokens,class"
T0 = 1_736_938_800  # 2025-01-15 11:00:00 UTC = 20:00 JST
NS = 1_000_000_000


def write(tmp_path: Path, text: str, name: str = "t.csv") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def read(path: str, classes: tuple[str, ...] = CLASSES) -> Trace:
    return read_trace(path, classes=classes)


def error_of(path: str, classes: tuple[str, ...] = CLASSES) -> TraceError:
    with pytest.raises(TraceError) as caught:
        read(path, classes)
    return caught.value


def record(**changes: object) -> dict[str, object]:
    """An invocation-log record as Bedrock writes it for a Converse call."""
    base: dict[str, object] = {
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": "2025-01-15T11:00:17Z",
        "accountId": "111122223333",
        "region": "ap-northeast-1",
        "requestId": "915a6a04-3f83-4c70-a277-7fbf7ea546b3",
        "operation": "Converse",
        "modelId": "anthropic.claude-3-haiku-20240307-v1:0",
        "input": {
            "inputContentType": "application/json",
            "inputBodyJson": {"messages": [{"role": "user", "content": [{"text": "x"}]}]},
            "inputTokenCount": 35,
        },
        "output": {
            "outputContentType": "application/json",
            "outputBodyJson": {"usage": {"inputTokens": 35, "outputTokens": 446}},
            "outputTokenCount": 446,
        },
    }
    base.update(changes)
    return base


def log_file(tmp_path: Path, *records: object, name: str = "log.jsonl") -> str:
    return write(tmp_path, "".join(json.dumps(r) + "\n" for r in records), name)


# --- timestamps -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ns", "whole"),
    [
        ("2025-01-15T20:00:00+09:00", T0 * NS, True),
        ("2025-01-15T11:00:00Z", T0 * NS, True),
        ("2025-01-15 11:00:00.250+00:00", T0 * NS + 250_000_000, False),
        ("2025-01-15T06:00:00.000001-05:00", T0 * NS + 1000, False),
        (str(T0), T0 * NS, True),
        (f"{T0}.5", T0 * NS + 500_000_000, False),
        (f"{T0}.000", T0 * NS, True),
        (str(T0 * 1000 + 123), T0 * NS + 123_000_000, False),
        (f" {T0 * 1000} ", T0 * NS, False),
    ],
)
def test_timestamps_iso_with_offset_and_epoch_seconds_or_milliseconds(
    text: str, ns: int, whole: bool
) -> None:
    assert parse_timestamp(text) == (ns, whole)


@pytest.mark.parametrize(
    "text",
    [
        "2025-01-15T20:00:00",  # no offset: ambiguous
        "2025-01-15",
        "20:00:00+09:00",
        str(10**14),  # microseconds: not accepted
        "-1736938800",
        "1e9",
        "nan",
        "",
        "yesterday",
        "2025-13-45T99:00:00Z",
    ],
)
def test_timestamps_that_are_not_accepted(text: str) -> None:
    assert parse_timestamp(text) is None


@given(st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2099, 1, 1)))
def test_any_moment_reads_the_same_as_iso_with_any_offset_and_as_epoch_milliseconds(
    moment: datetime,
) -> None:
    moment = moment.replace(tzinfo=UTC)
    ns = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000
    for hours in (-5, 0, 9, 5.5):
        zone = timezone(timedelta(hours=hours))
        assert parse_timestamp(moment.astimezone(zone).isoformat())[0] == ns  # type: ignore[index]
    milliseconds = ns // 1_000_000
    assert parse_timestamp(str(milliseconds))[0] == milliseconds * 1_000_000  # type: ignore[index]


# --- CSV --------------------------------------------------------------------------------


def test_a_csv_trace_reads_times_tokens_classes_and_optional_columns(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "# exported from our orchestrator\n"
        "timestamp,input_tokens,output_tokens,class,max_tokens,cached_input_tokens,user\n"
        "2025-01-15T20:00:00+09:00,500,250,simple,512,0,u1\n"
        "\n"
        f"{T0 + 1},900,410,complex,,256,u2\n"
        f"{(T0 + 2) * 1000 + 500},450,120,manga,768,,u3\n",
    )
    trace = read(path)
    assert trace.format == "csv"
    assert list(trace.epoch_ns) == [T0 * NS, (T0 + 1) * NS, (T0 + 2) * NS + 500_000_000]
    assert list(trace.whole_second) == [1, 1, 0]
    assert [CLASSES[k] for k in trace.klass] == ["simple", "complex", "manga"]
    assert list(trace.input_tokens) == [500, 900, 450]
    assert list(trace.output_tokens) == [250, 410, 120]
    assert trace.max_tokens is not None and list(trace.max_tokens) == [512, 0, 768]
    assert trace.cached_tokens is not None and list(trace.cached_tokens) == [0, 256, 0]
    assert trace.by_rule == 0 and trace.skipped == 0


def test_header_names_are_matched_loosely_and_the_optional_columns_may_be_absent(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "Time, Prompt Tokens ,Completion-Tokens\n" + f"{T0},10,20\n")
    trace = read(path)
    assert list(trace.input_tokens) == [10] and list(trace.output_tokens) == [20]
    assert trace.max_tokens is None and trace.cached_tokens is None
    for field in ("timestamp", "input_tokens", "output_tokens", "class"):
        assert field in CSV_HEADERS[field]


def test_without_a_class_the_answer_length_decides(tmp_path: Path) -> None:
    rows = "".join(f"{T0 + k},100,{out}\n" for k, out in enumerate((1, 300, 301, 5000)))
    trace = read(write(tmp_path, "timestamp,input_tokens,output_tokens\n" + rows))
    assert [CLASSES[k] for k in trace.klass] == ["simple", "simple", "complex", "complex"]
    assert trace.by_rule == 4


@pytest.mark.parametrize(
    ("model", "output", "klass"),
    [
        ("anthropic.claude-3-haiku-20240307-v1:0", 900, "simple"),
        ("us.anthropic.claude-3-5-haiku-20241022-v1:0", 900, "simple"),
        ("anthropic.claude-3-5-sonnet-20240620-v1:0", 10, "complex"),
        ("apac.anthropic.claude-sonnet-4-20250514-v1:0", 10, "complex"),
        ("anthropic.claude-3-opus-20240229-v1:0", 10, "complex"),
        ("arn:aws:bedrock:ap-northeast-1:1:custom-model/anthropic.claude-3-haiku/abc", 10, "manga"),
        ("arn:aws:bedrock:us-east-1:1:imported-model/xyz", 10, "manga"),
        ("arn:aws:bedrock:ap-northeast-1:1:provisioned-model/mangaassist", 300, "simple"),
        ("arn:aws:bedrock:ap-northeast-1:1:provisioned-model/mangaassist", 301, "complex"),
        ("amazon.nova-lite-v1:0", 50, "simple"),
        ("", 301, "complex"),
    ],
)
def test_the_class_rule(model: str, output: int, klass: str) -> None:
    assert class_by_rule(model, output) == klass


@pytest.mark.parametrize(
    ("rows", "line", "field", "says"),
    [
        ("2025-01-15T20:00:00,1,2,simple", 3, "timestamp", "expected ISO 8601 with a UTC offset"),
        (f"{T0},-3,2,simple", 3, "input_tokens", "expected a whole number >= 0, got '-3'"),
        (f"{T0},1,2.5,simple", 3, "output_tokens", "expected a whole number >= 0, got '2.5'"),
        (f"{T0},1,,simple", 3, "output_tokens", "got ''"),
        (f"{T0},1,99999999999,simple", 3, "output_tokens", "is more than 10,000,000"),
        (f"{T0},1,2,chat", 3, "class", "unknown request class 'chat'"),
        (f"{T0},1,2", 3, "", "has 3 fields where the header has 4"),
        (f'{T0},1,2,"simple', 3, "", "is not a CSV row"),
        (f"{T0},1,2,simple\n{T0},1,2,simple,extra", 4, "", "has 5 fields"),
    ],
)
def test_a_bad_row_names_the_file_the_line_and_the_field(
    tmp_path: Path, rows: str, line: int, field: str, says: str
) -> None:
    path = write(tmp_path, f"# comment\n{HEADER}\n{rows}\n")
    error = error_of(path)
    assert (error.line, error.field) == (line, field)
    where = f"{path}:{line}: [{field}] " if field else f"{path}:{line} "
    assert str(error).startswith(where), str(error)
    assert says in str(error)
    assert isinstance(error, ConfigError)


def test_a_bad_row_error_says_exactly_what_is_wrong(tmp_path: Path) -> None:
    path = write(tmp_path, f"{HEADER}\n{T0},1,2,simple\n{T0},12a,2,simple\n")
    assert str(error_of(path)) == (
        f"{path}:3: [input_tokens] expected a whole number >= 0, got '12a'"
    )


def test_a_header_without_a_required_column_is_an_error_naming_the_accepted_names(
    tmp_path: Path,
) -> None:
    error = error_of(write(tmp_path, "when,input_tokens,output_tokens\n1,2,3\n"))
    assert (error.line, error.field) == (1, "timestamp")
    assert "accepted: timestamp, time, ts" in str(error)
    error = error_of(write(tmp_path, "time,timestamp,input_tokens,output_tokens\n"))
    assert error.field == "timestamp" and "two columns name it" in str(error)


def test_a_rule_class_the_config_does_not_have_is_an_error_asking_for_a_class(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, f"timestamp,input_tokens,output_tokens\n{T0},1,2\n")
    error = error_of(path, ("chat",))
    assert (error.line, error.field) == (2, "class")
    assert "the rule's 'simple' is not a request class of the config (chat)" in str(error)


def test_a_trace_without_usable_rows_is_an_error_not_an_empty_day(tmp_path: Path) -> None:
    assert "is empty" in str(error_of(write(tmp_path, "")))
    assert "is empty" in str(error_of(write(tmp_path, "# only a comment\n\n")))
    assert str(error_of(write(tmp_path, HEADER + "\n"))).endswith("has no usable rows")
    failed = {
        "timestamp": "2025-01-15T11:00:17Z",
        "modelId": "m",
        "errorCode": "ThrottlingException",
    }
    error = error_of(log_file(tmp_path, failed, failed))
    assert str(error).endswith("has no usable rows (2 records of failed calls skipped)")
    assert error.line == 0


def test_a_missing_file_is_an_error_naming_the_shipped_examples(tmp_path: Path) -> None:
    error = error_of(str(tmp_path / "nope.csv"))
    assert "cannot be read" in str(error) and "example.csv" in str(error)


# --- invocation logs --------------------------------------------------------------------


def test_an_invocation_log_record_as_bedrock_writes_it(tmp_path: Path) -> None:
    trace = read(log_file(tmp_path, record()))
    assert trace.format == "invocation-log"
    assert list(trace.epoch_ns) == [(T0 + 17) * NS]
    assert list(trace.input_tokens) == [35] and list(trace.output_tokens) == [446]
    assert [CLASSES[k] for k in trace.klass] == ["simple"]  # Haiku, whatever the length
    assert trace.by_rule == 1
    assert trace.max_tokens is None and trace.cached_tokens is None


def test_max_tokens_cache_reads_and_writes_and_a_class_from_request_metadata(
    tmp_path: Path,
) -> None:
    converse = record(
        input={
            "inputBodyJson": {"inferenceConfig": {"maxTokens": 1024}},
            "inputTokenCount": 100,
        },
        output={
            "outputBodyJson": {
                "usage": {"inputTokens": 100, "cacheReadInputTokens": 800, "outputTokens": 5}
            },
            "outputTokenCount": 5,
        },
        requestMetadata={"class": "manga", "tenant": "jp"},
    )
    anthropic = record(
        operation="InvokeModel",
        modelId="anthropic.claude-3-5-sonnet-20240620-v1:0",
        input={"inputBodyJson": {"max_tokens": 700}, "inputTokenCount": 50},
        output={
            "outputBodyJson": {
                "usage": {"cache_read_input_tokens": 30, "cache_creation_input_tokens": 20}
            },
            "outputTokenCount": 9,
        },
    )
    own_counts = record(
        input={"inputTokenCount": 10, "cacheReadInputTokenCount": 4, "cacheWriteInputTokenCount": 1}
    )
    trace = read(log_file(tmp_path, converse, anthropic, own_counts))
    assert [CLASSES[k] for k in trace.klass] == ["manga", "complex", "simple"]
    assert list(trace.input_tokens) == [900, 100, 15]  # the input plus cache reads and writes
    assert trace.cached_tokens is not None and list(trace.cached_tokens) == [800, 30, 4]
    assert trace.max_tokens is not None and list(trace.max_tokens) == [1024, 700, 0]
    assert trace.by_rule == 2


def test_records_of_failed_calls_are_skipped_and_counted(tmp_path: Path) -> None:
    failed = {
        "timestamp": "2025-01-15T11:00:18Z",
        "modelId": "m",
        "errorCode": "ValidationException",
    }
    trace = read(log_file(tmp_path, record(), failed, record()))
    assert len(trace) == 2 and trace.skipped == 1


@pytest.mark.parametrize(
    ("line_text", "field", "says"),
    [
        ("not json", "", "is not a JSON record"),
        ("[1, 2]", "", "expected a JSON object"),
        (json.dumps(record(timestamp="2025-01-15 11:00")), "timestamp", "UTC offset"),
        (json.dumps(record(timestamp=True)), "timestamp", "got True"),
        (json.dumps(record(modelId=None)), "modelId", "expected the model id"),
        (json.dumps(record(input="x")), "input", "expected an object, got 'x'"),
        (json.dumps(record(output=None)), "output", "expected an object, got None"),
        (json.dumps(record(input={})), "input.inputTokenCount", "got None"),
        (
            json.dumps(record(output={"outputTokenCount": 1.5})),
            "output.outputTokenCount",
            "got 1.5",
        ),
        (
            json.dumps(record(input={"inputTokenCount": 1, "inputBodyJson": {"max_tokens": -1}})),
            "input.inputBodyJson.max_tokens",
            "got -1",
        ),
        (
            json.dumps(record(requestMetadata={"class": 3})),
            "requestMetadata.class",
            "expected a name",
        ),
        (
            json.dumps(record(requestMetadata={"class": "chat"})),
            "requestMetadata.class",
            "unknown request class 'chat'",
        ),
        ("[" * 100_000 + "]" * 100_000, "", "is not a JSON record"),
    ],
)
def test_a_bad_log_record_names_the_line_and_the_field(
    tmp_path: Path, line_text: str, field: str, says: str
) -> None:
    path = write(tmp_path, json.dumps(record()) + "\n\n" + line_text + "\n", "log.jsonl")
    with pytest.raises(TraceError) as caught:
        read_trace(path, classes=CLASSES, fmt="invocation-log")
    assert (caught.value.line, caught.value.field) == (3, field)
    assert says in str(caught.value)


def test_gzip_compressed_traces_read_as_the_plain_ones(tmp_path: Path) -> None:
    for name in ("example.csv", "example-invocation-log.jsonl"):
        plain = read(name)
        packed = tmp_path / (name + ".gz")
        with gzip.open(packed, "wb") as out:
            out.write(
                Path(trace_module.__file__)
                .parent.parent.joinpath("data", "traces", name)
                .read_bytes()
            )
        again = read(str(packed))
        assert again.epoch_ns == plain.epoch_ns and again.klass == plain.klass
        assert again.output_tokens == plain.output_tokens and again.format == plain.format


def test_a_truncated_gzip_file_is_an_error_naming_the_line_reached(tmp_path: Path) -> None:
    data = gzip.compress((HEADER + "\n" + f"{T0},1,2,simple\n" * 5000).encode())
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    error = error_of(str(path))
    assert error.line > 1 and "cannot be read" in str(error)


def test_too_long_a_line_binary_junk_and_too_many_rows_are_errors_not_crashes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trace_module, "MAX_LINE_BYTES", 64)
    error = error_of(write(tmp_path, f"{HEADER}\n{T0},1,2,simple\n{T0},1,2,{'x' * 100}\n"))
    assert error.line == 3 and "longer than 64 bytes" in str(error)
    path = tmp_path / "junk.csv"
    path.write_bytes(f"{HEADER}\n".encode() + b"\xff\xfe\x00garbage\n")
    error = error_of(str(path))
    assert error.line == 2 and "is not UTF-8 text" in str(error)
    monkeypatch.setattr(trace_formats, "MAX_MESSAGES", 3)
    error = error_of(write(tmp_path, HEADER + "\n" + f"{T0},1,2,simple\n" * 4))
    assert error.line == 5 and "more than 3 rows" in str(error)


def test_a_line_with_no_end_is_read_without_holding_the_whole_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trace_module, "MAX_LINE_BYTES", 1024)
    path = tmp_path / "one-line.jsonl"
    path.write_bytes(b"{" + b'"a":1,' * 2_000_000)  # 12 MB, no newline
    with pytest.raises(TraceError, match=r"one-line.jsonl:1 is longer than 1,024 bytes"):
        read_trace(str(path), classes=CLASSES)


# --- the examples and round trips -------------------------------------------------------


def test_the_shipped_examples_describe_the_same_messages() -> None:
    csv_trace = read("example.csv")
    log_trace = read("example-invocation-log.jsonl")
    assert len(csv_trace) == len(log_trace) == 400
    assert log_trace.skipped == 2 and log_trace.by_rule == 400 and csv_trace.by_rule == 0
    for name in ("epoch_ns", "whole_second", "klass", "input_tokens", "output_tokens"):
        assert getattr(csv_trace, name) == getattr(log_trace, name), name
    assert csv_trace.max_tokens == log_trace.max_tokens
    assert csv_trace.cached_tokens == log_trace.cached_tokens


def test_the_shipped_examples_are_what_the_script_writes(tmp_path: Path) -> None:
    import runpy  # noqa: PLC0415

    root = Path(__file__).resolve().parents[2]
    script = runpy.run_path(str(root / "scripts" / "make_example_traces.py"))
    for path in script["write"](tmp_path):
        shipped = root / "mangaroute" / "data" / "traces" / path.name
        assert path.read_bytes() == shipped.read_bytes(), path.name


ROWS = st.lists(
    st.tuples(
        st.integers(T0 - 86_400 * 400, T0 + 86_400 * 400),
        st.integers(0, 999),
        st.sampled_from(CLASSES),
        st.integers(0, 200_000),
        st.integers(0, 20_000),
        st.integers(0, 4),
    ),
    min_size=1,
    max_size=30,
)


@given(rows=ROWS, aliases=st.tuples(*(st.sampled_from(CSV_HEADERS[f]) for f in CSV_HEADERS)))
@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_csv_round_trip(
    tmp_path: Path, rows: list[tuple[int, int, str, int, int, int]], aliases: tuple[str, ...]
) -> None:
    lines = [",".join(aliases)]
    for seconds, millis, klass, tin, tout, style in rows:
        moment = datetime.fromtimestamp(seconds, UTC) + timedelta(milliseconds=millis)
        stamp = [
            moment.isoformat(),
            moment.astimezone(timezone(timedelta(hours=9))).isoformat(),
            f"{seconds}.{millis:03d}",
            str(seconds * 1000 + millis),
            moment.isoformat().replace("+00:00", "Z"),
        ][style]
        lines.append(f"{stamp},{tin},{tout},{klass},{tout + 1},{tin // 2}")
    trace = read(write(tmp_path, "\n".join(lines) + "\n"))
    assert list(trace.epoch_ns) == [s * NS + m * 1_000_000 for s, m, *_ in rows]
    assert [CLASSES[k] for k in trace.klass] == [r[2] for r in rows]
    assert list(trace.input_tokens) == [r[3] for r in rows]
    assert list(trace.output_tokens) == [r[4] for r in rows]
    assert trace.max_tokens is not None and list(trace.max_tokens) == [r[4] + 1 for r in rows]


@given(rows=ROWS)
@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_invocation_log_round_trip(
    tmp_path: Path, rows: list[tuple[int, int, str, int, int, int]]
) -> None:
    records = []
    for seconds, millis, klass, tin, tout, _ in rows:
        stamp = datetime.fromtimestamp(seconds, UTC) + timedelta(milliseconds=millis)
        records.append(
            record(
                timestamp=stamp.isoformat().replace("+00:00", "Z"),
                input={"inputTokenCount": tin},
                output={"outputTokenCount": tout},
                requestMetadata={"class": klass},
            )
        )
    trace = read(log_file(tmp_path, *records))
    assert list(trace.epoch_ns) == [s * NS + m * 1_000_000 for s, m, *_ in rows]
    assert [CLASSES[k] for k in trace.klass] == [r[2] for r in rows]
    assert list(trace.input_tokens) == [r[3] for r in rows]
    assert list(trace.output_tokens) == [r[4] for r in rows]


# --- garbage never crashes --------------------------------------------------------------

GOOD_CSV = [f"{T0 + k},{100 + k},{200 + k},simple" for k in range(3)]
GOOD_LOG = [json.dumps(record()) for _ in range(3)]
GARBAGE = st.lists(
    st.one_of(
        st.text(max_size=60),
        st.builds(",".join, st.lists(st.text(max_size=12), max_size=6)),
        st.sampled_from(
            [
                f"{T0},1,2,simple",
                f"{T0},1,2,",
                '{"timestamp": 5}',
                json.dumps(record()),
                json.dumps(record(input={"inputTokenCount": "7"})),
                "null",
                '"x"',
                "{}",
            ]
        ),
        st.binary(max_size=40).map(lambda b: b.decode("latin-1")),
    ),
    min_size=1,
    max_size=6,
)


def _garbage_case(tmp_path: Path, head: list[str], garbage: list[str], name: str) -> None:
    """Either the file parses, or the error names a line at or after the garbage's first, and
    everything before that line parses."""
    text = "\n".join(head + garbage) + "\n"
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    try:
        read(str(path))
    except TraceError as error:
        assert error.line > len(head) or error.line == 0, str(error)
        if error.line:
            assert str(error).startswith(f"{path}:{error.line}"), str(error)
            kept = text.encode("utf-8", "surrogatepass").split(b"\n")[: error.line - 1]
            path.write_bytes(b"\n".join(kept) + b"\n")
            read(str(path))


@given(garbage=GARBAGE)
@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_random_garbage_lines_in_a_csv_never_crash(tmp_path: Path, garbage: list[str]) -> None:
    _garbage_case(tmp_path, [HEADER, *GOOD_CSV], garbage, "g.csv")


@given(garbage=GARBAGE)
@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_random_garbage_lines_in_an_invocation_log_never_crash(
    tmp_path: Path, garbage: list[str]
) -> None:
    _garbage_case(tmp_path, GOOD_LOG, garbage, "g.jsonl")


# --- the docs say what the code does ----------------------------------------------------


def replaying_section() -> str:
    docs = Path(__file__).resolve().parents[2] / "docs" / "simulate.md"
    text = docs.read_text(encoding="utf-8")
    start = text.index("## Replaying traffic")
    return " ".join(text[start : text.index("\n## ", start + 1)].split())


def test_the_docs_list_every_accepted_header_name_and_the_limits() -> None:
    section = replaying_section()
    for field, aliases in CSV_HEADERS.items():
        for alias in aliases:  # names are matched ignoring case
            assert f"`{alias}`" in section.lower(), (field, alias)
    assert f"at most {trace_module.SIMPLE_MAX_OUTPUT} output tokens `simple`" in section
    assert f"more than {trace_module.MAX_MESSAGES:,} rows" in section
    assert f"longer than {trace_module.MAX_LINE_BYTES // 2**20} MiB" in section
    assert "from 0 to 10,000,000" in section and trace_module.MAX_TOKENS == 10_000_000
    assert trace_module.__doc__ is not None
    assert "model-invocation-logging.html" in section
    assert "model-invocation-logging.html" in trace_module.__doc__
