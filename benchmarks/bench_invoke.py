"""What a routed Converse call adds over calling boto3 directly, in one run - with tracing
off (the default) and on.

Every path calls the same local stand-in (``mangaroute.testing``, zero scripted latency) with
the *same* boto3 client - the one the routed client's cache hands out for the budget - so
the difference is the router's own work: choose, deadline and failover plan, client lookup,
record, the routing result, and (when on) the spans. Calls are interleaved round by round,
in a rotating order, so drift in the machine affects every path alike. Target: <= 100 us
added at p50, <= 300 us at p99 with tracing off.

Three measurements:

1. direct calls alone (no routed client open: the baseline);
2. with the default background snapshot refresh, interleaved: direct; routed with tracing
   off (``RoutedClient``'s default); routed with ``RoutingTelemetry()`` and no SDK (the
   OpenTelemetry API's no-op tracer: what tracing on by default would cost); routed with an
   SDK ``TracerProvider`` (``BatchSpanProcessor``, in-memory exporter);
3. direct vs routed (tracing off) with ``refresh_snapshots=False``, where ``choose()``
   rebuilds a stale snapshot on the caller's thread.

    python benchmarks/bench_invoke.py            # 3000 calls per path
    python benchmarks/bench_invoke.py --smoke    # short; exit 1 only on a gross regression
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import boto3
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mangaroute import Router
from mangaroute.invoke import ClientCache, RoutedClient
from mangaroute.telemetry import RoutingTelemetry
from mangaroute.testing import StandIn, TargetScript

MESSAGES = [{"role": "user", "content": [{"text": "Which volume of Frieren comes next?"}]}]
BUDGET_MS = 1500.0
SMOKE_LIMITS_US = {  # added p50, p99: far above the targets; CI noise allowed
    "tracing off": (1000.0, 3000.0),
    "tracing on, SDK": (2000.0, 5000.0),
}

Call = Callable[[], object]


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed(call: Call) -> float:
    start = time.perf_counter_ns()
    call()
    return (time.perf_counter_ns() - start) / 1000.0


def interleave(paths: Sequence[Call], calls: int) -> list[list[float]]:
    """``calls`` timed calls of each path, one of each per round, in a rotating order."""
    for _ in range(max(50, calls // 10)):
        for path in paths:
            path()
    gc.collect()
    samples: list[list[float]] = [[] for _ in paths]
    for i in range(calls):
        for k in range(len(paths)):
            j = (i + k) % len(paths)
            samples[j].append(timed(paths[j]))
    return samples


def figures(name: str, samples: list[float]) -> dict[str, Any]:
    return {"path": name, "p50_us": percentile(samples, 0.50), "p99_us": percentile(samples, 0.99)}


def added(name: str, routed: dict[str, Any], direct: dict[str, Any]) -> dict[str, Any]:
    return {
        "path": f"added ({name})",
        "p50_us": routed["p50_us"] - direct["p50_us"],
        "p99_us": routed["p99_us"] - direct["p99_us"],
    }


def measure(calls: int) -> list[dict[str, Any]]:
    router = Router.default()
    bedrock = [t for t in router.targets if t.pattern.value.startswith("bedrock")]
    models = {t.model_id: TargetScript(output_tokens=16) for t in bedrock}
    endpoints = {t.model_id: TargetScript() for t in router.targets if t not in bedrock}
    rows: list[dict[str, Any]] = []
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    with StandIn(models=models, endpoints=endpoints) as standin:
        session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x")
        cache = ClientCache(session, endpoint_url=standin.endpoint_url)
        client = cache.client("bedrock-runtime", bedrock[0].region, BUDGET_MS / 1000)
        model_id = router.config.target(router.primary or bedrock[0].name).model_id

        def direct() -> object:
            return client.converse(modelId=model_id, messages=MESSAGES)

        def routed(routed_client: RoutedClient) -> Call:
            def call() -> object:
                return routed_client.converse(
                    messages=MESSAGES, request_class="complex", budget_ms=BUDGET_MS
                )

            return call

        (baseline,) = interleave([direct], calls)
        rows.append(figures("direct, no routed client", baseline))

        # one refresher (the first client's) keeps the shared router's snapshot fresh for all
        telemetry = {
            "tracing off": None,
            "tracing on, no SDK": RoutingTelemetry(),
            "tracing on, SDK": RoutingTelemetry(provider),
        }
        clients = [
            RoutedClient(router, clients=cache, telemetry=t, refresh_snapshots=i == 0)
            for i, t in enumerate(telemetry.values())
        ]
        try:
            direct_us, *routed_us = interleave([direct, *map(routed, clients)], calls)
        finally:
            for routed_client in clients:
                routed_client.close()
        d = figures("direct (background refresh)", direct_us)
        rows.append(d)
        for name, samples in zip(telemetry, routed_us, strict=True):
            r = figures(f"routed, {name}", samples)
            rows += [r, added(name, r, d)]

        with RoutedClient(router, clients=cache, refresh_snapshots=False) as plain:
            direct_us, routed_us_plain = interleave([direct, routed(plain)], calls)
        label = "refresh_snapshots=False"
        d = figures(f"direct ({label})", direct_us)
        r = figures(f"routed ({label})", routed_us_plain)
        rows += [d, r, added(label, r, d)]
        cache.close()
    provider.shutdown()
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
        print(f"{'':44}{'p50 us':>10}{'p99 us':>10}")
        for row in rows:
            print(f"{row['path']:44}{row['p50_us']:>10.1f}{row['p99_us']:>10.1f}")
        print("target: added <= 100 us at p50, <= 300 us at p99 (tracing off, default refresh)")
    if args.smoke:
        by_path = {row["path"]: row for row in rows}
        for name, (p50_limit, p99_limit) in SMOKE_LIMITS_US.items():
            row = by_path[f"added ({name})"]
            if row["p50_us"] > p50_limit or row["p99_us"] > p99_limit:
                print(
                    f"gross regression, {name}: limits {p50_limit:g} / {p99_limit:g} us",
                    file=sys.stderr,
                )
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
