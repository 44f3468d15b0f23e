"""What ``serve --metrics`` costs a caller: Choose + Report round trips against two sidecar
processes on Unix sockets, one with no metrics and one with ``--metrics prometheus,emf``,
interleaved round by round in one run so both see the same machine load.

    python benchmarks/bench_sidecar_metrics.py            # 12 rounds x 300 pairs each
    python benchmarks/bench_sidecar_metrics.py --smoke    # 2 rounds x 50 (CI)

Prints p50 / p99 in microseconds per Choose + Report pair, and the ratio of the p50s.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc

from mangaroute.sidecar._generated.mangaroute_api.v1 import router_pb2 as pb
from mangaroute.sidecar._generated.mangaroute_api.v1 import router_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parents[1]
SETUPS = {"none": [], "prometheus,emf": ["--metrics", "prometheus,emf", "--prometheus-port", "0"]}


def _start(socket_path: str, flags: list[str]) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "mangaroute", "serve", "--demo"]
    command += ["--listen", f"unix:{socket_path}", *flags]
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    assert process.stderr is not None
    for line in process.stderr:
        if re.search(r"listening on", line):
            return process
    raise RuntimeError(f"{command} did not start")


def _pair(stub: pb_grpc.RouterStub) -> float:
    started = time.perf_counter_ns()
    decision = stub.Choose(pb.ChooseRequest(request_class="manga"), timeout=10)
    stub.Report(
        pb.ReportRequest(
            decision_id=decision.decision_id,
            outcome=pb.OUTCOME_OK,
            latency_ms=500.0,
            input_tokens=800,
            output_tokens=200,
        ),
        timeout=10,
    )
    return (time.perf_counter_ns() - started) / 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a short run (CI)")
    args = parser.parse_args()
    rounds, per_round = (2, 50) if args.smoke else (12, 300)
    samples: dict[str, list[float]] = {name: [] for name in SETUPS}
    with tempfile.TemporaryDirectory(prefix="mr-metrics-") as folder:
        processes = {
            name: _start(f"{folder}/{i}.sock", flags)
            for i, (name, flags) in enumerate(SETUPS.items())
        }
        try:
            with contextlib.ExitStack() as stack:
                stubs = {}
                for i, name in enumerate(SETUPS):
                    channel = stack.enter_context(grpc.insecure_channel(f"unix:{folder}/{i}.sock"))
                    stubs[name] = pb_grpc.RouterStub(channel)
                for round_no in range(rounds + 1):  # round 0 warms up
                    for name, stub in stubs.items():
                        times = [_pair(stub) for _ in range(per_round)]
                        if round_no:
                            samples[name] += times
        finally:
            for process in processes.values():
                process.send_signal(signal.SIGTERM)
                process.wait(30)
    p50 = {}
    for name, values in samples.items():
        values.sort()
        p50[name] = values[len(values) // 2]
        p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
        print(
            f"{name:<16} Choose+Report p50 {p50[name]:8.0f} us  p99 {p99:8.0f} us  n={len(values)}"
        )
    print(f"p50 ratio prometheus,emf / none: {p50['prometheus,emf'] / p50['none']:.2f}")


if __name__ == "__main__":
    main()
