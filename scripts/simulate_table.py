#!/usr/bin/env python3
"""Rerun the simulator tables in docs/simulate.md: every shipped scenario and fault preset.

Each row is one ``mangaroute simulate --json`` run (a subprocess, exactly what a user runs)
of every shipped policy and the bound; the table shows the spread between the best and the
worst policy, which is what tells whether a scenario discriminates at all.

    python scripts/simulate_table.py                         # 1:10 scale, 18:00-24:00, seed 7
    python scripts/simulate_table.py --messages 1000000 --hours 0-24 --rows default,bad-day
    python scripts/simulate_table.py --by-policy --rows default   # scenario x policy rows
    python scripts/simulate_table.py --seeds 7,8,9           # one row per seed
    python scripts/simulate_table.py --by-policy --rows sagemaker-slow \
        --policies mangaroute,cost-slo --no-bound             # a few contenders, tier shares
    python scripts/simulate_table.py --bar --seeds 7,8,9     # issue 15's bar, row by row

A row is a shipped scenario (``default``, ``bad-day``, ...), a fault preset, which runs on
the ``default`` scenario with that preset added (``--faults``), or ``trace:FILE``, a shipped
trace (``trace:example.csv``) replayed as ``--messages`` messages. Output is Markdown.

``--bar`` runs the default policy, the baselines and the bound, and checks each row and seed
against the bar of docs/policies.md ("The bar"): answers within the SLO (the first token's
on a streamed day) at most 0.02 points behind the best baseline and cost at most 2 % above
it; on a fault preset, ahead of every baseline; within 0.3 points and 10 % of the bound.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any

from mangaroute.simulate.scenario import FAULT_PRESETS, builtin_scenarios

TRACE = "trace:"
DEFAULT_POLICY = "mangaroute"
BASELINES = (
    "seed-switcher",
    "seed-score",
    "seed-hybrid",
    "random",
    "round-robin",
    "litellm-latency",
)
"""The contenders docs/policies.md calls baselines: the seed's three patterns and the three
that teams run before mangaroute ("Baselines")."""


def run(row: str, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """One ``mangaroute simulate --json`` run of ``row``."""
    if row.startswith(TRACE):
        where = ["--trace", row.removeprefix(TRACE), "--trace-messages", str(args.messages)]
    else:
        where = ["--scenario", row] if row in builtin_scenarios() else ["--faults", row]
        where += ["--messages", str(args.messages)]
        if args.hours != "0-24":
            where += ["--hours", args.hours]
    command = [
        sys.executable, "-m", "mangaroute", "simulate", *where, "--json", "--quiet",
        "--seed", str(seed), "--jobs", str(args.jobs),
    ]  # fmt: skip
    if args.policies != "all":
        command += ["--policies", args.policies]
    if args.no_bound:
        command.append("--no-bound")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[1:])} failed:\n{done.stdout}{done.stderr}")
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def _share(entry: dict[str, Any], streaming: bool) -> float:
    """Answers within the deadline: the first token's on a streamed day."""
    return float(entry["answered_share"] if streaming else entry["within_deadline_share"])


def _slo(entry: dict[str, Any], streaming: bool) -> float:
    key = "within_first_token_slo_share" if streaming else "within_inference_slo_share"
    return float(entry[key])


def spread_row(row: str, seed: int, data: dict[str, Any]) -> list[str]:
    budget = data["scenario"]["budget"]
    streaming = bool(budget.get("streaming"))
    policies = data["policies"]
    bound = data.get("bound")

    def best_worst(key: Any, fmt: str, low_is_best: bool) -> str:
        ranked = sorted(policies, key=key, reverse=not low_is_best)
        best, worst = ranked[0], ranked[-1]
        return (
            f"{format(key(best), fmt)} (`{best['name']}`) - {format(key(worst), fmt)} "
            f"(`{worst['name']}`)"
        )

    slo_bound = ""
    if bound is not None:
        key = "within_first_token_slo_share" if streaming else "within_inference_slo_share"
        slo_bound = f" (bound {bound[key]:.2%})"
    return [
        f"`{row}`",
        str(seed),
        "first token" if streaming else "whole answer",
        f"{data['traffic']['messages']:,}",
        best_worst(lambda e: e["failed"], ",", low_is_best=True)
        + (f" (bound >= {bound['failed_at_least']:,})" if bound else ""),
        best_worst(lambda e: _slo(e, streaming), ".2%", low_is_best=False) + slo_bound,
        best_worst(lambda e: e["cost"]["usd_per_1k_messages"], ".3f", low_is_best=True),
    ]


SPREAD_HEADERS = [
    "scenario / preset",
    "seed",
    "answered at",
    "messages",
    "failed: best - worst",
    "within the SLO: best - worst",
    "$/1k messages: cheapest - dearest",
]


def policy_rows(row: str, seed: int, data: dict[str, Any]) -> list[list[str]]:
    streaming = bool(data["scenario"]["budget"].get("streaming"))
    rows = []
    for entry in data["policies"]:
        regret = entry.get("regret") or {}
        missed = regret.get("within_first_token_slo" if streaming else "within_slo")
        ratio = regret.get("cost_ratio")
        rows.append(
            [
                f"`{row}`",
                str(seed),
                f"`{entry['name']}`",
                f"{_share(entry, streaming):.3%}",
                f"{_slo(entry, streaming):.2%}",
                f"{entry['failed']:,}",
                f"{entry['cost']['usd_per_1k_messages']:.3f}",
                "" if missed is None else f"{missed:,}",
                "" if not ratio else f"{ratio - 1:+.1%}",
                tier_cell(entry),
            ]
        )
    return rows


def tier_cell(entry: dict[str, Any]) -> str:
    """Each class's answers by tier: ``simple: haiku 71% sonnet 29%; complex: sonnet 100%``."""
    shares = entry.get("tier_share_by_class") or {}
    return "; ".join(
        f"{klass}: " + " ".join(f"{tier} {share:.0%}" for tier, share in tiers.items())
        for klass, tiers in shares.items()
    )


POLICY_HEADERS = [
    "scenario / preset",
    "seed",
    "policy",
    "within 3 s",
    "within the SLO",
    "failed",
    "$/1k messages",
    "SLO regret",
    "cost vs bound",
    "answers by tier",
]


def _count(entry: dict[str, Any], streaming: bool) -> int:
    """Answers within the SLO, as a count (ties compare exactly)."""
    return int(entry["within_first_token_slo" if streaming else "within_slo"])


def _cost(entry: dict[str, Any]) -> float:
    return float(entry["cost"]["usd_per_1k_messages"])


def bar_row(row: str, seed: int, data: dict[str, Any]) -> tuple[list[str], bool]:
    """One row and seed against the bar, and whether it passed."""
    streaming = bool(data["scenario"]["budget"].get("streaming"))
    by_name = {entry["name"]: entry for entry in data["policies"]}
    ours = by_name[DEFAULT_POLICY]
    baselines = [by_name[name] for name in BASELINES if name in by_name]
    # the best baseline: most answers within the SLO, the cheaper one on a tie
    best = max(baselines, key=lambda e: (_count(e, streaming), -_cost(e)))
    points = (_slo(ours, streaming) - _slo(best, streaming)) * 100
    cost = _cost(ours) / _cost(best) - 1
    misses = []
    if points < -0.02:
        misses.append(f"{-points:.2f} pt behind `{best['name']}`")
    if cost > 0.02:
        misses.append(f"{cost:+.1%} cost vs `{best['name']}`")
    fault = not row.startswith(TRACE) and row not in builtin_scenarios()
    if fault:
        for entry in baselines:
            if (_count(entry, streaming), -_cost(entry)) >= (_count(ours, streaming), -_cost(ours)):
                misses.append(f"not ahead of `{entry['name']}`")
    bound = data.get("bound")
    bound_cells = ["", ""]
    if bound is not None:
        bound_points = (_slo(bound, streaming) - _slo(ours, streaming)) * 100
        bound_cost = _cost(ours) / _cost(bound) - 1
        bound_cells = [f"{bound_points:.2f} pt", f"{bound_cost:+.1%}"]
        if bound_points > 0.3:
            misses.append(f"{bound_points:.2f} pt from the bound")
        if bound_cost > 0.10:
            misses.append(f"{bound_cost:+.1%} cost vs the bound")
    cells = [
        f"`{row}`",
        str(seed),
        "first token" if streaming else "whole answer",
        f"{_slo(ours, streaming):.2%}",
        f"{ours['failed']:,}",
        f"{_cost(ours):.3f}",
        f"`{best['name']}` {_slo(best, streaming):.2%}, {best['failed']:,} failed, "
        f"{_cost(best):.3f}",
        f"{points:+.2f} pt, {cost:+.1%}",
        *bound_cells,
        "pass" if not misses else "miss: " + "; ".join(misses),
    ]
    return cells, not misses


BAR_HEADERS = [
    "scenario / preset",
    "seed",
    "SLO on",
    f"`{DEFAULT_POLICY}` within the SLO",
    "failed",
    "$/1k messages",
    "best baseline: within the SLO, failed, $/1k",
    "vs best baseline",
    "behind the bound",
    "cost vs bound",
    "bar",
]


def markdown(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    traces = [f"{TRACE}{name}" for name in ("example.csv", "example-invocation-log.jsonl")]
    every = [*builtin_scenarios(), *FAULT_PRESETS]
    parser.add_argument(
        "--rows",
        metavar="LIST",
        help="scenarios, presets and trace:FILE rows to run (default: every scenario and "
        "preset; with --bar also the shipped traces)",
    )
    parser.add_argument("--messages", type=int, default=100_000, metavar="N")
    parser.add_argument("--hours", default="18-24", metavar="START-END")
    parser.add_argument("--seeds", default="7", metavar="LIST", help="comma-separated seeds")
    parser.add_argument("--jobs", type=int, default=2, metavar="N")
    parser.add_argument("--by-policy", action="store_true", help="one row per policy")
    parser.add_argument(
        "--policies", default="all", metavar="LIST", help="contenders to run (default: all)"
    )
    parser.add_argument("--no-bound", action="store_true", help="skip the bound (faster)")
    parser.add_argument(
        "--bar",
        action="store_true",
        help=f"check each row and seed against issue 15's bar: `{DEFAULT_POLICY}`, the "
        "baselines and the bound only; exit 1 if a row misses",
    )
    args = parser.parse_args(argv)
    if args.bar and (args.by_policy or args.no_bound or args.policies != "all"):
        parser.error("--bar runs its own contenders and the bound: drop --by-policy, "
                     "--no-bound and --policies")  # fmt: skip
    known = every + traces
    default_rows = known if args.bar else every
    rows = [r.strip() for r in (args.rows or ",".join(default_rows)).split(",") if r.strip()]
    unknown = [r for r in rows if r not in known and not r.startswith(TRACE)]
    if unknown:
        parser.error(f"--rows: unknown {', '.join(unknown)} (known: {', '.join(known)})")
    if args.bar:
        args.policies = ",".join((DEFAULT_POLICY, *BASELINES))
    seeds = [int(s) for s in args.seeds.split(",")]
    table: list[list[str]] = []
    missed = 0
    for row in rows:
        for seed in seeds:
            data = run(row, args, seed)
            if args.bar:
                cells, passed = bar_row(row, seed, data)
                table.append(cells)
                missed += not passed
            elif args.by_policy:
                table += policy_rows(row, seed, data)
            else:
                table.append(spread_row(row, seed, data))
            print(f"done: {row} seed {seed}", file=sys.stderr, flush=True)
    headers = BAR_HEADERS if args.bar else POLICY_HEADERS if args.by_policy else SPREAD_HEADERS
    print(markdown(headers, table))
    if args.bar:
        print(f"\n{len(table) - missed} of {len(table)} rows pass the bar.")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
