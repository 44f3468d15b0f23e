"""Sidecar under malformed input: memory growth and shutdown time (issue 13, items 1 and 2).

Runs a real ``mangaroute serve`` process on a Unix socket and

* **memory**: sends ``--requests`` requests that are not valid protobuf or carry bad UTF-8 in
  a string field (unary ``Choose``/``Report``/``Release``), then as many malformed messages
  inside ``ReportStream`` calls (100 per stream); prints the server's RSS
  (``/proc/<pid>/status`` ``VmRSS``) before and after each phase, after a warm-up of 1,000 of
  the same, the status codes it answered and the bytes it logged. Goal: < 2 MB growth per
  10,000 (before the fix: ~18 KB per unary request and ~11.6 KB per stream message, kept);
* **shutdown**: ``--runs`` times, starts a sidecar with ``--grace-s``, opens a
  ``ReportStream``, sends one malformed message (even runs keep the stream open, odd runs
  close it), sends SIGTERM and times the exit; a process still running at grace + 5 s gets a
  second SIGTERM, then SIGKILL. Goal: every exit within grace + 1 s.

    python benchmarks/bench_sidecar_malformed.py                 # both (~2 minutes)
    python benchmarks/bench_sidecar_malformed.py --only memory --requests 10000
    python benchmarks/bench_sidecar_malformed.py --only shutdown --runs 20 --grace-s 2
    python benchmarks/bench_sidecar_malformed.py --json
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

ROOT = Path(__file__).resolve().parents[1]
SERVICE = "/mangaroute.v1.Router/"
SERVE = (sys.executable, "-m", "mangaroute.sidecar", "--demo")
# Bytes no protobuf parser accepts (a field tag whose varint never ends), and a ChooseRequest /
# ReportRequest / ReleaseRequest whose field 1 (a string) is the invalid UTF-8 byte 0xff.
CORRUPT = b"\xff\xff\xff\xff"
BAD_UTF8 = b"\x0a\x01\xff"
UNARY = ("Choose", "Report", "Release")
WARM_UP = 1_000
PER_STREAM = 100
KILL_AFTER_S = 5.0


@dataclass
class Sidecar:
    """One ``mangaroute serve`` process and its log file."""

    process: subprocess.Popen[bytes]
    address: str
    log: Path

    @classmethod
    def start(cls, scratch: str, grace_s: float) -> Sidecar:
        log = Path(scratch) / "serve.log"
        address = f"unix:{scratch}/s.sock"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [*SERVE, "--listen", address, "--grace-s", str(grace_s)],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=sink,
            )
        deadline = time.monotonic() + 60
        while b"listening on" not in log.read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("the sidecar did not start:\n" + log.read_text())
            time.sleep(0.05)
        return cls(process, address, log)

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS line")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def _unary_calls(channel: grpc.Channel, count: int, codes: collections.Counter[str]) -> None:
    stubs = [channel.unary_unary(SERVICE + name) for name in UNARY]  # raw bytes both ways
    for index in range(count):
        payload = CORRUPT if index % 2 else BAD_UTF8
        try:
            stubs[index % len(stubs)](payload, timeout=10)
            codes["OK"] += 1
        except grpc.RpcError as error:
            codes[error.code().name] += 1  # type: ignore[attr-defined]


def _stream_messages(channel: grpc.Channel, count: int, codes: collections.Counter[str]) -> None:
    stream = channel.stream_unary(SERVICE + "ReportStream")

    def messages(n: int) -> Iterator[bytes]:
        for index in range(n):
            yield CORRUPT if index % 2 else BAD_UTF8

    for start in range(0, count, PER_STREAM):
        try:
            stream(messages(min(PER_STREAM, count - start)), timeout=30)
            codes["OK"] += 1
        except grpc.RpcError as error:
            codes[error.code().name] += 1  # type: ignore[attr-defined]


def memory(requests: int) -> dict[str, Any]:
    """RSS before and after ``requests`` malformed unary requests and as many stream
    messages, each after a warm-up."""
    with tempfile.TemporaryDirectory(prefix="mr-bench-", dir="/tmp") as scratch:
        sidecar = Sidecar.start(scratch, 2.0)
        try:
            result: dict[str, Any] = {"requests": requests}
            with grpc.insecure_channel(sidecar.address) as channel:
                for phase, send in (("unary", _unary_calls), ("stream", _stream_messages)):
                    send(channel, WARM_UP, collections.Counter())
                    time.sleep(0.5)
                    before, log_before = sidecar.rss_kb(), sidecar.log.stat().st_size
                    codes: collections.Counter[str] = collections.Counter()
                    started = time.monotonic()
                    send(channel, requests, codes)
                    seconds = time.monotonic() - started
                    time.sleep(0.5)
                    after = sidecar.rss_kb()
                    result[phase] = {
                        "rss_before_kb": before,
                        "rss_after_kb": after,
                        "growth_kb": after - before,
                        "codes": dict(codes),
                        "log_bytes": sidecar.log.stat().st_size - log_before,
                        "seconds": round(seconds, 2),
                    }
        finally:
            sidecar.stop()
    return result


def _shutdown_once(grace_s: float, keep_open: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="mr-bench-", dir="/tmp") as scratch:
        sidecar = Sidecar.start(scratch, grace_s)
        try:
            with grpc.insecure_channel(sidecar.address) as channel:
                stream = channel.stream_unary(SERVICE + "ReportStream")
                sent: list[bytes] = [BAD_UTF8, CORRUPT]
                release = time.monotonic() + (3600 if keep_open else 0)

                def messages() -> Iterator[bytes]:
                    yield from sent
                    while keep_open and time.monotonic() < release:
                        time.sleep(0.05)

                call = stream.future(messages(), timeout=60)
                time.sleep(0.3)  # the messages are in
                started = time.monotonic()
                sidecar.process.send_signal(signal.SIGTERM)
                signals = 1
                try:
                    code = sidecar.process.wait(grace_s + KILL_AFTER_S)
                except subprocess.TimeoutExpired:
                    signals = 2
                    sidecar.process.send_signal(signal.SIGTERM)
                    try:
                        code = sidecar.process.wait(KILL_AFTER_S)
                    except subprocess.TimeoutExpired:
                        signals = 3
                        sidecar.process.kill()
                        code = sidecar.process.wait()
                seconds = time.monotonic() - started
                release = 0.0
                call.cancel()
        finally:
            sidecar.stop()
        log = sidecar.log.read_text(errors="replace")
    return {
        "seconds": round(seconds, 3),
        "exit_code": code,
        "signals": signals,
        "stream_kept_open": keep_open,
        "traceback": "Traceback" in log,
    }


def shutdown(runs: int, grace_s: float) -> dict[str, Any]:
    times = [_shutdown_once(grace_s, keep_open=index % 2 == 0) for index in range(runs)]
    bound = grace_s + 1.0
    return {
        "grace_s": grace_s,
        "runs": times,
        "within_bound": sum(1 for t in times if t["signals"] == 1 and t["seconds"] <= bound),
        "max_s": max(t["seconds"] for t in times),
    }


def render(result: dict[str, Any]) -> str:
    lines = []
    if "memory" in result:
        memory_result = result["memory"]
        for phase in ("unary", "stream"):
            row = memory_result[phase]
            lines.append(
                f"{memory_result['requests']:,} malformed {phase} messages: RSS "
                f"{row['rss_before_kb'] / 1024:.1f} -> {row['rss_after_kb'] / 1024:.1f} MB "
                f"({row['growth_kb'] / 1024:+.2f} MB); answers {row['codes']}; "
                f"log {row['log_bytes']:,} bytes; {row['seconds']:.1f} s"
            )
    if "shutdown" in result:
        down = result["shutdown"]
        times = ", ".join(f"{t['seconds']:.2f}" for t in down["runs"])
        lines.append(
            f"shutdown after a malformed ReportStream message, --grace-s {down['grace_s']:g}: "
            f"{down['within_bound']} of {len(down['runs'])} runs within grace + 1 s, max "
            f"{down['max_s']:.2f} s\n  times (s): {times}"
        )
        stuck = [t for t in down["runs"] if t["signals"] > 1 or t["exit_code"] != 0]
        if stuck:
            lines.append(f"  runs that needed more signals or exited non-zero: {stuck}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("memory", "shutdown"), help="one part only")
    parser.add_argument("--requests", type=int, default=10_000, help="per phase (default 10000)")
    parser.add_argument("--runs", type=int, default=20, help="shutdown runs (default 20)")
    parser.add_argument("--grace-s", type=float, default=2.0, help="default 2")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    result: dict[str, Any] = {"cpus": os.cpu_count(), "grpc": grpc.__version__}
    if args.only in (None, "memory"):
        result["memory"] = memory(args.requests)
    if args.only in (None, "shutdown"):
        result["shutdown"] = shutdown(args.runs, args.grace_s)
    print(json.dumps(result, indent=2) if args.json else render(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
