"""A trace on the simulated day: placement in the scenario's zone, rescaling, the Traffic the
engine runs, and ``mangaroute simulate --trace`` end to end."""

from __future__ import annotations

import dataclasses
import json
from array import array
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mangaroute.core.errors import ConfigError
from mangaroute.simulate.trace import Trace, TraceError, place, read_trace, rescale
from mangaroute.simulate.traffic import Replay, TrafficModel, class_counts, generate
from tests.simulate.test_cli import run

CLASSES = ("simple", "complex", "manga")
NS = 1_000_000_000
T0 = 1_736_938_800  # 2025-01-15 11:00:00 UTC = 20:00 JST
FAST = ["--policies", "seed-hybrid", "--jobs", "1"]


def trace_of(epochs_ns: list[int], whole: bool = False) -> Trace:
    n = len(epochs_ns)
    return Trace(
        "t.csv",
        "csv",
        CLASSES,
        array("q", epochs_ns),
        bytearray([1 if whole else 0] * n),
        array("b", [k % 3 for k in range(n)]),
        array("I", range(100, 100 + n)),
        array("I", range(200, 200 + n)),
        None,
        None,
    )


def replay_of(seconds: list[float], window: tuple[float, float] = (72000.0, 75600.0)) -> Replay:
    n = len(seconds)
    return Replay(
        CLASSES,
        array("q", (round(s * NS) for s in seconds)),
        array("b", [k % 3 for k in range(n)]),
        array("I", range(n)),
        array("I", range(1000, 1000 + n)),
        window,
    )


# --- placement --------------------------------------------------------------------------


def test_each_message_keeps_its_local_time_of_day_in_the_scenario_zone() -> None:
    trace = trace_of([(T0 + 5) * NS, (T0 + 3600 + 59) * NS, T0 * NS])  # out of order
    tokyo = place(trace, utc_offset_hours=9, seed=1)
    assert list(tokyo.time_ns) == [72000 * NS, 72005 * NS, 75659 * NS]  # 20:00, 20:00:05, 21:00:59
    assert list(tokyo.input_tokens) == [102, 100, 101]  # rows follow their times
    assert [tokyo.classes[k] for k in tokyo.klass] == ["manga", "simple", "complex"]
    assert tokyo.window == (72000.0, 75660.0)
    utc = place(trace, utc_offset_hours=0, seed=1)
    assert list(utc.time_ns) == [39600 * NS, 39605 * NS, 43259 * NS]  # 11:00 UTC
    india = place(trace, utc_offset_hours=5.5, seed=1)
    assert india.time_ns[0] == (39600 + 19800) * NS


def test_trace_start_moves_the_first_message_and_keeps_the_spacing() -> None:
    trace = trace_of([T0 * NS, (T0 + 90) * NS])
    placed = place(trace, utc_offset_hours=9, seed=1, start_s=6 * 3600)
    assert list(placed.time_ns) == [21600 * NS, 21690 * NS]
    assert placed.window == (21600.0, 21720.0)


def test_whole_second_timestamps_are_spread_over_their_second_deterministically() -> None:
    trace = trace_of([T0 * NS] * 200, whole=True)
    one = place(trace, utc_offset_hours=9, seed=3)
    assert one == place(trace, utc_offset_hours=9, seed=3)
    assert one.time_ns != place(trace, utc_offset_hours=9, seed=4).time_ns
    times = list(one.time_ns)
    assert times == sorted(times)
    assert times[0] >= 72000 * NS and times[-1] < 72001 * NS
    assert times[-1] - times[0] > 0.9 * NS  # spread, not a burst at one instant
    exact = place(trace_of([T0 * NS] * 3), utc_offset_hours=9, seed=3)
    assert list(exact.time_ns) == [72000 * NS] * 3


def test_hours_keep_only_the_messages_within_them() -> None:
    trace = trace_of([(T0 + k * 600) * NS for k in range(6)])  # 20:00, 20:10, ... 20:50
    placed = place(trace, utc_offset_hours=9, seed=1, hours=(72600.0, 73800.0))
    assert list(placed.time_ns) == [72600 * NS, 73200 * NS]
    assert placed.window == (72600.0, 73800.0)
    with pytest.raises(TraceError, match=r"t.csv has no rows within --hours"):
        place(trace, utc_offset_hours=9, seed=1, hours=(0.0, 3600.0))


def test_a_trace_that_does_not_fit_on_one_day_is_an_error_that_says_what_to_do() -> None:
    with pytest.raises(TraceError, match=r"t.csv spans 24.0 h: replay at most one day"):
        place(trace_of([T0 * NS, (T0 + 86_400) * NS]), utc_offset_hours=9, seed=1)
    late = trace_of([(T0 + 3 * 3600) * NS, (T0 + 5 * 3600) * NS])  # 23:00 - 01:00 JST
    with pytest.raises(
        TraceError, match=r"runs past local midnight \(until 01:00 \+1d\).*--trace-start"
    ):
        place(late, utc_offset_hours=9, seed=1)
    fitted = place(late, utc_offset_hours=9, seed=1, start_s=20 * 3600)
    assert list(fitted.time_ns) == [72000 * NS, 79200 * NS]


# --- rescaling --------------------------------------------------------------------------


@given(
    n=st.integers(1, 300),
    messages=st.integers(1, 3000),
    seed=st.integers(0, 10),
)
@settings(max_examples=80, deadline=None)
def test_rescaling_gives_exactly_the_requested_messages_in_the_window_in_order(
    n: int, messages: int, seed: int
) -> None:
    replay = replay_of([72000 + k * 3600 / n for k in range(n)])
    scaled = rescale(replay, seed=seed, messages=messages)
    assert len(scaled) == messages
    times = list(scaled.time_ns)
    assert times == sorted(times)
    assert times[0] >= 72000 * NS and times[-1] < 75600 * NS
    # every message is a copy of a recorded one, tokens and class with it
    for k in range(len(scaled)):
        source = scaled.input_tokens[k]
        assert scaled.output_tokens[k] == 1000 + source and scaled.klass[k] == source % 3
    counts = [list(scaled.input_tokens).count(i) for i in range(n)]
    assert max(counts) - min(counts) <= 1  # an even sample, not a random one


def test_a_rate_multiplies_the_messages_and_keeps_the_shape_of_the_hour() -> None:
    # 600 messages in 20:00-21:00, twice as dense in the second half hour
    seconds = [72000 + k * 9.0 for k in range(200)] + [73800 + k * 4.5 for k in range(400)]
    replay = replay_of(seconds)
    tripled = rescale(replay, seed=5, rate=3)
    assert len(tripled) == 1800
    first_half = sum(1 for t in tripled.time_ns if t < 73800 * NS)
    assert first_half == pytest.approx(600, abs=3)
    assert class_counts_of(tripled) == {c: 3 * v for c, v in class_counts_of(replay).items()}
    halved = rescale(replay, seed=5, rate=0.5)
    assert len(halved) == 300
    assert sum(1 for t in halved.time_ns if t < 73800 * NS) == 100
    assert set(halved.time_ns) <= set(replay.time_ns)  # thinning keeps recorded times
    assert rescale(replay, seed=5, rate=3) == tripled
    assert rescale(replay, seed=6, rate=3).time_ns != tripled.time_ns


def class_counts_of(replay: Replay) -> dict[str, int]:
    return {c: list(replay.klass).count(k) for k, c in enumerate(replay.classes)}


def test_rescaling_limits() -> None:
    replay = replay_of([72000.0, 72001.0])
    with pytest.raises(ConfigError, match=r"--trace-rate 0\.1 leaves no message of 2"):
        rescale(replay, seed=1, rate=0.1)
    with pytest.raises(ConfigError, match=r"--trace-messages must be in 1\.\.5,000,000"):
        rescale(replay, seed=1, messages=5_000_001)
    with pytest.raises(ConfigError, match="--trace-rate must be > 0"):
        rescale(replay, seed=1, rate=float("nan"))


# --- the Traffic the engine runs --------------------------------------------------------


def test_a_replayed_day_is_the_trace_with_sessions_and_draws_from_the_seed() -> None:
    replay = dataclasses.replace(
        replay_of([72000.0, 72010.0, 72020.0]),
        max_tokens=array("I", [512, 0, 1024]),
        cached_tokens=array("I", [0, 64, 0]),
        source="t.csv",
    )
    model = TrafficModel(messages=3, window=replay.window, replay=replay)
    assert model.classes == CLASSES
    day = generate(model, seed=7)
    assert day.time_ns == replay.time_ns and day.klass == replay.klass
    assert day.input_tokens == replay.input_tokens and day.output_tokens == replay.output_tokens
    assert day.max_tokens == array("I", [512, 0, 1024])
    assert day.cached_tokens == array("I", [0, 64, 0])
    assert day.window == (72000.0, 75600.0) and day.source == "t.csv" and day.flash_messages == 0
    assert len(day.draw) == len(day.session) == 3 and all(0 <= d < 1 for d in day.draw)
    assert generate(model, seed=7).draw == day.draw and generate(model, seed=8).draw != day.draw
    drawn = generate(TrafficModel(messages=1000), seed=7)
    assert drawn.max_tokens is None and drawn.cached_tokens is None and drawn.source == ""
    with pytest.raises(ValueError, match="a replayed day's window is its trace's"):
        TrafficModel(messages=3, replay=replay)
    with pytest.raises(ValueError, match="one entry per message"):
        dataclasses.replace(replay, klass=array("b", [0]))


# --- the command line -------------------------------------------------------------------


def test_simulate_trace_example_csv_json_end_to_end() -> None:
    code, out = run(["--trace", "example.csv", "--json", *FAST])
    assert code == 0, out
    data = json.loads(out)
    assert data["trace"] == {
        "file": "example.csv",
        "format": "csv",
        "rows": 400,
        "skipped_failed_calls": 0,
        "classified_by_rule": 0,
        "placed": 400,
        "messages": 400,
        "scale": 1.0,
        "window": ["20:00", "21:00"],
        "utc_offset_hours": 9.0,
    }
    assert data["traffic"]["messages"] == 400
    counts = class_counts(read_example_day())
    assert data["traffic"]["classes"] == counts
    assert [p["name"] for p in data["policies"]] == ["seed-hybrid"]
    assert data["policies"][0]["messages"] == 400


def read_example_day():  # type: ignore[no-untyped-def]
    trace = read_trace("example.csv", classes=CLASSES)
    replay = place(trace, utc_offset_hours=9, seed=7)
    return generate(TrafficModel(messages=len(replay), window=replay.window, replay=replay), 7)


def test_simulate_an_invocation_log_at_twice_the_rate() -> None:
    code, out = run(
        ["--trace", "example-invocation-log.jsonl", "--trace-rate", "2", "--json", *FAST]
    )
    assert code == 0, out
    data = json.loads(out)
    assert data["trace"]["format"] == "invocation-log"
    assert data["trace"]["skipped_failed_calls"] == 2
    assert data["trace"]["classified_by_rule"] == 400
    assert (data["trace"]["placed"], data["trace"]["messages"]) == (400, 800)
    assert data["traffic"]["messages"] == 800
    assert data["traffic"]["classes"] == {
        c: 2 * n for c, n in class_counts(read_example_day()).items()
    }


def test_simulate_a_trace_as_text_with_messages_and_a_start(tmp_path: Path) -> None:
    code, out = run(
        ["--trace", "example.csv", "--trace-messages", "1000", "--trace-start", "12:00", *FAST]
    )
    assert code == 0, out
    first = out.splitlines()[0]
    assert first == (
        "trace example.csv (csv): 400 rows; 400 replayed 12:00-13:00 local (UTC+9), "
        "x2.5 = 1,000 messages"
    )


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--trace-rate", "2"], "--trace-rate needs --trace FILE"),
        (["--trace", "example.csv", "--messages", "10"], "--messages scales the drawn day"),
        (["--trace", "example.csv", "--faults", "flash-sale"], "flash-sale adds drawn traffic"),
        (["--trace", "example.csv", "--trace-start", "12:00", "--hours", "20-21"], "not both"),
        (["--trace", "example.csv", "--trace-start", "25:00"], "--trace-start: '25:00'"),
        (["--trace", "example.csv", "--hours", "0-6"], "example.csv has no rows within --hours"),
        (["--trace", "nope.csv"], "nope.csv cannot be read"),
    ],
)
def test_simulate_trace_errors_exit_2_with_a_precise_message(argv: list[str], says: str) -> None:
    code, out = run([*argv, *FAST])
    assert code == 2
    assert says in out


def test_simulate_a_bad_trace_names_the_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("timestamp,input_tokens,output_tokens\n1736938800,10,20\n1736938801,ten,20\n")
    code, out = run(["--trace", str(path), *FAST])
    assert (code, out) == (
        2,
        f"{path}:3: [input_tokens] expected a whole number >= 0, got 'ten'",
    )


def test_the_docs_show_the_report_line_and_the_error_as_the_command_prints_them(
    tmp_path: Path,
) -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "simulate.md"
    text = " ".join(docs.read_text(encoding="utf-8").split())
    code, out = run(["--trace", "example.csv", *FAST])
    assert code == 0, out
    assert f"`{out.splitlines()[0]}`" in text
    path = tmp_path / "my-day.csv"
    path.write_text("timestamp,input_tokens,output_tokens\n1736938800,10,20\n1736938801,ten,2\n")
    code, out = run(["--trace", str(path), *FAST])
    assert code == 2
    assert out.replace(str(tmp_path) + "/", "") in text
