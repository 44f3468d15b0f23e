"""Hot-path benchmark: choose() and record() against same-run baselines.

Measures per-call latency distributions (p50/p99 in microseconds) of

* ``choose()`` on the shipped MangaAssist config (4 targets) after 100k recorded samples,
* ``record()``,
* a bare pure-Python argmin over 4 floats (the floor of any router written in Python),
* the seed's approach: a 1,000-sample deque per target, copied and sorted for every
  percentile query (seed section 1.2, ``LatencyAnalyzer.get_observed_percentile``), per
  query and per decision (a p99 query for each of the 4 targets, then the argmin),

and the resident-memory growth over many ``record()`` calls. Results are ratios against the
baselines measured in the same run, so a slow or busy machine shifts everything together.

A second section measures what decisions that are never reported cost (issue 13): the
``choose()`` p99.9 of a router holding 10,000 of them against one holding none, at a pace of
one call per millisecond of virtual time (so every fiftieth call rebuilds the snapshot at the
shipped ``refresh_ms = 50``), the two interleaved in rounds; and the cost of one rebuild
(``snapshot()``, :meth:`SnapshotBuilder.build <mangaroute.core.builder.SnapshotBuilder.build>`
under the router's lock) in each.

    python benchmarks/bench_core.py            # full run (about a minute: 10M records)
    python benchmarks/bench_core.py --smoke    # CI: short, fails only on gross regressions
    python benchmarks/bench_core.py --json     # machine-readable
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from mangaroute import FakeClock, Router, load_default_config

perf_ns = time.perf_counter_ns


class SwitchableClock:
    """Virtual time while the router is warmed up, then real monotonic time from there on
    (so snapshot rebuilds happen at their real cadence during the measurement)."""

    def __init__(self) -> None:
        self.fake = FakeClock(10**12)
        self.offset = 0
        self.real = False

    def __call__(self) -> int:
        if self.real:
            return time.monotonic_ns() + self.offset
        return self.fake()

    def go_real(self) -> None:
        self.offset = self.fake() - time.monotonic_ns()
        self.real = True


def percentile(samples: list[int], q: float) -> float:
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1] / 1000.0


def summary(samples: list[int]) -> dict[str, float]:
    return {
        "p50_us": percentile(samples, 0.50),
        "p99_us": percentile(samples, 0.99),
        "mean_us": sum(samples) / len(samples) / 1000.0,
    }


def timed(fn: Callable[[], object], calls: int) -> list[int]:
    out = []
    append = out.append
    for _ in range(calls):
        start = perf_ns()
        fn()
        append(perf_ns() - start)
    return out


def warmed_router(samples: int, *, real: bool = True) -> tuple[Router, SwitchableClock]:
    """The default router after ``samples`` recorded calls spread over virtual time at about
    the MangaAssist average rate, with realistic latency, tokens and a few failures; then on
    the real clock unless ``real`` is False."""
    clock = SwitchableClock()
    router = Router(load_default_config(), clock=clock, rng=random.Random(1))
    rng = random.Random(2)
    classes = router.request_classes
    for _ in range(samples):
        clock.fake.advance(ms=86.0)  # ~11.6 requests/s
        decision = router.choose(rng.choice(classes), budget_ms=1500.0)
        roll = rng.random()
        outcome = "ok" if roll < 0.985 else ("throttled" if roll < 0.995 else "error")
        router.record(
            decision,
            outcome,
            latency_ms=rng.lognormvariate(6.4, 0.35),
            input_tokens=rng.randint(300, 700),
            output_tokens=rng.randint(150, 450),
        )
    if real:
        clock.go_real()
    return router, clock


def argmin4(values: list[float]) -> int:
    best, best_value = 0, values[0]
    for index in range(1, 4):
        if values[index] < best_value:
            best, best_value = index, values[index]
    return best


def seed_query(window: deque[float], q: float = 99.0) -> float:
    """The seed's percentile query: copy, sort, index (section 1.2)."""
    measurements = list(window)
    measurements.sort()
    index = int(len(measurements) * q / 100)
    return measurements[min(index, len(measurements) - 1)]


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # pragma: no cover - not Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run(calls: int, memory_calls: int) -> dict[str, Any]:
    router, _ = warmed_router(100_000)
    rng = random.Random(3)

    floats = [rng.random() for _ in range(4)]
    argmin = summary(timed(lambda: argmin4(floats), calls))
    empty = summary(timed(lambda: None, calls))

    windows = [
        deque((rng.lognormvariate(6.4, 0.35) for _ in range(1000)), maxlen=1000) for _ in range(4)
    ]
    seed_calls = max(1000, calls // 20)
    seed_one = summary(timed(lambda: seed_query(windows[0]), seed_calls))
    seed_choose = summary(
        timed(lambda: argmin4([seed_query(window) for window in windows]), seed_calls // 4)
    )

    choose_samples = []
    for index in range(calls):
        request_class = ("simple", "complex", "manga")[index % 3]
        start = perf_ns()
        decision = router.choose(request_class, budget_ms=1500.0)
        choose_samples.append(perf_ns() - start)
        router.release(decision)
    choose = summary(choose_samples)

    names = [target.name for target in router.targets]
    latencies = [rng.lognormvariate(6.4, 0.35) for _ in range(1024)]
    record_samples = []
    for index in range(calls):
        name = names[index & 3]
        latency = latencies[index & 1023]
        start = perf_ns()
        router.record(name, "ok", latency_ms=latency, input_tokens=500, output_tokens=300)
        record_samples.append(perf_ns() - start)
    record = summary(record_samples)

    for index in range(50_000):  # let every histogram bin and bucket exist first
        router.record(names[index & 3], "ok", latency_ms=latencies[index & 1023])
    before = rss_bytes()
    for index in range(memory_calls):
        router.record(
            names[index & 3],
            "ok",
            latency_ms=latencies[index & 1023],
            input_tokens=500,
            output_tokens=300,
        )
    grown = rss_bytes() - before
    return {
        "calls": calls,
        "timer_overhead": empty,
        "argmin_baseline": argmin,
        "seed_percentile_query": seed_one,
        "seed_choose_4_targets": seed_choose,
        "choose": choose,
        "record": record,
        "ratios": {
            "choose_p50_over_argmin_p50": choose["p50_us"] / argmin["p50_us"],
            "seed_query_p50_over_choose_p50": seed_one["p50_us"] / choose["p50_us"],
            "seed_choose_p50_over_choose_p50": seed_choose["p50_us"] / choose["p50_us"],
            "record_p50_over_argmin_p50": record["p50_us"] / argmin["p50_us"],
        },
        "memory": {
            "record_calls": memory_calls,
            "rss_growth_bytes": grown,
            "rss_growth_mib": grown / 2**20,
        },
    }


def in_flight_run(calls: int, outstanding: int = 10_000, rounds: int = 4) -> dict[str, Any]:
    """``choose()`` with ``outstanding`` decisions never reported against none (see the module
    docstring), and the cost of a forced snapshot rebuild in each."""
    routers = {}
    for label, count in (("none", 0), ("outstanding", outstanding)):
        router, clock = warmed_router(20_000, real=False)
        for index in range(count):
            router.choose(("simple", "complex", "manga")[index % 3])
        routers[label] = router, clock
    choose: dict[str, list[int]] = {"none": [], "outstanding": []}
    rebuild: dict[str, list[int]] = {"none": [], "outstanding": []}
    per_round = max(1, calls // rounds)
    for _ in range(rounds):
        for label, (router, clock) in routers.items():
            samples = choose[label]
            for index in range(per_round):
                clock.fake.advance(ms=1.0)
                request_class = ("simple", "complex", "manga")[index % 3]
                start = perf_ns()
                decision = router.choose(request_class, budget_ms=1500.0)
                samples.append(perf_ns() - start)
                router.release(decision)
            rebuild[label] += timed(router.snapshot, max(50, per_round // 50))
    in_flight = {
        label: sum(view.in_flight for view in router.snapshot().targets)
        for label, (router, _) in routers.items()
    }
    result: dict[str, Any] = {"outstanding": outstanding, "in_flight": in_flight}
    for label, samples in choose.items():
        result[f"choose_{label}"] = {**summary(samples), "p999_us": percentile(samples, 0.999)}
        result[f"rebuild_{label}"] = summary(rebuild[label])
    result["ratios"] = {
        "choose_p999_outstanding_over_none": result["choose_outstanding"]["p999_us"]
        / result["choose_none"]["p999_us"],
        "rebuild_p50_outstanding_over_none": result["rebuild_outstanding"]["p50_us"]
        / result["rebuild_none"]["p50_us"],
    }
    return result


def report_in_flight(result: dict[str, Any]) -> str:
    count = f"{result['outstanding']:,}"
    rows = [
        ("choose(), none in flight", result["choose_none"]),
        (f"choose(), {count} unreported", result["choose_outstanding"]),
    ]
    lines = [f"{'per call (1 call per virtual ms)':<34}{'p50 us':>9}{'p99 us':>9}{'p99.9 us':>10}"]
    lines += [
        f"{name:<34}{s['p50_us']:>9.2f}{s['p99_us']:>9.2f}{s['p999_us']:>10.2f}" for name, s in rows
    ]
    lines += [
        f"{'snapshot rebuild, none in flight':<34}{result['rebuild_none']['p50_us']:>9.2f}"
        f"{result['rebuild_none']['p99_us']:>9.2f}",
        f"{'snapshot rebuild, ' + count + ' unreported':<34}"
        f"{result['rebuild_outstanding']['p50_us']:>9.2f}"
        f"{result['rebuild_outstanding']['p99_us']:>9.2f}",
    ]
    r = result["ratios"]
    lines += [
        "",
        f"choose p99.9, {count} unreported / none: "
        f"{r['choose_p999_outstanding_over_none']:.2f}x (target <= 2x)",
        f"rebuild p50, {count} unreported / none : {r['rebuild_p50_outstanding_over_none']:.2f}x",
    ]
    return "\n".join(lines)


def report(result: dict[str, Any]) -> str:
    rows = [
        ("bare argmin over 4 floats", result["argmin_baseline"]),
        ("seed: sorted-deque p99 query", result["seed_percentile_query"]),
        ("seed: choose over 4 targets", result["seed_choose_4_targets"]),
        ("mangaroute choose()", result["choose"]),
        ("mangaroute record()", result["record"]),
        ("(timer overhead)", result["timer_overhead"]),
    ]
    lines = [f"{'per call':<32}{'p50 us':>9}{'p99 us':>9}{'mean us':>9}"]
    lines += [
        f"{name:<32}{s['p50_us']:>9.2f}{s['p99_us']:>9.2f}{s['mean_us']:>9.2f}" for name, s in rows
    ]
    r = result["ratios"]
    memory = result["memory"]
    lines += [
        "",
        f"choose p50 / bare argmin p50      : {r['choose_p50_over_argmin_p50']:.1f}x "
        "(target <= 12x)",
        f"seed query p50 / choose p50       : {r['seed_query_p50_over_choose_p50']:.1f}x "
        "(target >= 20x)",
        f"seed choose p50 / choose p50      : {r['seed_choose_p50_over_choose_p50']:.1f}x",
        f"record p50 / bare argmin p50      : {r['record_p50_over_argmin_p50']:.1f}x",
        f"RSS growth over {memory['record_calls']:,} record() calls: "
        f"{memory['rss_growth_mib']:.3f} MiB (target < 1 MiB over 10M)",
    ]
    return "\n".join(lines)


def gross_regressions(result: dict[str, Any], smoke: bool) -> list[str]:
    """Generous limits: CI machines are shared and noisy; these catch a broken hot path
    (a sort, a log line or an allocation per call), not a few percent."""
    problems = []
    ratios = result["ratios"]
    if ratios["choose_p50_over_argmin_p50"] > 50:
        problems.append("choose() p50 is more than 50x the bare argmin")
    if ratios["record_p50_over_argmin_p50"] > 50:
        problems.append("record() p50 is more than 50x the bare argmin")
    if ratios["seed_query_p50_over_choose_p50"] < 3:
        problems.append("choose() is not even 3x faster than one sorted-deque query")
    limit = 8 if smoke else 4
    if result["memory"]["rss_growth_mib"] > limit:
        problems.append(f"record() grew RSS by more than {limit} MiB")
    in_flight = result["in_flight"]
    if in_flight["ratios"]["choose_p999_outstanding_over_none"] > 4:
        problems.append("unreported decisions make choose() p99.9 more than 4x slower")
    if in_flight["in_flight"] != {"none": 0, "outstanding": in_flight["outstanding"]}:
        problems.append(f"in-flight counts are off: {in_flight['in_flight']}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="short run for CI")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--calls", type=int, default=None, help="timed calls per measurement")
    args = parser.parse_args(argv)
    calls = args.calls or (20_000 if args.smoke else 200_000)
    memory_calls = 200_000 if args.smoke else 10_000_000
    result = run(calls, memory_calls)
    result["in_flight"] = in_flight_run(calls)
    problems = gross_regressions(result, args.smoke)
    result["problems"] = problems
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(report(result), report_in_flight(result["in_flight"]), sep="\n\n")
    for problem in problems:
        print(f"REGRESSION: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
