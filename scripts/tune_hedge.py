#!/usr/bin/env python3
"""Choose the default hedge delay of each request class on the simulator (issue 15, item 5).

For every scenario row and seed, one ``mangaroute.simulate`` run holds the shipped
``mangaroute`` contender with hedging off, and one copy of it per (class, delay) that hedges
that class alone at that delay (``HedgePolicy(after_fraction=None, per_class={class:
delay})``, the default budget: hedges <= 5 % of calls over 1,000). The bound comes from the
same run. Each class is then decided by :func:`judge` and :func:`choose`, a rule written down
before the sweep that chose the shipped default (a trial on one seed before it added the
minimum gain of rule 2 and the delays below 0.3):

1. **extra calls**: in every cell (row x seed) the delay adds at most ``--max-extra`` (5 %)
   attempts per message over hedging off;
2. **it must gain, and not hurt**: the answers within the SLO (first token on a streamed
   day) gained over hedging off, pooled over the cells, are at least ``--tolerance`` points
   (0.02, the issue's own noise margin), and no cell loses more than that;
3. **the cost is worth it**: the dollars added, summed over the cells, are at most
   ``--answer-value`` (10) times hedging off's mean cost of a message per answer gained - an
   answer in time is worth at most ten average messages' inference;
4. among the delays that pass, the one closing the most of the gap between hedging off and
   the bound (gain / gap, pooled over the cells); delays within 0.01 points of the best gain
   count as equal and the latest of them wins (fewer extra calls). None passes: ``off``.

Classes are tuned one at a time (the others off), so an interaction between two classes'
hedges (they share the budget and the fallbacks' capacity) is not measured; the shipped
default combines the per-class choices. The table printed is what the choice was made from.

The delays swept are 0.1-0.4 and 0.6 of the call's budget: on the shipped (streamed) days
the budget is 2,500 ms and the first-token SLO 1,500 ms, so a hedge started at 0.4 (1,000
ms) needs a first token within 500 ms to count, and one started later cannot help at all
(0.6 is swept to show it). The hours are the evening peak, 20:00-22:00 JST, which holds
every fault swept (the outage at 20:55, the flash sale at 21:00, the slow endpoint 20-21,
the regional incident 20:00-20:40) and keeps a full sweep within minutes.

    python scripts/tune_hedge.py                       # 1:10 scale, 20:00-22:00, seeds 7,8,9
    python scripts/tune_hedge.py --rows default --seeds 7 --delays 0.2,0.3 --hours 18-24
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mangaroute.invoke.hedging import HedgePolicy
from mangaroute.simulate.cli import with_hours
from mangaroute.simulate.engine import RunResult
from mangaroute.simulate.run import simulate
from mangaroute.simulate.scenario import (
    FAULT_PRESETS,
    Contender,
    builtin_scenarios,
    load_scenario,
    with_faults,
)

DELAYS = (0.1, 0.2, 0.3, 0.4, 0.6)
ROWS = ("default", "bad-day", "sagemaker-slow", "regional-incident")
"""The default day, the bad day, and the presets where a slow primary leaves time to hedge
(a fast error or a fast 429 is the retry's business, not the hedge's)."""
SEEDS = (7, 8, 9)
MAX_EXTRA = 0.05
TOLERANCE_POINTS = 0.02
ANSWER_VALUE = 10.0
TIE_POINTS = 0.01
POLICY = "mangaroute"


@dataclass(frozen=True, slots=True)
class Measure:
    """One contender in one cell: answers within the SLO, attempts, dollars, messages."""

    within_slo: int
    attempts: int
    usd: float
    messages: int


@dataclass(frozen=True, slots=True)
class Verdict:
    """One delay of one class, summed over the cells."""

    delay: float
    gain_points: float
    """Answers within the SLO gained over hedging off, points (pooled over the cells)."""
    worst_points: float
    """The gain of the worst cell, points."""
    closed: float
    """Share of the gap between hedging off and the bound the gain closes."""
    extra: float
    """The most extra attempts per message of any cell."""
    usd_per_answer: float | None
    """Dollars added per answer gained (None: nothing gained)."""
    usd_limit: float
    """What an answer gained may cost (rule 3)."""
    passed: bool
    why: str


def judge(
    delay: float,
    off: Sequence[Measure],
    hedged: Sequence[Measure],
    bound: Sequence[int],
    *,
    max_extra: float = MAX_EXTRA,
    tolerance_points: float = TOLERANCE_POINTS,
    answer_value: float = ANSWER_VALUE,
) -> Verdict:
    """Rules 1-3 for one delay of one class over the cells (the module docstring)."""
    messages = sum(m.messages for m in off)
    gained = sum(h.within_slo - o.within_slo for h, o in zip(hedged, off, strict=True))
    gap = sum(b - o.within_slo for b, o in zip(bound, off, strict=True))
    worst = min(
        (h.within_slo - o.within_slo) / o.messages for h, o in zip(hedged, off, strict=True)
    )
    extra = max((h.attempts - o.attempts) / o.messages for h, o in zip(hedged, off, strict=True))
    added_usd = sum(h.usd - o.usd for h, o in zip(hedged, off, strict=True))
    limit = answer_value * sum(o.usd for o in off) / messages
    per_answer = added_usd / gained if gained > 0 else None
    if extra > max_extra:
        why = f"extra calls {extra:.1%} > {max_extra:.0%}"
    elif 100 * gained / messages < tolerance_points:
        why = f"gains less than {tolerance_points:g} points"
    elif 100 * worst < -tolerance_points:
        why = f"loses {-100 * worst:.3f} points in a cell"
    elif per_answer is not None and per_answer > limit:
        why = f"${per_answer:.4f} per answer gained > ${limit:.4f}"
    else:
        why = ""
    return Verdict(
        delay=delay,
        gain_points=100 * gained / messages,
        worst_points=100 * worst,
        closed=gained / gap if gap > 0 else 0.0,
        extra=extra,
        usd_per_answer=per_answer,
        usd_limit=limit,
        passed=not why,
        why=why or "passes",
    )


def choose(verdicts: Sequence[Verdict], *, tie_points: float = TIE_POINTS) -> float | None:
    """Rule 4: of the delays that passed, the latest among those within ``tie_points`` of
    the best gain (the gain ranks as the share of the gap closed does: same off, same bound);
    ``None`` (off) when none passed."""
    passed = [v for v in verdicts if v.passed]
    if not passed:
        return None
    best = max(v.gain_points for v in passed)
    return max(v.delay for v in passed if v.gain_points >= best - tie_points)


def measure(result: RunResult, streaming: bool) -> Measure:
    slo = result.within_first_token_slo if streaming else result.within_slo
    return Measure(slo, sum(result.outcomes), result.total_usd, result.messages)


def variants(base: Contender, classes: Sequence[str], delays: Sequence[float]) -> list[Contender]:
    """Hedging off, and one contender per (class, delay) hedging that class alone."""
    found = [
        dataclasses.replace(base, name="off", invoke=dataclasses.replace(base.invoke, hedge=None))
    ]
    for klass in classes:
        for delay in delays:
            policy = HedgePolicy(after_fraction=None, per_class={klass: delay})
            invoke = dataclasses.replace(base.invoke, hedge=policy)
            found.append(dataclasses.replace(base, name=f"{klass}@{delay:g}", invoke=invoke))
    return found


def run_cell(
    row: str, seed: int, args: argparse.Namespace, delays: Sequence[float]
) -> tuple[dict[str, Measure], int, tuple[str, ...]]:
    """One row and seed: each variant's measure, the bound's answers within the SLO, the
    classes."""
    scenario = (
        load_scenario(row)
        if row in builtin_scenarios()
        else with_faults(load_scenario("default"), [row])
    )
    if args.hours != "0-24":
        scenario = with_hours(scenario, args.hours)
    base = next(c for c in scenario.contenders if c.name == POLICY)
    classes = scenario.traffic.classes
    contenders = tuple(variants(base, classes, delays))
    scenario = dataclasses.replace(scenario, contenders=contenders)
    simulation = simulate(scenario, seed=seed, messages=args.messages, jobs=args.jobs)
    streaming = scenario.budget.streaming
    assert simulation.bound is not None
    bound = simulation.bound
    bound_slo = bound.within_first_token_slo if streaming else bound.within_slo
    found = {r.name: measure(r, streaming) for r in simulation.results}
    return found, bound_slo, classes


def table(decided: Mapping[str, tuple[list[Verdict], float | None]]) -> str:
    headers = [
        "class",
        "delay",
        "gain (points)",
        "worst cell",
        "gap closed",
        "max extra calls",
        "$ per answer gained (limit)",
        "verdict",
    ]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for klass, (verdicts, chosen) in decided.items():
        for v in verdicts:
            cost = "-" if v.usd_per_answer is None else f"{v.usd_per_answer:.4f}"
            mark = " **chosen**" if v.delay == chosen else ""
            lines.append(
                f"| {klass} | {v.delay:g} | {v.gain_points:+.3f} | {v.worst_points:+.3f} | "
                f"{v.closed:.1%} | {v.extra:.2%} | {cost} ({v.usd_limit:.4f}) | {v.why}{mark} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    every = [*builtin_scenarios(), *FAULT_PRESETS]
    parser.add_argument("--rows", default=",".join(ROWS), metavar="LIST")
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS)), metavar="LIST")
    parser.add_argument("--delays", default=",".join(map(str, DELAYS)), metavar="LIST")
    parser.add_argument("--messages", type=int, default=100_000, metavar="N")
    parser.add_argument("--hours", default="20-22", metavar="START-END")
    parser.add_argument("--jobs", type=int, default=2, metavar="N")
    parser.add_argument("--max-extra", type=float, default=MAX_EXTRA)
    parser.add_argument("--tolerance", type=float, default=TOLERANCE_POINTS, metavar="POINTS")
    parser.add_argument("--answer-value", type=float, default=ANSWER_VALUE, metavar="X")
    args = parser.parse_args(argv)
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in rows if r not in every]
    if unknown:
        parser.error(f"--rows: unknown {', '.join(unknown)} (known: {', '.join(every)})")
    seeds = [int(s) for s in args.seeds.split(",")]
    delays = [float(d) for d in args.delays.split(",")]
    cells: list[tuple[dict[str, Measure], int]] = []
    classes: tuple[str, ...] = ()
    for row in rows:
        for seed in seeds:
            found, bound, classes = run_cell(row, seed, args, delays)
            cells.append((found, bound))
            plain = found["off"]
            print(
                f"done: {row} seed {seed}: off {plain.within_slo / plain.messages:.3%} within the "
                f"SLO, bound {bound / plain.messages:.3%}",
                file=sys.stderr,
                flush=True,
            )
    off = [c[0]["off"] for c in cells]
    bounds = [c[1] for c in cells]
    decided: dict[str, tuple[list[Verdict], float | None]] = {}
    for klass in classes:
        verdicts = [
            judge(
                d,
                off,
                [c[0][f"{klass}@{d:g}"] for c in cells],
                bounds,
                max_extra=args.max_extra,
                tolerance_points=args.tolerance,
                answer_value=args.answer_value,
            )
            for d in delays
        ]
        decided[klass] = (verdicts, choose(verdicts))
    print(
        f"rows {', '.join(rows)}; seeds {args.seeds}; {args.messages:,} messages a day, "
        f"hours {args.hours}\n"
    )
    print(table(decided))
    chosen = {k: v[1] for k, v in decided.items()}
    print(f"\nper_class = {chosen!r}  # None: off")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
