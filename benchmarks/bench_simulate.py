"""Simulator benchmark: the default 1M-message MangaAssist day, every policy and the bound.

Measures, on the default scenario:

* a **same-run baseline**: a bare ``choose`` + ``record`` loop of the router over the same
  messages (no fleet, no failover plan, no events) - what routing itself costs here, so the
  simulator's figures read as a multiple of it whatever the machine's load;
* one policy (``mangaroute`` by default) over the day in one process: microseconds of CPU
  per message, and that over the baseline;
* with ``--all``, every shipped policy and the bound side by side on all CPUs - the figure
  the performance bar is about (10 policies + the bound in <= 30 s on 2 cores) - with
  microseconds of CPU per message per policy.

CPU time is what the simulation itself costs; wall time also counts whatever else the machine
is doing. Snapshot rebuilds happen every ``refresh_ms`` of virtual time (2 s in the shipped
scenarios), so part of the cost is per rebuild, not per message.

    python benchmarks/bench_simulate.py                 # baseline + one policy, 1M messages
    python benchmarks/bench_simulate.py --all           # + all policies and the bound
    python benchmarks/bench_simulate.py --smoke         # CI: 20:00-20:30, two policies, bound
    python benchmarks/bench_simulate.py --json

``--smoke`` exits non-zero only on gross regressions (CPU per message per policy many times
the same run's baseline), so a busy CI runner does not fail it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import sys
import time
from typing import Any

from mangaroute.core.outcome import Outcome
from mangaroute.core.router import Router
from mangaroute.simulate import load_scenario, simulate
from mangaroute.simulate.driver import output_estimates
from mangaroute.simulate.engine import VirtualClock
from mangaroute.simulate.scenario import Scenario, contender_config
from mangaroute.simulate.traffic import Traffic, generate

SMOKE_WINDOW = (20 * 3600.0, 20 * 3600.0 + 1800.0)
"""The smoke run: the first half hour of the evening peak (about 66k messages)."""
SMOKE_MAX_RATIO = 15.0
"""Gross-regression bar for the smoke run: CPU per message per policy over the same run's
bare choose + record loop (about 2-2.5x on the 2-core reference machine)."""


def _scenario(window: tuple[float, float] | None) -> Scenario:
    scenario = load_scenario("default")
    if window is not None:
        traffic = dataclasses.replace(scenario.traffic, window=window)
        scenario = dataclasses.replace(scenario, traffic=traffic)
    return scenario


def baseline(scenario: Scenario, traffic: Traffic, policy: str) -> dict[str, Any]:
    """A bare ``choose`` + ``record`` loop of ``policy``'s router over the day's messages,
    in virtual time: every call answered in its target's prior p50."""
    contender = next(c for c in scenario.contenders if c.name == policy)
    config = contender_config(scenario, contender)
    clock = VirtualClock(traffic.time_ns[0] if len(traffic) else 0)
    router = Router(config, clock=clock, rng=random.Random(1))
    estimates = output_estimates(traffic.classes, scenario.output_estimate)
    names = traffic.classes
    sessions = [f"s{k}" for k in range(max(traffic.session, default=0) + 1)]
    choose, record, ok = router.choose, router.record, Outcome.OK
    streamed = scenario.budget.streaming  # the policies' runs tell choose() so: so does this
    started = time.process_time()
    for t, k, tin, tout, s in zip(
        traffic.time_ns,
        traffic.klass,
        traffic.input_tokens,
        traffic.output_tokens,
        traffic.session,
        strict=True,
    ):
        clock.now = t
        decision = choose(
            names[k], session_id=sessions[s], budget_ms=2500.0, input_tokens=tin,
            output_tokens=estimates[k], first_token=streamed,
        )  # fmt: skip
        p50 = decision.target.prior.p50_ms
        record(decision, ok, latency_ms=p50, input_tokens=tin, output_tokens=tout)
    cpu = time.process_time() - started
    return {"policy": policy, "cpu_s": round(cpu, 3), "cpu_us_per_message": _us(cpu, traffic)}


def _us(cpu_s: float, traffic: Traffic) -> float:
    return round(cpu_s / max(1, len(traffic)) * 1e6, 2)


def run(
    scenario: Scenario, policies: list[str], jobs: int, bound: bool, base_us: float
) -> dict[str, Any]:
    started = time.perf_counter()
    simulation = simulate(scenario, contenders=policies, jobs=jobs, bound=bound)
    wall = time.perf_counter() - started
    count = len(simulation.traffic)
    per_policy = {
        r.name: {
            "cpu_s": round(r.cpu_s, 2),
            "cpu_us_per_message": _us(r.cpu_s, simulation.traffic),
            "over_baseline": round(r.cpu_s / count * 1e6 / base_us, 2) if base_us else None,
        }
        for r in simulation.results
    }
    block: dict[str, Any] = {
        "policies": list(per_policy),
        "messages": count,
        "processes": simulation.jobs,
        "wall_s": round(wall, 2),
        "cpu_s": round(sum(r.cpu_s for r in simulation.results), 2),
        "generate_s": round(simulation.generate_s, 2),
        "per_policy": per_policy,
    }
    if simulation.bound is not None:
        block["bound_cpu_s"] = round(simulation.bound.cpu_s, 2)
        block["cpu_s"] = round(block["cpu_s"] + simulation.bound.cpu_s, 2)
    return block


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="short CI run")
    parser.add_argument("--all", action="store_true", help="also every policy and the bound")
    parser.add_argument("--policy", default="mangaroute", help="the single policy to time")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    report: dict[str, Any] = {"cpus": os.cpu_count()}
    scenario = _scenario(SMOKE_WINDOW if args.smoke else None)
    traffic = generate(scenario.traffic, scenario.seed)
    base = baseline(scenario, traffic, args.policy)
    report["baseline"] = base
    base_us = base["cpu_us_per_message"]
    failed = False
    if args.smoke:
        smoke = run(scenario, [args.policy, "seed-switcher"], 1, True, base_us)
        report["smoke"] = smoke
        worst = max(p["over_baseline"] for p in smoke["per_policy"].values())
        failed = worst > SMOKE_MAX_RATIO
        report["smoke_bar_over_baseline"] = SMOKE_MAX_RATIO
    else:
        report["one_policy_full_day"] = run(scenario, [args.policy], 1, False, base_us)
        if args.all:
            jobs = os.cpu_count() or 1
            report["all_policies_full_day"] = run(scenario, ["all"], jobs, True, base_us)
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
    else:
        _print(report)
    if failed:
        print("FAIL: gross regression in simulator speed", file=sys.stderr)
    return 1 if failed else 0


def _print(report: dict[str, Any]) -> None:
    base = report["baseline"]
    print(
        f"baseline: bare choose + record loop ({base['policy']}), "
        f"{base['cpu_us_per_message']:.2f} us CPU/message"
    )
    for key in ("smoke", "one_policy_full_day", "all_policies_full_day"):
        block = report.get(key)
        if not block:
            continue
        bound = f", bound {block['bound_cpu_s']:.1f} s CPU" if "bound_cpu_s" in block else ""
        print(
            f"{key}: {block['messages']:,} messages, {len(block['policies'])} policies on "
            f"{block['processes']} process(es): {block['wall_s']:.1f} s wall, "
            f"{block['cpu_s']:.1f} s CPU{bound} (day generated in {block['generate_s']:.1f} s)"
        )
        for name, entry in block["per_policy"].items():
            print(
                f"  {name:16s} {entry['cpu_s']:7.1f} s CPU {entry['cpu_us_per_message']:7.2f} "
                f"us CPU/message  {entry['over_baseline']:5.2f}x baseline"
            )
    if "smoke" in report:
        print(f"smoke bar: <= {report['smoke_bar_over_baseline']:.0f}x the baseline")


if __name__ == "__main__":
    raise SystemExit(main())
