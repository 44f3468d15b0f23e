"""Simulator benchmark: how long a 1M-message MangaAssist day takes through the real router.

Measures, on the default scenario:

* one policy (``mangaroute`` by default) over the full 1M-message day, in one process - the
  figure the performance bar is about (a full day in <= 60 s);
* every shipped policy and the oracle side by side, on all CPUs (``--all``);

with wall-clock and CPU seconds (CPU time is what the simulation itself costs; wall time
also counts whatever else the machine is doing), messages per second and microseconds of CPU
per message. Snapshot rebuilds happen every ``refresh_ms`` of virtual time (2 s in the shipped
scenarios), so part of the cost is per rebuild, not per message: a smaller day is not
proportionally faster.

    python benchmarks/bench_simulate.py                 # one policy, 1M messages
    python benchmarks/bench_simulate.py --all           # + all policies side by side
    python benchmarks/bench_simulate.py --smoke         # CI: the 20:00-21:00 peak hour only
    python benchmarks/bench_simulate.py --json

``--smoke`` exits non-zero only on gross regressions (CPU per message many times what this
machine needs), so a busy CI runner does not fail it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from typing import Any

from mangaroute.simulate import load_scenario, simulate

SMOKE_HOURS = (20 * 3600.0, 21 * 3600.0)
SMOKE_MAX_US_PER_MESSAGE = 250.0
"""Gross-regression bar for the smoke run (the full day's busiest hour, 135k messages):
about 10x what the 2-core reference machine needs."""


def run(
    policies: list[str],
    messages: int | None,
    jobs: int,
    oracle: bool,
    window: tuple[float, float] | None = None,
) -> dict[str, Any]:
    scenario = load_scenario("default")
    if window is not None:
        traffic = dataclasses.replace(scenario.traffic, window=window)
        scenario = dataclasses.replace(scenario, traffic=traffic)
    started_wall, started_cpu = time.perf_counter(), time.process_time()
    simulation = simulate(
        scenario, messages=messages, contenders=policies, jobs=jobs, oracle=oracle
    )
    wall = time.perf_counter() - started_wall
    results = simulation.results + ([simulation.oracle] if simulation.oracle else [])
    cpu = sum(r.cpu_s for r in results)
    if jobs == 1:
        cpu = time.process_time() - started_cpu
    count = len(simulation.traffic)
    return {
        "policies": [r.name for r in results],
        "messages": count,
        "processes": simulation.jobs,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "generate_s": round(simulation.generate_s, 2),
        "per_policy": {
            r.name: {
                "wall_s": round(r.wall_s, 2),
                "cpu_s": round(r.cpu_s, 2),
                "messages_per_cpu_s": round(count / r.cpu_s) if r.cpu_s else None,
                "cpu_us_per_message": round(r.cpu_s / count * 1e6, 2),
            }
            for r in results
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="short CI run")
    parser.add_argument("--all", action="store_true", help="also run every policy side by side")
    parser.add_argument("--policy", default="mangaroute", help="the single policy to time")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    report: dict[str, Any] = {"cpus": os.cpu_count()}
    failed = False
    if args.smoke:
        smoke = run([args.policy, "seed-switcher"], None, 1, oracle=True, window=SMOKE_HOURS)
        report["smoke"] = smoke
        worst = max(p["cpu_us_per_message"] for p in smoke["per_policy"].values())
        failed = worst > SMOKE_MAX_US_PER_MESSAGE
        report["smoke_bar_us_per_message"] = SMOKE_MAX_US_PER_MESSAGE
    else:
        report["one_policy_full_day"] = run([args.policy], None, 1, oracle=False)
        if args.all:
            report["all_policies_full_day"] = run(["all"], None, os.cpu_count() or 1, True)
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
    else:
        _print(report)
    if failed:
        print("FAIL: gross regression in simulator speed", file=sys.stderr)
    return 1 if failed else 0


def _print(report: dict[str, Any]) -> None:
    for key in ("smoke", "one_policy_full_day", "all_policies_full_day"):
        block = report.get(key)
        if not block:
            continue
        print(
            f"{key}: {block['messages']:,} messages, {len(block['policies'])} run(s) on "
            f"{block['processes']} process(es): {block['wall_s']:.1f} s wall, "
            f"{block['cpu_s']:.1f} s CPU (day generated in {block['generate_s']:.1f} s)"
        )
        for name, entry in block["per_policy"].items():
            print(
                f"  {name:14s} {entry['wall_s']:7.1f} s wall {entry['cpu_s']:7.1f} s CPU "
                f"{entry['cpu_us_per_message']:7.1f} us CPU/message"
            )
    if "smoke" in report:
        print(f"smoke bar: <= {report['smoke_bar_us_per_message']:.0f} us CPU per message")


if __name__ == "__main__":
    raise SystemExit(main())
