"""Run a scenario: generate the day once, replay it through every contender, and compute the
bound they are scored against (:mod:`mangaroute.simulate.bound`).

Contenders are independent (each has its own router, clock and fleet; all share the same
generated day), so they run in parallel worker processes - ``jobs`` of them, by default one
per CPU. Workers are forked after the day is generated, so the traffic arrays are shared
rather than copied or regenerated; where ``fork`` is unavailable they run one after another in
this process. Results are identical either way: every run is seeded.

The bound's hindsight (every message on every target it may use) is split into slices that
go to the workers first; this process aggregates them and solves the LPs while the workers
run the contenders.

``messages`` below the scenario's volume runs a *scale model*: the same day shape with fewer
messages, and every target's capacity and hourly price scaled by the same factor, so
utilization, spill-over and cost per 1,000 messages stay comparable (the breaker's and the
window's absolute thresholds do not scale, so small models are rougher).
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.pool import AsyncResult
from typing import Any, TextIO

from mangaroute.core.errors import ConfigError
from mangaroute.core.fleet import SharedSettings
from mangaroute.simulate import bound as lp
from mangaroute.simulate.engine import RunResult, run_router
from mangaroute.simulate.fleet import Fleet
from mangaroute.simulate.progress import Progress
from mangaroute.simulate.scenario import (
    DAY_START_UTC,
    Contender,
    Scenario,
    contender_config,
    instances_of,
)
from mangaroute.simulate.traffic import Traffic, generate

BOUND = "bound"
BOUND_SLICES = 4
"""The bound's hindsight runs in this many slices of the day's messages."""
SHARED_MODES = ("off", "on", "both")
LOCAL, SHARED = "local", "shared"


@dataclass(slots=True)
class Simulation:
    """A finished run: the scenario as run, the day's traffic summary, one result per
    contender (in order) and the bound (unless it was skipped)."""

    scenario: Scenario
    seed: int
    scale: float
    traffic: Traffic
    results: list[RunResult] = field(default_factory=list)
    bound: lp.Bound | None = None
    wall_s: float = 0.0
    generate_s: float = 0.0
    jobs: int = 1
    replicas: int = 1
    shared: str = "off"
    sync_ms: float = 250.0

    @property
    def oracle(self) -> RunResult | None:
        """Always ``None``: the hindsight oracle is gone (policies beat it); :attr:`bound` is
        the reference. Kept so callers not yet moved on still run."""
        return None


_PROGRESS: Progress | None = None
"""The progress line of the running simulation, if it shows one (forked workers inherit it)."""
_WORK: tuple[Scenario, Traffic, float, int, int, float] | None = None
"""What forked workers read: set just before the pool forks."""


def simulate(
    scenario: Scenario,
    *,
    seed: int | None = None,
    messages: int | None = None,
    contenders: list[str] | None = None,
    jobs: int | None = None,
    bound: bool = True,
    replicas: int = 1,
    shared: str | None = None,
    sync_ms: float = 250.0,
    oracle: bool | None = None,
    progress: TextIO | None = None,
) -> Simulation:
    """Run ``scenario`` (optionally with another seed, a scale model of ``messages``, a subset
    of its contenders, several replicas per contender with or without shared state - ``shared``
    defaults to ``"both"`` for several replicas, else ``"off"`` - and without the bound);
    see the module docstring. ``oracle`` is the old name of ``bound``. With ``progress`` (a
    terminal), a line there shows the messages replayed so far, erased when done."""
    if oracle is not None:
        bound = oracle
    started = time.perf_counter()
    if replicas < 1:
        raise ConfigError(f"--replicas must be >= 1, got {replicas}")
    shared = shared or ("both" if replicas > 1 else "off")
    if shared not in SHARED_MODES:
        raise ConfigError(f"--shared must be one of {', '.join(SHARED_MODES)}, got {shared!r}")
    if not (math.isfinite(sync_ms) and sync_ms > 0):
        raise ConfigError(f"--sync-ms must be > 0, got {sync_ms:g}")
    seed = scenario.seed if seed is None else seed
    chosen = _select(scenario, contenders)
    scale = 1.0
    if messages is not None:
        if messages < 1:
            raise ConfigError(f"--messages must be >= 1, got {messages}")
        scale = messages / scenario.traffic.messages
        scenario = dataclasses.replace(
            scenario, traffic=dataclasses.replace(scenario.traffic, messages=messages)
        )
    for contender in chosen:
        contender_config(scenario, contender, scale)  # fail on a bad contender before running
    traffic = generate(scenario.traffic, seed)
    generated = time.perf_counter() - started
    modes = {"off": [""], "on": [SHARED], "both": [LOCAL, SHARED]}[shared]
    if replicas > 1 and shared == "off":
        modes = [LOCAL]
    names = [f"{c.name}\t{mode}" for c in chosen for mode in modes]
    if bound:
        lp.require_solver()
    slices = _slices(len(traffic), BOUND_SLICES if bound else 0)
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(names) + len(slices)))
    global _WORK, _PROGRESS
    _PROGRESS = None if progress is None else Progress(names, len(traffic), progress)
    _WORK = (
        dataclasses.replace(scenario, contenders=tuple(chosen)),
        traffic,
        scale,
        seed,
        replicas,
        sync_ms,
    )
    reference: lp.Bound | None = None
    try:
        if jobs > 1 and "fork" in multiprocessing.get_all_start_methods():
            with (
                multiprocessing.get_context("fork").Pool(jobs) as pool,
                ThreadPoolExecutor(1) as solver,
            ):
                pending = [pool.apply_async(_hindsight, piece) for piece in slices]
                runs = [pool.apply_async(_run_named, (name,)) for name in names]
                # the slices are first in the queue: the bound is solved here, beside the
                # workers still running policies, while the progress line keeps redrawing
                solving = solver.submit(_bound_of, pending) if slices else None
                if _PROGRESS is not None:
                    _PROGRESS.wait(runs)
                results = [r.get() for r in runs]
                reference = solving.result() if solving is not None else None
        else:
            jobs = 1
            results = [_run_named(name) for name in names]
            if slices:
                reference = _bound([_hindsight(*piece) for piece in slices])
    finally:
        _WORK = None
        if _PROGRESS is not None:
            _PROGRESS.close()
        _PROGRESS = None
    simulation = Simulation(
        scenario,
        seed,
        scale,
        traffic,
        jobs=jobs,
        generate_s=generated,
        replicas=replicas,
        shared=shared,
        sync_ms=sync_ms,
    )
    simulation.results = results
    simulation.bound = reference
    simulation.wall_s = time.perf_counter() - started
    return simulation


def _select(scenario: Scenario, names: list[str] | None) -> list[Contender]:
    if not names or names == ["all"]:
        return list(scenario.contenders)
    known = {c.name: c for c in scenario.contenders}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(
            f"--policies: unknown policy {unknown[0]!r} (known: {', '.join(known)}, all)"
        )
    return [known[n] for n in names]


def _run_named(work: str) -> RunResult:
    """Run ``"<contender>\t<mode>"`` (mode ``""``: one router; ``local``/``shared``: the
    replicas without/with shared state)."""
    assert _WORK is not None, "simulate() sets the work before running contenders"
    scenario, traffic, scale, seed, replicas, sync_ms = _WORK
    name, _, mode = work.partition("\t")
    contender = next(c for c in scenario.contenders if c.name == name)
    config = contender_config(scenario, contender, scale)
    fleet = Fleet.build(
        config.targets, scenario.fleet, scenario.faults, instances_of(scenario, contender)
    )
    missing = [c for c in traffic.classes if c not in {k.name for k in config.classes}]
    if missing:
        raise ConfigError(f"traffic class {missing[0]!r} is not a request class of the config")
    return run_router(
        contender.name,
        contender.description,
        config,
        traffic,
        fleet,
        scenario.budget,
        seed=seed,
        day_start_unix=DAY_START_UTC - scenario.utc_offset_hours * 3600.0,
        replicas=replicas if mode else 1,
        shared=shared_settings(sync_ms) if mode == SHARED else None,
        invoke=contender.invoke,
        estimates=scenario.output_estimate,
        progress=None if _PROGRESS is None else _PROGRESS.reporter(work),
    )


def _slices(n: int, count: int) -> list[tuple[int, int]]:
    """``count`` message ranges of about equal size (none for no messages)."""
    count = min(count, n)
    return [(n * k // count, n * (k + 1) // count) for k in range(count)]


def _reference() -> tuple[Scenario, Traffic, Fleet, dict[str, tuple[str, ...]], lp.Limits]:
    """What the bound is computed on, for the day being run."""
    assert _WORK is not None, "simulate() sets the work before the bound runs"
    scenario, traffic, scale = _WORK[:3]
    fleet, classes = bound_fleet(scenario, traffic, scale)
    return scenario, traffic, fleet, classes, limits_of(scenario)


def bound_fleet(
    scenario: Scenario, traffic: Traffic, scale: float = 1.0
) -> tuple[Fleet, dict[str, tuple[str, ...]]]:
    """The fleet the bound prices and the targets each class may use: the scenario's base
    config (every contender may narrow it, none widen it), on a fleet of the bound's own."""
    base = Contender(BOUND, "")
    config = contender_config(scenario, base, scale)
    classes = {c.name: c.targets for c in config.classes}
    missing = [c for c in traffic.classes if c not in classes]
    if missing:
        raise ConfigError(f"traffic class {missing[0]!r} is not a request class of the config")
    fleet = Fleet.build(
        config.targets, scenario.fleet, scenario.faults, instances_of(scenario, base)
    )
    return fleet, classes


def limits_of(scenario: Scenario) -> lp.Limits:
    """The bound's SLOs from the scenario's budget: the full answer within ``inference_ms``,
    the first token within ``first_token_ms`` where the budget has one (else the same),
    and the orchestrator's cutoff (for the first token when the day streams); as many
    attempts on one target as the most retrying contender may make."""
    budget = scenario.budget
    first = getattr(budget, "first_token_ms", None) or budget.inference_ms
    streaming = bool(getattr(budget, "streaming", False))
    return lp.Limits(
        budget.inference_ms,
        float(first),
        budget.cutoff_ms,
        attempts=1 + max_retries(scenario),
        streaming=streaming,
    )


def max_retries(scenario: Scenario) -> int:
    """The most retries any contender's plan may make on one call (0 without retries): the
    bound lets a message try a target that many more times."""
    most = 0
    for contender in scenario.contenders:
        retry = contender.invoke.retry
        if retry is not None:
            most = max(most, retry.max_per_call, *retry.per_class.values())
    return most


def _hindsight(lo: int, hi: int) -> tuple[Any, Any, Any, float]:
    """One slice of the bound's hindsight (in a worker), and the CPU time it took."""
    started = time.process_time()
    _, traffic, fleet, classes, limits = _reference()
    masks = lp.feasibility(traffic, fleet, classes, limits, lo, hi)
    return (*masks, time.process_time() - started)


def _bound_of(pending: list[AsyncResult[tuple[Any, Any, Any, float]]]) -> lp.Bound:
    """The bound once every slice of its hindsight is back from the workers."""
    return _bound([piece.get() for piece in pending])


def _bound(pieces: list[tuple[Any, Any, Any, float]]) -> lp.Bound:
    """Aggregate the slices and solve the bound's LPs (in this process)."""
    started = time.process_time()
    scenario, traffic, fleet, _, limits = _reference()
    full, first, reachable = (lp.concatenate([p[k] for p in pieces]) for k in range(3))
    demand = lp.aggregate(traffic, full, first, reachable)
    start_s, end_s = traffic.window
    result, _ = lp.solve(
        demand,
        fleet,
        scenario.faults,
        limits,
        start_s=start_s,
        end_s=end_s,
        hindsight_s=sum(p[3] for p in pieces),
        traffic=traffic,
    )
    return dataclasses.replace(result, cpu_s=result.hindsight_s + time.process_time() - started)


def shared_settings(sync_ms: float) -> SharedSettings:
    """Shared state as the simulated replicas use it: an in-process store (the URL is never
    dialled), each replica syncing every ``sync_ms`` of virtual time."""
    return SharedSettings(
        url="redis://sim",
        deployment="sim",
        sync_interval_ms=sync_ms,
        stale_after_ms=max(2000.0, 4 * sync_ms),
    )
