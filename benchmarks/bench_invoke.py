"""What a routed Converse call adds over calling boto3 directly, in one run.

Both paths call the same local stand-in (``mangaroute.testing``, zero scripted latency) with
the *same* boto3 client - the one the routed client's cache hands out for the budget - so
the difference is the router's own work: choose, deadline and failover plan, client lookup,
record, and the routing result. Calls alternate (direct, routed, routed, direct, ...) so
drift in the machine affects both alike. Target: <= 100 us added at p50, <= 300 us at p99.

Three measurements: direct calls alone (no routed client open: the baseline); direct vs
routed with the default background snapshot refresh; and the same with
``refresh_snapshots=False``, where ``choose()`` rebuilds a stale snapshot on the caller's
thread (the baseline row shows what the refresher thread costs the direct calls).

    python benchmarks/bench_invoke.py            # 3000 calls per path
    python benchmarks/bench_invoke.py --smoke    # short; exit 1 only on a gross regression
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import boto3

from mangaroute import Router
from mangaroute.invoke import ClientCache, RoutedClient
from mangaroute.testing import StandIn, TargetScript

MESSAGES = [{"role": "user", "content": [{"text": "Which volume of Frieren comes next?"}]}]
BUDGET_MS = 1500.0
SMOKE_LIMITS_US = (1000.0, 3000.0)  # added p50, p99: far above the targets; CI noise allowed

Call = Callable[[], object]


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed(call: Call) -> float:
    start = time.perf_counter_ns()
    call()
    return (time.perf_counter_ns() - start) / 1000.0


def alternate(direct: Call, routed: Call, calls: int) -> tuple[list[float], list[float]]:
    for _ in range(max(50, calls // 10)):
        direct()
        routed()
    gc.collect()
    direct_us: list[float] = []
    routed_us: list[float] = []
    for i in range(calls):
        if i % 2:
            direct_us.append(timed(direct))
            routed_us.append(timed(routed))
        else:
            routed_us.append(timed(routed))
            direct_us.append(timed(direct))
    return direct_us, routed_us


def figures(name: str, samples: list[float]) -> dict[str, Any]:
    return {"path": name, "p50_us": percentile(samples, 0.50), "p99_us": percentile(samples, 0.99)}


def measure(calls: int) -> list[dict[str, Any]]:
    router = Router.default()
    bedrock = [t for t in router.targets if t.pattern.value.startswith("bedrock")]
    models = {t.model_id: TargetScript(output_tokens=16) for t in bedrock}
    endpoints = {t.model_id: TargetScript() for t in router.targets if t not in bedrock}
    rows: list[dict[str, Any]] = []
    with StandIn(models=models, endpoints=endpoints) as standin:
        session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x")
        cache = ClientCache(session, endpoint_url=standin.endpoint_url)
        client = cache.client("bedrock-runtime", bedrock[0].region, BUDGET_MS / 1000)
        model_id = router.config.target(router.primary or bedrock[0].name).model_id

        def direct() -> object:
            return client.converse(modelId=model_id, messages=MESSAGES)

        baseline, _ = alternate(direct, direct, calls)
        rows.append(figures("direct, no routed client", baseline))
        for refresh in (True, False):
            with RoutedClient(router, clients=cache, refresh_snapshots=refresh) as routed_client:

                def routed(routed_client: RoutedClient = routed_client) -> object:
                    return routed_client.converse(
                        messages=MESSAGES, request_class="complex", budget_ms=BUDGET_MS
                    )

                direct_us, routed_us = alternate(direct, routed, calls)
            label = "background refresh" if refresh else "refresh_snapshots=False"
            d, r = figures(f"direct ({label})", direct_us), figures(f"routed ({label})", routed_us)
            added = {
                "path": f"added ({label})",
                "p50_us": r["p50_us"] - d["p50_us"],
                "p99_us": r["p99_us"] - d["p99_us"],
            }
            rows += [d, r, added]
        cache.close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000, help="timed calls per path")
    parser.add_argument("--smoke", action="store_true", help="300 calls; fail on gross regressions")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    calls = 300 if args.smoke else args.calls
    rows = measure(calls)
    if args.json:
        print(
            json.dumps([{k: v if k == "path" else round(v, 1) for k, v in r.items()} for r in rows])
        )
    else:
        print(f"routed Converse vs direct boto3 on the local stand-in, {calls} calls per path")
        print(f"{'':40}{'p50 us':>10}{'p99 us':>10}")
        for row in rows:
            print(f"{row['path']:40}{row['p50_us']:>10.1f}{row['p99_us']:>10.1f}")
        print("target: added <= 100 us at p50, <= 300 us at p99 (with the default refresh)")
    if args.smoke:
        added = rows[3]
        p50_limit, p99_limit = SMOKE_LIMITS_US
        if added["p50_us"] > p50_limit or added["p99_us"] > p99_limit:
            print(f"gross regression: limits {p50_limit:g} / {p99_limit:g} us", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
