"""Sidecar benchmark: Choose round trips and Choose+Report throughput against an empty echo.

The floor is an empty gRPC echo (raw bytes in, the same bytes out: no protobuf, no router)
registered **on the same server** as the API: same server kind, same options, same worker
pool, same transport. For each transport (Unix socket, loopback TCP) and server kind:

* ``sync`` - what ``mangaroute serve`` runs: gRPC's thread-pool server, the router's snapshot
  rebuilt on a background thread;
* ``sync-inline`` - the same with ``--refresh-ms 0``: rebuilds happen inside calls, as in the
  library;
* ``aio`` - the same servicer and background rebuilds behind ``grpc.aio``;

it measures

* round trips with one client, p50/p99 in microseconds: back to back, and paced at one call
  per 20 ms (MangaAssist's 40 req/s peak is one per 25 ms). Echo and Choose alternate in
  blocks so drift hits both; each timed Choose is followed by an untimed Report (each echo by
  a second echo), so decisions never pile up in flight;
* throughput: 8 client processes, each with its own connection, calling Choose then Report
  (or echo twice) as fast as they can, in alternating rounds (ABBA); calls per second.

Results are ratios against the echo of the same run; targets: Choose p50 <= 1.3x, throughput
>= 0.75x. The server runs in its own process, as a sidecar does.

    python benchmarks/bench_sidecar.py            # full run, all server kinds (~3 minutes)
    python benchmarks/bench_sidecar.py --smoke    # CI: short, sync only; fails only on
                                                  # gross regressions (p50 > 2x, thr < 0.4x)
    python benchmarks/bench_sidecar.py --json
    python benchmarks/bench_sidecar.py --idle     # CPU of an idle `mangaroute serve` over
                                                  # 20 s (/proc/<pid>/stat); target < 0.5 %
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import grpc

from mangaroute import Router
from mangaroute.runtime import SnapshotRefresher
from mangaroute.sidecar import Sidecar, SidecarSettings, parse_listen
from mangaroute.sidecar._generated.mangaroute_api.v1 import router_pb2 as pb
from mangaroute.sidecar.server import server_options
from mangaroute.sidecar.servicer import RouterServicer
from mangaroute.sidecar.watch import StreamSlots

ECHO_SERVICE = "bench.Echo"
ECHO = f"/{ECHO_SERVICE}/Echo"
CHOOSE = "/mangaroute.v1.Router/Choose"
REPORT = "/mangaroute.v1.Router/Report"
CHOOSE_BYTES = pb.ChooseRequest(
    request_class="simple", budget_ms=1500.0, input_tokens=500
).SerializeToString()
SERVERS = ("sync", "sync-inline", "aio")
PACE_S = 0.02
P50_TARGET, THROUGHPUT_TARGET = 1.3, 0.75
SMOKE_P50_LIMIT, SMOKE_THROUGHPUT_LIMIT = 2.0, 0.4
perf_ns = time.perf_counter_ns


def _identity(data: bytes) -> bytes:
    return data


def _echo_handler(echo: Callable[..., Any]) -> grpc.GenericRpcHandler[Any, Any]:
    return grpc.method_handlers_generic_handler(
        ECHO_SERVICE, {"Echo": grpc.unary_unary_rpc_method_handler(echo, _identity, _identity)}
    )


# -- server process ---------------------------------------------------------------------


def serve_sync(listen: str, ready: Callable[[str], None], refresh_ms: float | None) -> None:
    def echo(request: bytes, context: grpc.ServicerContext) -> bytes:
        return request

    settings = SidecarSettings(listen=parse_listen(listen), grace_s=0.5, refresh_ms=refresh_ms)
    with Sidecar(Router.default(), settings, handlers=[_echo_handler(echo)]) as sidecar:
        ready(sidecar.address)
        sys.stdin.read()  # until the benchmark closes our stdin


def serve_aio(listen: str, ready: Callable[[str], None]) -> None:
    """The same servicer behind ``grpc.aio`` (its unary methods never block, so they run on
    the event loop), with the same background snapshot refresh."""
    router = Router.default()
    servicer = RouterServicer(router, streams=StreamSlots(32))
    refresher = SnapshotRefresher(router)

    async def echo(request: bytes, context: Any) -> bytes:
        return request

    async def choose(data: bytes, context: Any) -> pb.ChooseResponse:
        return servicer.Choose(data, context)

    async def report(data: bytes, context: Any) -> pb.ReportResponse:
        return servicer.Report(data, context)

    api = grpc.method_handlers_generic_handler(  # raw request bytes, as the sidecar's
        "mangaroute.v1.Router",
        {
            "Choose": grpc.unary_unary_rpc_method_handler(
                choose, response_serializer=pb.ChooseResponse.SerializeToString
            ),
            "Report": grpc.unary_unary_rpc_method_handler(
                report, response_serializer=pb.ReportResponse.SerializeToString
            ),
        },
    )

    async def run() -> None:
        server = grpc.aio.server(options=server_options(SidecarSettings()))
        server.add_generic_rpc_handlers((_echo_handler(echo), api))
        address = parse_listen(listen)
        port = server.add_insecure_port(address.target)
        await server.start()
        ready(address.target if address.is_unix else address.with_port(port).target)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await server.stop(0.5)

    refresher.start()
    try:
        asyncio.run(run())
    finally:
        refresher.stop()


IDLE_TARGET_PCT = 0.5
IDLE_SETTLE_S = 3.0


def cpu_ticks(pid: int) -> int:
    """User + system CPU of ``pid`` in clock ticks (fields 14 and 15 of /proc/<pid>/stat,
    counted after the parenthesised command name, which may hold spaces)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def idle_cpu(seconds: float) -> dict[str, float]:
    """Start ``mangaroute serve`` on a Unix socket, let it settle, and measure the share of
    one core it uses over ``seconds`` with nobody calling it."""
    with tempfile.TemporaryDirectory(prefix="mr-idle-") as folder:
        socket_path = os.path.join(folder, "sidecar.sock")
        command = [sys.executable, "-m", "mangaroute", "serve", "--demo"]
        command += ["--listen", f"unix:{socket_path}"]
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while not os.path.exists(socket_path):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("mangaroute serve did not start")
                time.sleep(0.05)
            time.sleep(IDLE_SETTLE_S)
            ticks, start = cpu_ticks(server.pid), time.monotonic()
            time.sleep(seconds)
            used = (cpu_ticks(server.pid) - ticks) / os.sysconf("SC_CLK_TCK")
            wall = time.monotonic() - start
        finally:
            server.terminate()
            server.wait(30)
    return {"seconds": wall, "cpu_s": used, "core_pct": 100.0 * used / wall}


def _ready(address: str) -> None:
    print(f"ready {address}", flush=True)


# -- clients ----------------------------------------------------------------------------


def _stubs(channel: grpc.Channel) -> tuple[Any, Any, Any]:
    echo = channel.unary_unary(ECHO, _identity, _identity)
    choose = channel.unary_unary(CHOOSE, _identity, pb.ChooseResponse.FromString)
    report = channel.unary_unary(REPORT, pb.ReportRequest.SerializeToString, _identity)
    return echo, choose, report


def _report_for(decision: pb.ChooseResponse) -> pb.ReportRequest:
    return pb.ReportRequest(
        decision_id=decision.decision_id, outcome=pb.OUTCOME_OK, latency_ms=640.0
    )


def percentile(samples: list[int], q: float) -> float:
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1] / 1000.0


def round_trips(address: str, blocks: int, per_block: int, pause_s: float) -> dict[str, Any]:
    """Sequential echo and Choose round trips in alternating blocks; ``pause_s`` before each
    timed call (0: back to back)."""
    samples: dict[str, list[int]] = {"echo": [], "choose": []}
    with grpc.insecure_channel(address) as channel:
        echo, choose, report = _stubs(channel)
        for _ in range(300):  # warm up the connection and both paths
            echo(CHOOSE_BYTES)
            report(_report_for(choose(CHOOSE_BYTES)))
        for _ in range(blocks):
            out = samples["echo"]
            for _ in range(per_block):
                time.sleep(pause_s)
                start = perf_ns()
                echo(CHOOSE_BYTES)
                out.append(perf_ns() - start)
                echo(CHOOSE_BYTES)
            out = samples["choose"]
            for _ in range(per_block):
                time.sleep(pause_s)
                start = perf_ns()
                decision = choose(CHOOSE_BYTES)
                out.append(perf_ns() - start)
                report(_report_for(decision))
    result: dict[str, Any] = {
        name: {"p50": percentile(values, 0.5), "p99": percentile(values, 0.99)}
        for name, values in samples.items()
    }
    result["ratio"] = result["choose"]["p50"] / result["echo"]["p50"]
    return result


def _client_process(address: str, commands: Any) -> None:
    """One client with its own connection: runs timed rounds on command, answers counts."""
    options = [("grpc.use_local_subchannel_pool", 1)]
    with grpc.insecure_channel(address, options=options) as channel:
        echo, choose, report = _stubs(channel)
        for _ in range(50):
            echo(CHOOSE_BYTES)
            report(_report_for(choose(CHOOSE_BYTES)))
        commands.send("ready")
        while (command := commands.recv()) is not None:
            method, start_at, seconds = command
            time.sleep(max(0.0, start_at - time.time()))
            calls = 0
            stop = start_at + seconds
            if method == "echo":
                while time.time() < stop:
                    echo(CHOOSE_BYTES)
                    echo(CHOOSE_BYTES)
                    calls += 2
            else:
                while time.time() < stop:
                    report(_report_for(choose(CHOOSE_BYTES)))
                    calls += 2
            commands.send(calls)


def throughput(address: str, clients: int, seconds: float, rounds: int) -> dict[str, float]:
    """Calls per second of echo and of Choose+Report, in alternating rounds (ABBA), so that
    load from elsewhere on the machine hits both alike."""
    context = multiprocessing.get_context("spawn")
    pipes = [context.Pipe() for _ in range(clients)]
    processes = [
        context.Process(target=_client_process, args=(address, child)) for _, child in pipes
    ]
    for process in processes:
        process.start()
    totals = {"echo": 0, "choose": 0}
    try:
        for parent, _ in pipes:
            if parent.recv() != "ready":
                raise RuntimeError("a client did not start")
        for index in range(rounds):
            for method in ("echo", "choose") if index % 2 == 0 else ("choose", "echo"):
                start_at = time.time() + 0.05
                for parent, _ in pipes:
                    parent.send((method, start_at, seconds))
                totals[method] += sum(parent.recv() for parent, _ in pipes)
    finally:
        for parent, _ in pipes:
            parent.send(None)
        for process in processes:
            process.join(30)
    rates = {method: calls / (seconds * rounds) for method, calls in totals.items()}
    rates["ratio"] = rates["choose"] / rates["echo"]
    return rates


# -- driver -----------------------------------------------------------------------------


def measure(kind: str, transport: str, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="mr-bench-", dir="/tmp") as scratch:
        listen = f"unix:{scratch}/sidecar.sock" if transport == "uds" else "127.0.0.1:0"
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", listen, "--kind", kind],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            line = server.stdout.readline()
            if not line.startswith("ready "):
                raise RuntimeError(f"the {kind} server did not start: {line!r}")
            address = line.split()[1]
            back_to_back = round_trips(address, args.blocks, args.per_block, 0.0)
            paced = round_trips(address, args.paced_blocks, args.paced_per_block, PACE_S)
            rates = throughput(address, args.clients, args.seconds, args.rounds)
        finally:
            if server.stdin is not None:
                server.stdin.close()
            server.wait(30)
    return {
        "server": kind,
        "transport": transport,
        "back_to_back_us": back_to_back,
        "paced_us": paced,
        "calls_per_s": rates,
    }


def render(rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'server':<11} {'transport':<9} {'echo p50/p99':>13} {'Choose p50/p99':>15} "
        f"{'ratio':>6} {'paced echo':>10} {'paced Choose':>12} {'ratio':>6} "
        f"{'echo/s':>7} {'Ch+Rep/s':>8} {'ratio':>6}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        b2b, paced, rate = r["back_to_back_us"], r["paced_us"], r["calls_per_s"]
        lines.append(
            f"{r['server']:<11} {r['transport']:<9} "
            f"{b2b['echo']['p50']:>6.0f}/{b2b['echo']['p99']:<6.0f} "
            f"{b2b['choose']['p50']:>7.0f}/{b2b['choose']['p99']:<7.0f} {b2b['ratio']:>5.2f}x "
            f"{paced['echo']['p50']:>10.0f} {paced['choose']['p50']:>12.0f} "
            f"{paced['ratio']:>5.2f}x "
            f"{rate['echo']:>7.0f} {rate['choose']:>8.0f} {rate['ratio']:>5.2f}x"
        )
    return "\n".join(lines)


def _emit(as_json: bool, payload: dict[str, Any], text: str) -> None:
    if as_json:
        json.dump({"cpus": os.cpu_count(), **payload}, sys.stdout, indent=2)
        print()
    else:
        print(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="short run for CI")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument(
        "--kinds", default=None, help=f"server kinds, of {','.join(SERVERS)} (default: all)"
    )
    parser.add_argument("--transports", default="uds,tcp", help="of uds,tcp (default both)")
    parser.add_argument("--clients", type=int, default=8, help="throughput clients (default 8)")
    parser.add_argument("--seconds", type=float, default=None, help="per throughput round")
    parser.add_argument(
        "--idle",
        type=float,
        nargs="?",
        const=20.0,
        default=None,
        metavar="SECONDS",
        help="measure an idle `mangaroute serve`'s CPU instead (default 20 s)",
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--kind", default="sync", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        if args.kind == "aio":
            serve_aio(args.serve, _ready)
        else:
            serve_sync(args.serve, _ready, 0.0 if args.kind == "sync-inline" else None)
        return 0
    if args.idle is not None:
        idle = idle_cpu(args.idle)
        _emit(
            args.json,
            {"idle": idle},
            f"idle mangaroute serve: {idle['cpu_s']:.2f} s of CPU in {idle['seconds']:.1f} s"
            f" = {idle['core_pct']:.2f} % of a core (target < {IDLE_TARGET_PCT} %)",
        )
        return 0 if idle["core_pct"] < IDLE_TARGET_PCT else 1
    kinds = (args.kinds or ("sync" if args.smoke else ",".join(SERVERS))).split(",")
    args.blocks, args.per_block = (4, 250) if args.smoke else (10, 500)
    args.paced_blocks, args.paced_per_block = (2, 50) if args.smoke else (6, 50)
    args.rounds = 2 if args.smoke else 4
    if args.seconds is None:
        args.seconds = 0.75 if args.smoke else 1.5
    rows = [
        measure(kind, transport, args) for kind in kinds for transport in args.transports.split(",")
    ]
    _emit(
        args.json,
        {"results": rows},
        f"mangaroute sidecar vs an empty echo on the same server ({os.cpu_count()} CPUs).\n"
        f"Round trips in us with one client, back to back and paced (one call per "
        f"{PACE_S * 1000:g} ms);\nthroughput in calls/s with {args.clients} client processes.\n\n"
        f"{render(rows)}\n\n"
        f"targets: Choose p50 <= {P50_TARGET}x echo, throughput >= {THROUGHPUT_TARGET}x "
        "echo.\nsync = mangaroute serve; sync-inline = --refresh-ms 0 (snapshot rebuilt "
        "inside calls); aio = the same servicer on grpc.aio",
    )
    if args.smoke:
        gross = [
            r
            for r in rows
            if max(r["back_to_back_us"]["ratio"], r["paced_us"]["ratio"]) > SMOKE_P50_LIMIT
            or r["calls_per_s"]["ratio"] < SMOKE_THROUGHPUT_LIMIT
        ]
        if gross:
            print(f"gross regression: {json.dumps(gross)}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
