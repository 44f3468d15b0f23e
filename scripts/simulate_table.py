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

A row is a shipped scenario (``default``, ``bad-day``, ...) or a fault preset, which runs on
the ``default`` scenario with that preset added (``--faults``). Output is Markdown.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any

from mangaroute.simulate.scenario import FAULT_PRESETS, builtin_scenarios


def run(row: str, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """One ``mangaroute simulate --json`` run of ``row``."""
    where = ["--scenario", row] if row in builtin_scenarios() else ["--faults", row]
    command = [
        sys.executable, "-m", "mangaroute", "simulate", *where, "--json", "--quiet",
        "--messages", str(args.messages), "--seed", str(seed), "--jobs", str(args.jobs),
    ]  # fmt: skip
    if args.hours != "0-24":
        command += ["--hours", args.hours]
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


def markdown(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    every = [*builtin_scenarios(), *FAULT_PRESETS]
    parser.add_argument(
        "--rows", default=",".join(every), metavar="LIST", help="scenarios and presets to run"
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
    args = parser.parse_args(argv)
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in rows if r not in every]
    if unknown:
        parser.error(f"--rows: unknown {', '.join(unknown)} (known: {', '.join(every)})")
    seeds = [int(s) for s in args.seeds.split(",")]
    table: list[list[str]] = []
    for row in rows:
        for seed in seeds:
            data = run(row, args, seed)
            if args.by_policy:
                table += policy_rows(row, seed, data)
            else:
                table.append(spread_row(row, seed, data))
            print(f"done: {row} seed {seed}", file=sys.stderr, flush=True)
    print(markdown(POLICY_HEADERS if args.by_policy else SPREAD_HEADERS, table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
