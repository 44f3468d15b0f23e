"""Shared-state benchmark: choose() with the Redis backend vs local-only, and the sync cost.

Starts its own ``redis-server`` on a free loopback port (``--save '' --appendonly no``, a
temporary directory; stopped at the end, also on error) and measures

* **choose() latency** (p50/p99 in microseconds, per call with ``perf_counter_ns``, as
  ``bench_core.py`` does): ``choose("simple", budget_ms=2500, input_tokens=1200,
  output_tokens=300)`` on routers of the shipped MangaAssist config, warmed identically
  with recorded outcomes - (a) local-only, (b) with :class:`~mangaroute.shared.SharedState`
  attached to the real Redis while 7 other replicas (a child process, as other hosts would
  be) send their share of peak traffic on the same deployment, so (b) merges a non-trivial
  fleet view every 250 ms. The fleet's load changes where (b) routes (at the peak every
  target is over its configured capacity fleet-wide, so (b)'s switcher moves the primary),
  so a control (c) - a local router fed the same requests, with (b)'s latest fleet view
  applied by hand and no link - separates the link's own cost (b/c) from the routing state's
  (c/a). Rounds of (a), (b) and (c) rotate through every order so drift hits all three; the
  result is the ratio b/a of the same run (bar: p50 and p99 within 1.10x), with b/c and the
  decision mix of each router reported beside it;
* **per-sync wall time and CPU** of ``sync()``: one replica calling ``sync_now()`` in a loop
  (a sync interval's worth of traffic recorded before each) against that 8-replica deployment;
* **sync cost per replica at peak**: 8 replicas (8 routers, each with ``SharedState`` at
  ``sync_interval_ms=250``) in one process, fed the MangaAssist burst peak of 81 requests/s
  fleet-wide (``docs/planning.md``: 1M messages/day, x3.5 evening peak, x2 flash-sale burst),
  about 10 req/s each (choose + record, ~1,200 input / ~300 output tokens, classes mixed
  60/30/10 simple/complex/manga). Per replica: Redis commands/s (``status().commands``
  deltas, cross-checked with the server's ``total_commands_processed``), syncs/s, and RESP
  bytes/s sent to and received from Redis (the server's ``total_net_input_bytes`` /
  ``total_net_output_bytes`` deltas, minus the measured cost of the INFO calls themselves,
  divided by the replicas; TCP/IP framing not included), the client CPU of the sync thread,
  the server's CPU, and ``sync()`` wall time as seen inside the busy process.

The 1.10x bar is reported (PASS/FAIL), never enforced: the exit status is non-zero only on a
gross problem (syncs failing, no fleet view merged, choose() p50 more than 2x local-only) -
or, outside ``--short``, when redis-server is not installed (``--short`` then skips, exit 0).

    python benchmarks/bench_shared.py                # full run (about 50 s)
    python benchmarks/bench_shared.py --short        # CI smoke (about 10 s)
    python benchmarks/bench_shared.py --json out.json
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import itertools
import json
import logging
import math
import os
import random
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mangaroute
from mangaroute import FakeClock, Router, SwitchEvent, load_default_config
from mangaroute.shared import SharedSettings, SharedState

perf_ns = time.perf_counter_ns

FLEET = 8
"""Replicas of the deployment (the measured one included)."""
PEAK_RPS = 81.0
"""MangaAssist's flash-sale burst, fleet-wide (docs/planning.md: 11.57 x 3.5 x 2)."""
SYNC_INTERVAL_MS = 250.0
CHOOSE_BAR = 1.10
GROSS_CHOOSE_RATIO = 2.0
CLASS_MIX = (("simple", 0.6), ("complex", 0.9), ("manga", 1.0))
"""Cumulative shares of the request classes in the generated traffic."""
WARM_SAMPLES = 600
WARM_SPACING_MS = 100.0  # ~10 req/s, one replica's share of the peak, over one 60 s window

NS_PER_S = 1_000_000_000
LETTERS = {"local": "a", "shared": "b", "control": "c"}


def percentile(samples: list[int], q: float, scale: float) -> float:
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1] / scale


def summary(samples: list[int], unit: str = "us") -> dict[str, float]:
    scale = 1_000.0 if unit == "us" else 1_000_000.0
    return {
        f"p50_{unit}": percentile(samples, 0.50, scale),
        f"p99_{unit}": percentile(samples, 0.99, scale),
        f"mean_{unit}": sum(samples) / len(samples) / scale,
        "n": len(samples),
    }


def quiet_logs() -> None:
    """Overloaded targets make the switchers propose primary switches, which the router logs
    as warnings; the benchmark counts events instead. Errors (a failing sync) still show."""
    logging.getLogger("mangaroute").setLevel(logging.ERROR)


# -- routers and traffic ------------------------------------------------------------------


class PastClock:
    """A virtual clock that starts ``span_ns`` before now, so the warm-up traffic lands in the
    recent past of the real monotonic clock the router is switched to afterwards."""

    def __init__(self, span_ns: int) -> None:
        self.fake = FakeClock(time.monotonic_ns() - span_ns)

    def __call__(self) -> int:
        return self.fake()


def serve_one(router: Router, rng: random.Random, budget_ms: float = 1500.0) -> None:
    """One request of the generated traffic: choose, then record how it went."""
    roll = rng.random()
    request_class = next(name for name, share in CLASS_MIX if roll < share)
    input_tokens = rng.randint(900, 1500)
    output_tokens = rng.randint(200, 400)
    decision = router.choose(
        request_class, budget_ms=budget_ms, input_tokens=input_tokens, output_tokens=300
    )
    roll = rng.random()
    outcome = "ok" if roll < 0.985 else ("throttled" if roll < 0.995 else "error")
    router.record(
        decision,
        outcome,
        latency_ms=rng.lognormvariate(6.4, 0.35),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
    )


def warmed_router(seed: int) -> Router:
    """The default router after ``WARM_SAMPLES`` requests at ~10 req/s over the last minute
    (virtual time ending now), then on the real monotonic clock."""
    span_ns = round(WARM_SAMPLES * WARM_SPACING_MS * 1_000_000)
    clock = PastClock(span_ns)
    router = Router(
        load_default_config(),
        clock=clock,
        rng=random.Random(seed),
        wall_clock=lambda: time.time() - span_ns / NS_PER_S,  # unix time stays the real one
    )
    rng = random.Random(seed + 10_000)
    for _ in range(WARM_SAMPLES):
        clock.fake.advance(ms=WARM_SPACING_MS)
        serve_one(router, rng)
    # From here on the router reads the monotonic clock directly, as in production: a
    # Python-level clock would add ~0.1 us (several percent) to every choose(). The virtual
    # clock ended at its creation time, so time does not go backwards.
    router._clock = time.monotonic_ns
    return router


def shared_settings(url: str, deployment: str, replica: str) -> SharedSettings:
    return SharedSettings(
        url=url, deployment=deployment, sync_interval_ms=SYNC_INTERVAL_MS, replica_id=replica
    )


class Fleet:
    """``replicas`` warmed routers, each with ``SharedState`` on ``deployment``, and one
    thread that feeds them ``rate`` requests/s in total, round robin, on a fixed schedule."""

    def __init__(
        self,
        url: str,
        deployment: str,
        replicas: int,
        rate: float,
        *,
        seed: int,
        time_syncs: bool = False,
    ) -> None:
        self.rate = rate
        self.routers = [warmed_router(seed + index) for index in range(replicas)]
        self.switches = 0
        self.served = 0
        self.errors: list[str] = []
        self.sync_wall_ns: list[int] = []
        self.sync_cpu_ns: list[int] = []
        self._rng = random.Random(seed)
        self._stop = threading.Event()
        self._feeder = threading.Thread(target=self._feed, name="bench-traffic", daemon=True)
        self.states: list[SharedState] = []
        try:
            for index, router in enumerate(self.routers):
                router.subscribe(self._on_event)
                state = SharedState(
                    router, shared_settings(url, deployment, f"{deployment}-{index}"), start=False
                )
                self.states.append(state)
                if time_syncs:
                    state.link.sync = self._timed(state.link.sync)  # type: ignore[method-assign]
        except BaseException:
            self.stop()
            raise

    def _on_event(self, event: object) -> None:
        if isinstance(event, SwitchEvent):
            self.switches += 1

    def _timed(self, sync: Callable[[], bool]) -> Callable[[], bool]:
        wall, cpu = self.sync_wall_ns, self.sync_cpu_ns

        def timed_sync() -> bool:
            started, started_cpu = perf_ns(), time.thread_time_ns()
            try:
                return sync()
            finally:
                cpu.append(time.thread_time_ns() - started_cpu)
                wall.append(perf_ns() - started)

        return timed_sync

    def start(self) -> None:
        for state in self.states:
            state.start()
        self._feeder.start()

    def _feed(self) -> None:
        interval = 1.0 / self.rate
        routers = self.routers
        due = time.perf_counter()
        index = 0
        while not self._stop.is_set():
            wait = due - time.perf_counter()
            if wait > 0:
                self._stop.wait(wait)
                continue
            try:
                serve_one(routers[index % len(routers)], self._rng)
                self.served += 1
            except Exception as exc:  # count it, keep the schedule
                if len(self.errors) < 5:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
            index += 1
            due += interval

    def wait_synced(self, timeout_s: float) -> bool:
        """Every replica has completed a successful sync."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(s.status().syncs > s.status().failures for s in self.states):
                return True
            time.sleep(0.02)
        return False

    def stop(self) -> None:
        self._stop.set()
        if self._feeder.is_alive():
            self._feeder.join(5)
        for state in self.states:
            state.close()

    def stats(self) -> dict[str, Any]:
        statuses = [s.status() for s in self.states]
        return {
            "served": self.served,
            "errors": self.errors,
            "syncs": sum(s.syncs for s in statuses),
            "failures": sum(s.failures for s in statuses),
            "switches": self.switches,
        }


# -- redis-server -------------------------------------------------------------------------


def _die_with_parent() -> None:
    """In the redis-server child before exec: SIGTERM it if this process dies (Linux), so
    not even a SIGKILL of the benchmark leaves a server behind."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # run the finally blocks: stop the fleet and the server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A private redis-server on loopback, no persistence; ``stop()`` always cleans up."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.directory = tempfile.mkdtemp(prefix="bench-shared-redis-")
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.client: Any = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis  # noqa: PLC0415 - checked in main()

        log = Path(self.directory, "redis.log")
        for _ in range(5):  # another process may take the free port before redis binds it
            self.port = _free_port()
            # fmt: off
            command = [
                self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", self.directory,
                "--logfile", str(log), "--daemonize", "no",
            ]
            # fmt: on
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - no threads exist yet
            )
            self.client = redis.Redis(
                host="127.0.0.1", port=self.port, socket_timeout=2, decode_responses=True
            )
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.process.poll() is None:
                with contextlib.suppress(redis.exceptions.ConnectionError):
                    if self.client.ping():
                        return
                time.sleep(0.02)
            self._kill()
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise RuntimeError(f"redis-server did not start:\n{tail}")

    def counters(self) -> dict[str, float]:
        stats = self.client.info("stats")
        cpu = self.client.info("cpu")
        return {
            "net_in": stats["total_net_input_bytes"],
            "net_out": stats["total_net_output_bytes"],
            "commands": stats["total_commands_processed"],
            "cpu_s": float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]),
        }

    def _kill(self) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.close()
            self.client = None
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(5)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(5)
            self.process = None

    def stop(self) -> None:
        self._kill()
        shutil.rmtree(self.directory, ignore_errors=True)


# -- the other replicas, in a child process -----------------------------------------------


def fleet_child(url: str, deployment: str, replicas: int, rate: float) -> int:
    """``--fleet-child``: run ``replicas`` replicas at ``rate`` req/s until stdin closes."""
    quiet_logs()
    signal.signal(signal.SIGTERM, _terminate)
    fleet = Fleet(url, deployment, replicas, rate, seed=1_000)
    try:
        fleet.start()
        if not fleet.wait_synced(10):
            print("not synced", flush=True)
            return 1
        print("ready", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            sys.stdin.read()
    finally:
        fleet.stop()
    print(json.dumps(fleet.stats()), flush=True)
    return 0


def start_fleet_child(url: str, deployment: str, replicas: int, rate: float) -> subprocess.Popen:
    """Start the other replicas; :func:`wait_fleet_child` waits until they have synced."""
    env = dict(os.environ)
    root = str(Path(mangaroute.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    # fmt: off
    command = [
        sys.executable, os.path.abspath(__file__), "--fleet-child", url,
        "--deployment", deployment, "--replicas", str(replicas), "--rate", str(rate),
    ]
    # fmt: on
    return subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True
    )


def wait_fleet_child(child: subprocess.Popen, timeout_s: float = 30) -> None:
    assert child.stdout is not None
    ready, _, _ = select.select([child.stdout], [], [], timeout_s)
    line = child.stdout.readline().strip() if ready else ""
    if line != "ready":
        raise RuntimeError(f"the fleet child process did not get ready ({line or 'timeout'})")


def stop_fleet_child(child: subprocess.Popen) -> dict[str, Any]:
    try:
        out, _ = child.communicate(timeout=15)  # closes stdin: the child stops
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        return {}
    for line in reversed(out.splitlines()):
        with contextlib.suppress(ValueError):
            return dict(json.loads(line))
    return {}


# -- the measurements ---------------------------------------------------------------------


def timed_choose(router: Router, calls: int) -> list[int]:
    choose, release = router.choose, router.release
    out = [0] * calls
    for index in range(calls):
        start = perf_ns()
        decision = choose("simple", budget_ms=2500.0, input_tokens=1200, output_tokens=300)
        out[index] = perf_ns() - start
        release(decision)
    return out


def decision_mix(router: Router, calls: int = 2_000) -> dict[str, float]:
    """Shares of ``target:reason`` over ``calls`` timed-style decisions (untimed, released)."""
    counts: dict[str, int] = {}
    for _ in range(calls):
        decision = router.choose("simple", budget_ms=2500.0, input_tokens=1200, output_tokens=300)
        key = f"{decision.target.name}:{decision.reason}"
        counts[key] = counts.get(key, 0) + 1
        router.release(decision)
    ordered = sorted(counts.items(), key=lambda item: -item[1])
    return {key: round(count / calls, 3) for key, count in ordered}


def wait_for(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def fleet_ready(router: Router, replicas: int) -> bool:
    view = router.fleet
    return view is not None and view.replicas >= replicas and bool(view.requests_per_second)


def others_rps(router: Router) -> float:
    view = router.fleet
    return sum(view.requests_per_second.values()) if view is not None else 0.0


def measure_choose(
    url: str, rounds: int, calls: int, settle_s: float, probe_syncs: int
) -> dict[str, Any]:
    """Part 1 (choose latency, local vs shared) and the isolated sync loop, against a
    deployment where 7 replicas in a child process send their share of the peak."""
    deployment = "bench-choose"
    others = FLEET - 1
    others_rate = PEAK_RPS * others / FLEET
    replica_rate = PEAK_RPS / FLEET
    child = start_fleet_child(url, deployment, others, others_rate)
    try:
        local = warmed_router(seed=1)
        shared = warmed_router(seed=1)
        control = warmed_router(seed=1)
        routers = {"local": local, "shared": shared, "control": control}
        wait_fleet_child(child)
        state = SharedState(shared, shared_settings(url, deployment, f"{deployment}-measured"))
        try:
            merged = wait_for(lambda: fleet_ready(shared, FLEET), 10)
            # let the others' rates in the merged view settle (a young bucket reads low)
            wait_for(lambda: others_rps(shared) >= 0.8 * others_rate, settle_s)
            view_start = shared.fleet.to_dict() if shared.fleet is not None else None
            rngs = {name: random.Random(7) for name in routers}
            samples: dict[str, list[int]] = {name: [] for name in routers}
            orders = list(itertools.permutations(routers))
            syncs_before = state.status().syncs
            served = 0
            started = time.perf_counter()
            for index in range(rounds):
                # every router gets this replica's share of the peak, the same requests
                # (untimed), so their windows stay current as in production
                due = int((time.perf_counter() - started) * replica_rate) + 1
                for _ in range(due - served):
                    for name, router in routers.items():
                        serve_one(router, rngs[name])
                served = max(served, due)
                view = shared.fleet
                if view is not None and control.fleet is not view:
                    control.apply_fleet(view)  # the same fleet view, without the link
                for name in orders[index % len(orders)]:
                    samples[name] += timed_choose(routers[name], calls)
            elapsed = time.perf_counter() - started
            status = state.status()
            view_end = shared.fleet.to_dict() if shared.fleet is not None else None
            mix = {name: decision_mix(router) for name, router in routers.items()}
        finally:
            state.close()
        probe = measure_sync_loop(url, deployment, probe_syncs)
    finally:
        child_stats = stop_fleet_child(child)
    a, b = summary(samples["local"]), summary(samples["shared"])
    control_summary = summary(samples["control"])
    ratio_p50 = b["p50_us"] / a["p50_us"]
    ratio_p99 = b["p99_us"] / a["p99_us"]
    return {
        "choose": {
            "call": 'choose("simple", budget_ms=2500, input_tokens=1200, output_tokens=300)',
            "rounds": rounds,
            "calls_per_round": calls,
            "seconds": round(elapsed, 2),
            "local": a,
            "shared": b,
            "control_same_view": control_summary,
            "ratio_p50": ratio_p50,
            "ratio_p99": ratio_p99,
            "control_ratio_p50": b["p50_us"] / control_summary["p50_us"],
            "control_ratio_p99": b["p99_us"] / control_summary["p99_us"],
            "bar": CHOOSE_BAR,
            "within_bar": ratio_p50 <= CHOOSE_BAR and ratio_p99 <= CHOOSE_BAR,
            "fleet_merged": merged,
            "shared_syncs_during": status.syncs - syncs_before,
            "shared_sync_failures": status.failures,
            "fleet_view_at_start": view_start,
            "fleet_view_at_end": view_end,
            "decision_mix_at_end": mix,
        },
        "sync_loop": probe,
        "other_replicas": {"replicas": others, "rate": others_rate, **child_stats},
    }


def measure_sync_loop(url: str, deployment: str, syncs: int) -> dict[str, Any]:
    """``sync_now()`` on the calling thread, timed (wall and thread CPU), with one sync
    interval's worth of this replica's traffic (2-3 requests) recorded before each."""
    router = warmed_router(seed=99)
    state = SharedState(
        router, shared_settings(url, deployment, f"{deployment}-probe"), start=False
    )
    rng = random.Random(99)
    wall, cpu, failed = [], [], 0
    commands_before = state.status().commands
    try:
        for index in range(syncs + 20):
            for _ in range(2 + (index & 1)):
                serve_one(router, rng)
            start, start_cpu = perf_ns(), time.thread_time_ns()
            ok = state.sync_now()
            if index >= 20:  # the first syncs read every bucket of the window: not steady
                cpu.append(time.thread_time_ns() - start_cpu)
                wall.append(perf_ns() - start)
                failed += not ok
            elif index == 19:
                commands_before = state.status().commands
            time.sleep(0.002)
        commands = state.status().commands - commands_before
    finally:
        state.close()
    return {
        "syncs": syncs,
        "failures": failed,
        "wall": summary(wall, "ms"),
        "cpu": summary(cpu, "ms"),
        "commands_per_sync": commands / syncs,
    }


def measure_peak(server: RedisServer, seconds: float, warm_s: float) -> dict[str, Any]:
    """Part 2: 8 replicas in this process at the fleet-wide peak, for ``seconds``."""
    # What our own INFO calls add to the server's counters: the difference of two samples
    # taken back to back on the idle server (the child fleet is gone by now).
    server.counters()
    idle_a = server.counters()
    idle_b = server.counters()
    overhead = {key: idle_b[key] - idle_a[key] for key in ("net_in", "net_out", "commands")}
    fleet = Fleet(server.url, "bench-peak", FLEET, PEAK_RPS, seed=2_000, time_syncs=True)
    try:
        fleet.start()
        synced = fleet.wait_synced(10)
        time.sleep(warm_s)
        before = [s.status() for s in fleet.states]
        counters_before = server.counters()
        first_sync = len(fleet.sync_wall_ns)
        served_before, switches_before = fleet.served, fleet.switches
        started = time.perf_counter()
        time.sleep(seconds)
        elapsed = time.perf_counter() - started
        after = [s.status() for s in fleet.states]
        counters_after = server.counters()
        last_sync = len(fleet.sync_wall_ns)
        served, switches = fleet.served - served_before, fleet.switches - switches_before
        replicas_seen = min(s.replicas for s in after)
    finally:
        fleet.stop()
    wall = fleet.sync_wall_ns[first_sync:last_sync]
    cpu = fleet.sync_cpu_ns[first_sync:last_sync]

    def per_replica(values: list[float]) -> dict[str, float]:
        return {"mean": sum(values) / len(values), "min": min(values), "max": max(values)}

    delta = {key: counters_after[key] - counters_before[key] for key in counters_before}
    net_in = max(0.0, delta["net_in"] - overhead["net_in"])
    net_out = max(0.0, delta["net_out"] - overhead["net_out"])
    server_commands = max(0.0, delta["commands"] - overhead["commands"])
    syncs = sum(b.syncs - a.syncs for a, b in zip(before, after, strict=True))
    per_sync = 1 / syncs if syncs else math.nan
    return {
        "replicas": FLEET,
        "seconds": round(elapsed, 2),
        "fleet_rps_target": PEAK_RPS,
        "fleet_rps_served": served / elapsed,
        "synced_at_start": synced,
        "replicas_seen": replicas_seen,
        "primary_switches_announced": switches,
        "traffic_errors": fleet.errors,
        "failures": sum(b.failures - a.failures for a, b in zip(before, after, strict=True)),
        "per_replica": {
            "syncs_per_s": per_replica(
                [(b.syncs - a.syncs) / elapsed for a, b in zip(before, after, strict=True)]
            ),
            "commands_per_s": per_replica(
                [(b.commands - a.commands) / elapsed for a, b in zip(before, after, strict=True)]
            ),
            "server_commands_per_s": server_commands / FLEET / elapsed,
            "bytes_in_per_s": net_in / FLEET / elapsed,
            "bytes_out_per_s": net_out / FLEET / elapsed,
            "bytes_in_per_sync": net_in * per_sync,
            "bytes_out_per_sync": net_out * per_sync,
            "client_sync_cpu_pct": sum(cpu) / 1e9 / FLEET / elapsed * 100,
            "server_cpu_pct": delta["cpu_s"] / FLEET / elapsed * 100,
        },
        "sync_wall_in_process": summary(wall, "ms") if wall else None,
        "sync_cpu_in_process": summary(cpu, "ms") if cpu else None,
        "info_overhead_subtracted": overhead,
    }


# -- report -------------------------------------------------------------------------------


def measure_convergence(url: str, trials: int) -> dict[str, Any]:
    """Eject a target on one of 8 replicas (real clocks, their sync threads at the default
    250 ms / 200 ms timeout) and time how long until every other replica's snapshot - what
    its ``choose()`` routes on - shows it unavailable; the ejection lands at a random phase
    of the others' sync cycles."""
    phase = random.Random(3)
    slowest: list[float] = []
    every: list[float] = []
    bound_ms = 0.0
    for trial in range(trials):
        deployment = f"converge-{trial}-{os.getpid()}"
        routers = [Router(load_default_config()) for _ in range(FLEET)]
        states = [
            SharedState(r, SharedSettings(url=url, deployment=deployment, replica_id=f"c{i}"))
            for i, r in enumerate(routers)
        ]
        try:
            bound_ms = states[0].settings.eject_bound_ms

            def joined(routers: list[Router] = routers) -> bool:
                return all(r.fleet is not None and r.fleet.replicas >= FLEET for r in routers)

            if not wait_for(joined, 10):
                raise RuntimeError("convergence replicas never saw each other")
            time.sleep(phase.uniform(0, SYNC_INTERVAL_MS / 1000))
            start = time.perf_counter()
            routers[0].eject("provisioned-sonnet", "AccessDeniedException")
            seen: dict[int, float] = {}
            while len(seen) < FLEET - 1 and time.perf_counter() - start < 5:
                for index, router in enumerate(routers[1:], 1):
                    if index in seen:
                        continue
                    # a fresh snapshot: what the next choose() will route on
                    if not router.snapshot().target("provisioned-sonnet").available:
                        seen[index] = (time.perf_counter() - start) * 1000
                time.sleep(0.0002)
        finally:
            for state in states:
                state.close()
        every.extend(seen.values())
        slowest.append(max(seen.values()) if len(seen) == FLEET - 1 else math.inf)
    ordered = sorted(slowest)
    return {
        "trials": trials,
        "bound_ms": bound_ms,
        "slowest_replica_ms": {
            "p50": round(statistics.median(ordered), 1),
            "max": round(ordered[-1], 1),
            "min": round(ordered[0], 1),
        },
        "any_replica_ms_p50": round(statistics.median(every), 1) if every else math.inf,
        "within_bound": ordered[-1] <= bound_ms,
    }


def report(result: dict[str, Any]) -> str:
    c = result["choose"]
    a, b, k = c["local"], c["shared"], c["control_same_view"]
    verdict = "PASS" if c["within_bar"] else "FAIL"
    view = c["fleet_view_at_end"] or {}

    def rps(v: dict[str, Any] | None) -> float:
        return sum((v or {}).get("others_requests_per_second", {}).values())

    lines = [
        f"mangaroute shared state on a private redis-server ({os.cpu_count()} CPUs); "
        f"{'short' if result['short'] else 'full'} run",
        "",
        f"choose() per call, {c['rounds']} interleaved rounds x {c['calls_per_round']:,} calls "
        f"({c['call']})",
        f"{'':<34}{'p50 us':>9}{'p99 us':>9}{'mean us':>9}",
        f"{'(a) local-only':<34}{a['p50_us']:>9.2f}{a['p99_us']:>9.2f}{a['mean_us']:>9.2f}",
        f"{'(b) SharedState on Redis':<34}{b['p50_us']:>9.2f}{b['p99_us']:>9.2f}"
        f"{b['mean_us']:>9.2f}",
        f"{'(c) local + the view (b) merged':<34}{k['p50_us']:>9.2f}{k['p99_us']:>9.2f}"
        f"{k['mean_us']:>9.2f}",
        f"b/a: p50 {c['ratio_p50']:.3f}x, p99 {c['ratio_p99']:.3f}x "
        f"(bar <= {c['bar']:.2f}x): {verdict}",
        f"b/c: p50 {c['control_ratio_p50']:.3f}x, p99 {c['control_ratio_p99']:.3f}x "
        "(the link's own cost: same routing state, no sync thread)",
        f"  (b) merged a view of {view.get('replicas', 0)} replicas (the others' "
        f"{rps(c['fleet_view_at_start']):.1f} -> {rps(view):.1f} req/s, primary "
        f"{view.get('primary')}); {c['shared_syncs_during']} syncs in {c['seconds']:.1f} s "
        f"of rounds, {c['shared_sync_failures']} failed",
        *(
            f"  picks ({LETTERS[name]}): "
            + ", ".join(f"{key} {share:.0%}" for key, share in list(picks.items())[:3])
            for name, picks in c["decision_mix_at_end"].items()
        ),
    ]
    s = result["sync_loop"]
    lines += [
        "",
        f"sync_now() alone on its thread, {s['syncs']:,} syncs against the 8-replica "
        f"deployment ({s['commands_per_sync']:.1f} commands each):",
        f"  wall p50 {s['wall']['p50_ms']:.3f} ms, p99 {s['wall']['p99_ms']:.3f} ms; "
        f"CPU p50 {s['cpu']['p50_ms']:.3f} ms, p99 {s['cpu']['p99_ms']:.3f} ms",
    ]
    p = result["peak"]
    r = p["per_replica"]
    w = p["sync_wall_in_process"] or {"p50_ms": math.nan, "p99_ms": math.nan}
    lines += [
        "",
        f"peak: {p['replicas']} replicas in one process, {p['fleet_rps_served']:.1f} req/s "
        f"fleet-wide (target {p['fleet_rps_target']:g}) for {p['seconds']:.1f} s, "
        f"sync every {SYNC_INTERVAL_MS:g} ms; per replica:",
        f"  syncs/s          {r['syncs_per_s']['mean']:9.2f}",
        f"  commands/s       {r['commands_per_s']['mean']:9.1f}  "
        f"(min {r['commands_per_s']['min']:.1f}, max {r['commands_per_s']['max']:.1f}; "
        f"server counted {r['server_commands_per_s']:.1f})",
        f"  bytes/s to Redis {r['bytes_in_per_s']:9,.0f}  ({r['bytes_in_per_sync']:,.0f} B/sync)",
        f"  bytes/s from     {r['bytes_out_per_s']:9,.0f}  ({r['bytes_out_per_sync']:,.0f} B/sync)",
        f"  sync thread CPU  {r['client_sync_cpu_pct']:9.3f} % of a core; redis-server "
        f"{r['server_cpu_pct']:.3f} %",
        f"  sync() wall in the busy process: p50 {w['p50_ms']:.3f} ms, p99 {w['p99_ms']:.3f} ms",
        f"  {p['failures']} failed syncs, {p['primary_switches_announced']} primary switches "
        f"announced; bytes are RESP payload (INFO overhead subtracted, no TCP/IP framing)",
    ]
    v = result["convergence"]
    lines += [
        "",
        f"ejection convergence, {FLEET} replicas on real clocks, {v['trials']} trials: every "
        f"other replica avoided the target after {v['slowest_replica_ms']['min']:.0f}-"
        f"{v['slowest_replica_ms']['max']:.0f} ms (median {v['slowest_replica_ms']['p50']:.0f}"
        f" ms; bound {v['bound_ms']:.0f} ms: {'PASS' if v['within_bound'] else 'FAIL'})",
    ]
    return "\n".join(lines)


def gross_problems(result: dict[str, Any]) -> list[str]:
    problems = []
    c, s, p = result["choose"], result["sync_loop"], result["peak"]
    if not c["fleet_merged"]:
        problems.append("the measured router never merged a fleet view of 8 replicas")
    if c["shared_sync_failures"] or s["failures"] or p["failures"]:
        problems.append("shared-state syncs failed against a local redis-server")
    if c["ratio_p50"] > GROSS_CHOOSE_RATIO:
        problems.append(f"choose() p50 with shared state is over {GROSS_CHOOSE_RATIO}x local")
    if p["replicas_seen"] < FLEET or p["per_replica"]["syncs_per_s"]["min"] < 1.0:
        problems.append("the peak fleet did not sync (replicas unseen or < 1 sync/s)")
    if not math.isfinite(result["convergence"]["slowest_replica_ms"]["max"]):
        problems.append("an ejection never reached every replica")
    if p["traffic_errors"] or result["other_replicas"].get("errors"):
        problems.append(f"traffic raised: {p['traffic_errors']}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", "--smoke", action="store_true", help="CI smoke (seconds)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    parser.add_argument("--seconds", type=float, default=None, help="peak run length")
    parser.add_argument("--fleet-child", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--deployment", default="bench", help=argparse.SUPPRESS)
    parser.add_argument("--replicas", type=int, default=FLEET - 1, help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, default=PEAK_RPS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.fleet_child:
        return fleet_child(args.fleet_child, args.deployment, args.replicas, args.rate)
    quiet_logs()
    signal.signal(signal.SIGTERM, _terminate)
    binary = shutil.which("redis-server")
    missing = None
    if binary is None:
        missing = "redis-server is not on PATH (Debian: apt-get install redis-server)"
    else:
        try:
            import redis  # noqa: F401, PLC0415
        except ImportError:
            missing = "the redis package is not installed (pip install 'mangaroute[redis]')"
    if missing is not None:
        if args.short:
            print(f"SKIP bench_shared: {missing}")
            return 0
        print(f"bench_shared: {missing}", file=sys.stderr)
        return 2
    assert binary is not None
    if args.short:
        rounds, calls, settle_s, probe_syncs, warm_s, seconds = 40, 5_000, 0.0, 200, 0.5, 3.0
    else:
        rounds, calls, settle_s, probe_syncs, warm_s, seconds = 200, 5_000, 8.0, 2_000, 2.0, 30.0
    if args.seconds is not None:
        seconds = args.seconds
    started = time.perf_counter()
    server = RedisServer(binary)
    try:
        server.start()
        result: dict[str, Any] = {"short": args.short, "cpus": os.cpu_count()}
        result.update(measure_choose(server.url, rounds, calls, settle_s, probe_syncs))
        result["peak"] = measure_peak(server, seconds, warm_s)
        result["convergence"] = measure_convergence(server.url, 3 if args.short else 20)
    finally:
        server.stop()
    result["wall_s"] = round(time.perf_counter() - started, 1)
    result["problems"] = gross_problems(result)
    print(report(result))
    print(f"\n(total {result['wall_s']:.1f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    for problem in result["problems"]:
        print(f"GROSS PROBLEM: {problem}", file=sys.stderr)
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
