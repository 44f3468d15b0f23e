"""``mangaroute simulate``: a traffic day through the real router, policies side by side.

:func:`register` adds the sub-command to the main CLI's sub-parsers; its handler follows the
main CLI's convention ``handler(args, out) -> int``. Bad scenario files and options raise
:class:`~mangaroute.core.errors.ConfigError`, which the main CLI prints (naming the file and
the field) with exit code 2 (a JSON error object under ``--json``: :mod:`mangaroute.cli.output`).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
from typing import Any, TextIO

from mangaroute.cli.options import add_json_option
from mangaroute.cli.output import emit
from mangaroute.config import parse_config
from mangaroute.config.schema import schema_text
from mangaroute.core.errors import ConfigError
from mangaroute.simulate.report import to_dict, to_text
from mangaroute.simulate.run import SHARED_MODES, simulate
from mangaroute.simulate.scenario import (
    FAULT_PRESETS,
    FLASH_SALE,
    builtin_scenarios,
    load_scenario,
    with_faults,
)
from mangaroute.simulate.sections import SCENARIO_DOCUMENT
from mangaroute.simulate.trace import FORMATS, MAX_MESSAGES, place, read_trace, rescale

__all__ = ["cmd_simulate", "register", "with_hours"]

DEFAULT_REPLICA_HOURS = "20-22"
"""What ``--replicas N`` (N > 1) simulates without ``--hours``: the bad day's peak hours with
its faults. Every replica syncs 4 times a virtual second and rebuilds its snapshot after each
merge, so a full day of 8 replicas with shared state takes about 15 minutes (``--hours 0-24``)."""


def _replicas(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number of replicas, got {text!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1 (one router per replica), got {value}")
    return value


def _sync_ms(text: str) -> float:
    return _positive_float(text, expected="milliseconds", unit=" ms")


def _positive_float(text: str, *, expected: str = "a number", unit: str = "") -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be > 0{unit}, got {text}")
    return value


def register(commands: Any) -> argparse.ArgumentParser:
    """Add ``simulate`` to the main CLI's sub-parsers."""
    help_text = (
        "replay a MangaAssist traffic day through the real router in virtual time and "
        "compare policies side by side against a bound no policy can beat"
    )
    parser: argparse.ArgumentParser = commands.add_parser(
        "simulate",
        help=help_text,
        description=help_text + ". Deterministic for a given seed; nothing sleeps.",
        epilog=(
            f"shipped scenarios: {', '.join(builtin_scenarios())}; fault presets: "
            f"{', '.join(FAULT_PRESETS)}. See docs/simulate.md."
        ),
    )
    parser.add_argument(
        "--scenario",
        metavar="NAME|FILE",
        default=None,
        help="a shipped scenario (default: 'default') or a scenario TOML file",
    )
    parser.add_argument(
        "--faults",
        metavar="LIST",
        default="",
        help="comma-separated fault presets to add, e.g. provisioned-outage,flash-sale",
    )
    parser.add_argument(
        "--policies",
        metavar="LIST",
        default="all",
        help="comma-separated contenders to run (default: all of the scenario's)",
    )
    parser.add_argument(
        "--messages",
        type=int,
        default=None,
        metavar="N",
        help="a scale model of the day with N messages (capacity and hourly prices scaled "
        "alike; compare $/1k messages)",
    )
    parser.add_argument(
        "--hours",
        metavar="START-END",
        default=None,
        help="simulate only these local hours at the day's rates, e.g. 18-24 or 20:30-21:30",
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="random seed (default: the scenario's)"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help=f"worker processes (default: one per CPU, here {os.cpu_count()})",
    )
    parser.add_argument(
        "--no-bound",
        "--no-oracle",
        dest="no_bound",
        action="store_true",
        help="skip the bound (an LP; needs scipy) and the regret columns "
        "(--no-oracle: the old name)",
    )
    parser.add_argument(
        "--replicas",
        type=_replicas,
        default=1,
        metavar="N",
        help="run each policy as N router replicas behind a load balancer (sessions spread by "
        "a seeded hash), all on the same simulated targets - whose capacity the replicas share "
        f"(default: 1). With N > 1 and no --hours, only {DEFAULT_REPLICA_HOURS} is simulated",
    )
    parser.add_argument(
        "--shared",
        choices=SHARED_MODES,
        default=None,
        help="shared routing state between the replicas (an in-process store with Redis's "
        "semantics): off, on, or both - each policy twice, without and with, side by side "
        "(default: both with --replicas > 1, else off)",
    )
    parser.add_argument(
        "--sync-ms",
        type=_sync_ms,
        default=250.0,
        metavar="MS",
        help="with shared state: each replica publishes and merges every MS of virtual time "
        "(default: 250, as in production; replicas' syncs are evenly staggered)",
    )
    _add_trace_options(parser)
    add_json_option(parser)
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="no progress line on stderr (shown only when stderr is a terminal)",
    )
    parser.add_argument(
        "--schema",
        action="store_true",
        help="print the JSON Schema of scenario files (the shipped data/scenario.schema.json, "
        "for editors) and exit; nothing is simulated",
    )
    parser.add_argument(
        "--plot",
        metavar="DIR",
        default=None,
        help="write PNG plots to DIR (needs matplotlib: pip install 'mangaroute[plots]')",
    )
    parser.set_defaults(handler=cmd_simulate)
    return parser


def _add_trace_options(parser: argparse.ArgumentParser) -> None:
    """``--trace`` and its options (docs/simulate.md, "Replaying traffic")."""
    group = parser.add_argument_group("replaying traffic")
    group.add_argument(
        "--trace",
        metavar="FILE",
        default=None,
        help="replay this trace instead of drawing the day: CSV (timestamp, input and output "
        "tokens, optional class) or Bedrock model-invocation log JSON lines, gzip-compressed "
        "or not; the shipped example.csv and example-invocation-log.jsonl by name",
    )
    group.add_argument(
        "--trace-format",
        choices=FORMATS,
        default="auto",
        help="the trace's format (default: auto, from its first record)",
    )
    scale = group.add_mutually_exclusive_group()
    scale.add_argument(
        "--trace-rate",
        type=_positive_float,
        default=None,
        metavar="X",
        help="replay at X times the trace's arrival rate over the same times of day "
        "(X times the messages; 0.5 keeps every other one)",
    )
    scale.add_argument(
        "--trace-messages",
        type=int,
        default=None,
        metavar="N",
        help="replay exactly N messages over the trace's times of day, e.g. 1000000 for a "
        f"full day's trace as a 1M-message day (at most {MAX_MESSAGES:,})",
    )
    group.add_argument(
        "--trace-start",
        metavar="HH:MM",
        default=None,
        help="the first message arrives at this local time, the rest keep their spacing "
        "(default: every message keeps its time of day in the scenario's zone)",
    )


def cmd_simulate(args: argparse.Namespace, out: TextIO) -> int:
    if args.schema:
        out.write(schema_text(SCENARIO_DOCUMENT))
        return 0
    scenario = load_scenario(args.scenario)
    faults = [name.strip() for name in args.faults.split(",") if name.strip()]
    if faults:
        scenario = with_faults(scenario, faults)
    trace: dict[str, Any] | None = None
    if args.trace is not None:
        scenario, trace = _with_trace(scenario, args)
    else:
        _no_trace_options(args)
        hours = args.hours or (DEFAULT_REPLICA_HOURS if args.replicas > 1 else None)
        if hours:
            scenario = with_hours(scenario, hours)
    policies = [name.strip() for name in args.policies.split(",") if name.strip()]
    if args.jobs is not None and args.jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {args.jobs}")
    simulation = simulate(
        scenario,
        seed=args.seed,
        messages=args.messages,
        contenders=policies,
        jobs=args.jobs,
        bound=not args.no_bound,
        replicas=args.replicas,
        shared=args.shared,
        sync_ms=args.sync_ms,
        progress=None if args.quiet or not sys.stderr.isatty() else sys.stderr,
    )
    written: list[str] = []
    note = ""
    if args.plot:
        from mangaroute.simulate.plots import PlottingUnavailable, plot  # noqa: PLC0415

        try:
            written = [str(path) for path in plot(simulation, args.plot)]
        except PlottingUnavailable as exc:
            note = f"plots skipped: {exc}"
    data = to_dict(simulation)
    if trace is not None:
        data["trace"] = trace
    data["plots"] = written
    if note:
        data["plots_skipped"] = note

    def text() -> str:
        lines = [_trace_line(trace)] if trace is not None else []
        lines += [to_text(simulation), *(f"wrote {path}" for path in written)]
        return "\n".join([*lines, note] if note else lines)

    emit(args, data, text, out)
    return 0


def with_hours(scenario: Any, text: str) -> Any:
    """``scenario`` limited to the local hours ``text`` (``18-24``, ``20:30-21:30``), as
    ``--hours`` does (``scripts/tune_hedge.py`` uses it too)."""
    window = _hours(text)  # raises ConfigError naming --hours
    try:
        traffic = dataclasses.replace(scenario.traffic, window=window)
    except ValueError as exc:
        raise ConfigError(f"--hours: {exc}") from None
    return dataclasses.replace(scenario, traffic=traffic)


def _hours(text: str) -> tuple[float, float]:
    start, sep, end = text.partition("-")
    if not sep:
        raise ConfigError(f"--hours: expected START-END local hours (e.g. 18-24), got {text!r}")
    window = (_hour(start, text), _hour(end, text))
    if window[0] >= window[1]:
        raise ConfigError(f"--hours: START must be before END, got {text!r}")
    return window


def _hour(text: str, whole: str, option: str = "--hours") -> float:
    hours, _, minutes = text.strip().partition(":")
    if not hours.isdigit() or (minutes and not minutes.isdigit()):
        raise ConfigError(f"{option}: expected hours like 18 or 18:30, got {whole!r}")
    value = int(hours) * 3600 + int(minutes or 0) * 60
    if not 0 <= value <= 86_400 or (minutes and int(minutes) >= 60):
        raise ConfigError(f"{option}: {whole!r} is not within 00:00-24:00")
    return float(value)


def _no_trace_options(args: argparse.Namespace) -> None:
    for option, value in (
        ("--trace-rate", args.trace_rate),
        ("--trace-messages", args.trace_messages),
        ("--trace-start", args.trace_start),
    ):
        if value is not None:
            raise ConfigError(f"{option} needs --trace FILE")


def _with_trace(scenario: Any, args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """The scenario with its day replaced by the trace (read, placed, rescaled), and what the
    report says about it."""
    if args.messages is not None:
        raise ConfigError(
            "--messages scales the drawn day's volume and the fleet with it; a trace's volume "
            "is --trace-messages N or --trace-rate X"
        )
    if args.trace_start is not None and args.hours:
        raise ConfigError("--trace-start and --hours: place the trace, or cut it, not both")
    if FLASH_SALE in scenario.fault_names:
        raise ConfigError(f"{FLASH_SALE} adds drawn traffic; a replayed trace is the traffic")
    classes = [
        c.name for c in parse_config(scenario.config_text, source=scenario.config_source).classes
    ]
    seed = scenario.seed if args.seed is None else args.seed
    read = read_trace(args.trace, classes=classes, fmt=args.trace_format)
    start = (
        None
        if args.trace_start is None
        else _hour(args.trace_start, args.trace_start, "--trace-start")
    )
    replay = place(
        read,
        utc_offset_hours=scenario.utc_offset_hours,
        seed=seed,
        start_s=start,
        hours=_hours(args.hours) if args.hours else None,
    )
    placed = len(replay)
    if args.trace_rate is not None or args.trace_messages is not None:
        replay = rescale(replay, seed=seed, rate=args.trace_rate, messages=args.trace_messages)
    traffic = dataclasses.replace(
        scenario.traffic,
        messages=len(replay),
        window=replay.window,
        flash_sales=(),
        replay=replay,
    )
    summary = {
        "file": args.trace,
        "format": read.format,
        "rows": len(read),
        "skipped_failed_calls": read.skipped,
        "classified_by_rule": read.by_rule,
        "placed": placed,
        "messages": len(replay),
        "scale": round(len(replay) / placed, 6),
        "window": [_clock(replay.window[0]), _clock(replay.window[1])],
        "utc_offset_hours": scenario.utc_offset_hours,
    }
    return dataclasses.replace(scenario, traffic=traffic), summary


def _clock(seconds: float) -> str:
    minutes = int(seconds) // 60
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _trace_line(trace: dict[str, Any]) -> str:
    offset = f"UTC{trace['utc_offset_hours']:+g}"
    rule = (
        f", {trace['classified_by_rule']:,} classed by rule" if trace["classified_by_rule"] else ""
    )
    skipped = (
        f", {trace['skipped_failed_calls']:,} failed calls skipped"
        if trace["skipped_failed_calls"]
        else ""
    )
    scaled = (
        f", x{trace['scale']:g} = {trace['messages']:,} messages" if trace["scale"] != 1 else ""
    )
    start, end = trace["window"]
    return (
        f"trace {trace['file']} ({trace['format']}): {trace['rows']:,} rows{rule}{skipped}; "
        f"{trace['placed']:,} replayed {start}-{end} local ({offset}){scaled}"
    )
