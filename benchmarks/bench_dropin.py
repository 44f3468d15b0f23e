"""What the drop-in client (``mangaroute.bedrock_runtime``) adds over a direct boto3 call, and
over the ``RoutedClient`` call it makes, in one run.

Same setup as ``bench_invoke.py`` (whose stand-in process and timing helpers this reuses): the
stand-in in its own process, every path on the *same* boto3 client, the baseline timed with
no routed client open, blocks in a rotating order over rounds. Paths:

- direct: ``client.converse(modelId=<primary's id>, ...)``;
- routed: ``RoutedClient.converse(request_class="complex", budget_ms=1500, ...)``;
- drop-in: ``bedrock.converse(modelId="mangaroute/complex", ...)`` inside
  ``with mangaroute.context(budget_ms=1500)`` - the call a framework makes.

Target (issue 16): the drop-in client adds <= 100 us at p50 over direct boto3, as the routed
client does; "drop-in over routed" is the translation layer's own cost. Besides wall-clock
percentiles each path reports this process's CPU time per call (``time.process_time`` over
its blocks, background threads included): on a shared, loaded machine, where other processes
stretch the wall clock of every path differently, the CPU added per call is the steadier figure.
Blocks of one path at a time still drift apart on a busy machine, so "drop-in over routed" is
also measured interleaved: the two calls alternate, call by call, on one ``RoutedClient``, and
each is charged the CPU time of the calling thread only (``time.thread_time_ns``). The last
line times the translation layer alone (model id lookup, context, request rewrite) over a stub
in place of the ``RoutedClient``, with no I/O at all.

    python benchmarks/bench_dropin.py            # 3000 calls per path
    python benchmarks/bench_dropin.py --smoke    # short; exit 1 only on a gross regression
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
from bench_invoke import BUDGET_MS, MESSAGES, percentile, standin_process, timed_block

import mangaroute
from mangaroute import Router
from mangaroute.invoke import ClientCache, RoutedClient

DIRECT, ROUTED, DROPIN = "direct boto3, no routed client", "routed (RoutedClient)", "drop-in"
SMOKE_LIMIT_US = 1000.0  # drop-in over direct at p50: far above the target; CI noise allowed


class Bench:
    def __init__(self, router: Router, cache: ClientCache) -> None:
        self.router = router
        self.cache = cache
        primary = router.config.target(router.primary or router.targets[0].name)
        self.client = cache.client("bedrock-runtime", primary.region, BUDGET_MS / 1000)
        self.model_id = primary.model_id
        self.samples: dict[str, list[float]] = {DIRECT: [], ROUTED: [], DROPIN: []}
        self.block_p50: dict[str, list[float]] = {name: [] for name in self.samples}
        self.cpu_us: dict[str, float] = dict.fromkeys(self.samples, 0.0)

    def block(self, path: str, calls: int, *, keep: bool = True) -> None:
        if path == DIRECT:
            cpu = time.process_time()
            samples = timed_block(self._direct, calls)
            cpu = time.process_time() - cpu
        else:
            with RoutedClient(self.router, clients=self.cache) as routed:
                call = self._routed(routed) if path == ROUTED else self._dropin(routed)
                call()  # the client's first call warms its lookups
                with mangaroute.context(budget_ms=BUDGET_MS):
                    cpu = time.process_time()
                    samples = timed_block(call, calls)
                    cpu = time.process_time() - cpu
        if keep:
            self.cpu_us[path] += cpu * 1e6
            self.samples[path] += samples
            self.block_p50[path].append(percentile(samples, 0.5))

    def _direct(self) -> object:
        return self.client.converse(modelId=self.model_id, messages=MESSAGES)

    def _routed(self, routed: RoutedClient) -> Callable[[], object]:
        def call() -> object:
            return routed.converse(messages=MESSAGES, request_class="complex", budget_ms=BUDGET_MS)

        return call

    def _dropin(self, routed: RoutedClient) -> Callable[[], object]:
        bedrock = mangaroute.bedrock_runtime(self.router, client=self.client, routed=routed)

        def call() -> object:
            return bedrock.converse(modelId="mangaroute/complex", messages=MESSAGES)

        return call

    def run(self, calls: int, rounds: int) -> None:
        paths = list(self.samples)
        per_block = max(1, calls // rounds)
        for path in paths:  # warm-up, not kept
            self.block(path, max(20, per_block // 5), keep=False)
        gc.collect()
        for i in range(rounds):
            for k in range(len(paths)):
                self.block(paths[(i + k) % len(paths)], per_block)


class _Stub:
    """Stands in for the RoutedClient: returns at once."""

    def converse(self, **request: Any) -> object:
        return request


def layer_alone_us(client: Any, router: Router, calls: int = 20_000) -> float:
    """Median per-call time of the drop-in layer over a stub, in 20 blocks."""
    bedrock = mangaroute.bedrock_runtime(router, client=client, routed=_Stub())  # type: ignore[arg-type]

    def call() -> object:
        return bedrock.converse(modelId="mangaroute/complex", messages=MESSAGES)

    blocks = []
    with mangaroute.context(budget_ms=BUDGET_MS):
        for _ in range(20):
            start = time.perf_counter_ns()
            for _ in range(calls // 20):
                call()
            blocks.append((time.perf_counter_ns() - start) / 1000 / (calls // 20))
    return percentile(blocks, 0.5)


def interleaved_cpu_us(bench: Bench, calls: int) -> tuple[float, float]:
    """Calling-thread CPU per call of the routed and the drop-in call, alternated call by
    call (the order flipping every pair) on one RoutedClient."""
    with RoutedClient(bench.router, clients=bench.cache) as routed:
        pair = (bench._routed(routed), bench._dropin(routed))
        for call in pair:
            call()
        spent = [0, 0]
        with mangaroute.context(budget_ms=BUDGET_MS):
            for i in range(calls):
                for k in (0, 1) if i % 2 else (1, 0):
                    start = time.thread_time_ns()
                    pair[k]()
                    spent[k] += time.thread_time_ns() - start
    return spent[0] / calls / 1000, spent[1] / calls / 1000


def measure(calls: int, rounds: int) -> list[dict[str, Any]]:
    with standin_process() as endpoint_url:
        session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x")
        cache = ClientCache(session, endpoint_url=endpoint_url)
        bench = Bench(Router.default(), cache)
        bench.run(calls, rounds)
        routed_cpu, dropin_cpu = interleaved_cpu_us(bench, calls)
        layer_us = layer_alone_us(bench.client, bench.router)
        cache.close()
    p = {name: (percentile(s, 0.5), percentile(s, 0.99)) for name, s in bench.samples.items()}
    cpu = {name: bench.cpu_us[name] / max(1, len(s)) for name, s in bench.samples.items()}
    rows: list[dict[str, Any]] = [
        {"path": name, "p50_us": p50, "p99_us": p99, "cpu_us": cpu[name]}
        for name, (p50, p99) in p.items()
    ]
    for label, path, base in (
        ("added: routed over direct", ROUTED, DIRECT),
        ("added: drop-in over direct", DROPIN, DIRECT),
        ("added: drop-in over routed", DROPIN, ROUTED),
    ):
        paired = [a - b for a, b in zip(bench.block_p50[path], bench.block_p50[base], strict=True)]
        rows.append(
            {
                "path": label,
                "p50_us": p[path][0] - p[base][0],
                "p99_us": p[path][1] - p[base][1],
                "paired_p50_us": percentile(paired, 0.5),
                "cpu_us": cpu[path] - cpu[base],
            }
        )
    rows.append(
        {
            "path": "interleaved: drop-in over routed, calling thread CPU",
            "cpu_us": dropin_cpu - routed_cpu,
        }
    )
    rows.append({"path": "drop-in layer alone (stub)", "p50_us": layer_us})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000, help="timed calls per path")
    parser.add_argument("--rounds", type=int, default=10, help="blocks per path")
    parser.add_argument("--smoke", action="store_true", help="300 calls; fail on gross regressions")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    calls = 300 if args.smoke else args.calls
    rows = measure(calls, args.rounds)
    if args.json:
        print(
            json.dumps([{k: v if k == "path" else round(v, 1) for k, v in r.items()} for r in rows])
        )
    else:
        print(
            f"drop-in client vs RoutedClient vs direct boto3, stand-in in its own process, "
            f"{calls} calls per path in {args.rounds} blocks"
        )
        print(f"{'':32}{'p50 us':>10}{'p99 us':>10}{'CPU us/call':>13}{'paired p50':>12}")
        for row in rows:
            if "p50_us" not in row:
                print(f"{row['path']}: {row['cpu_us']:.1f} us")
                continue
            if "p99_us" not in row:
                print(f"{row['path']:32}{row['p50_us']:>10.1f}")
                continue
            paired = f"{row['paired_p50_us']:>12.1f}" if "paired_p50_us" in row else ""
            print(
                f"{row['path']:32}{row['p50_us']:>10.1f}{row['p99_us']:>10.1f}"
                f"{row['cpu_us']:>13.1f}{paired}"
            )
        print("target: drop-in adds <= 100 us at p50 over direct boto3 (tracing off)")
    if args.smoke:
        added = next(r for r in rows if r["path"] == "added: drop-in over direct")
        direct = rows[0]
        if added["p50_us"] > max(SMOKE_LIMIT_US, direct["p50_us"]):
            print(
                f"gross regression: drop-in adds {added['p50_us']:.0f} us at p50", file=sys.stderr
            )
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
