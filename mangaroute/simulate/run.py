"""Run a scenario: generate the day once, replay it through every contender and the oracle.

Contenders are independent (each has its own router, clock and fleet; all share the same
generated day), so they run in parallel worker processes - ``jobs`` of them, by default one
per CPU. Workers are forked after the day is generated, so the traffic arrays are shared
rather than copied or regenerated; where ``fork`` is unavailable they run one after another in
this process. Results are identical either way: every run is seeded.

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
from dataclasses import dataclass, field

from mangaroute.core.errors import ConfigError
from mangaroute.core.fleet import SharedSettings
from mangaroute.simulate.engine import RunResult, run_oracle, run_router
from mangaroute.simulate.fleet import Fleet
from mangaroute.simulate.scenario import (
    DAY_START_UTC,
    Contender,
    Scenario,
    contender_config,
    instances_of,
)
from mangaroute.simulate.traffic import Traffic, generate

ORACLE = "oracle"
SHARED_MODES = ("off", "on", "both")
LOCAL, SHARED = "local", "shared"


@dataclass(slots=True)
class Simulation:
    """A finished run: the scenario as run, the day's traffic summary, one result per
    contender (in order) and the oracle's."""

    scenario: Scenario
    seed: int
    scale: float
    traffic: Traffic
    results: list[RunResult] = field(default_factory=list)
    oracle: RunResult | None = None
    wall_s: float = 0.0
    generate_s: float = 0.0
    jobs: int = 1
    replicas: int = 1
    shared: str = "off"
    sync_ms: float = 250.0


_WORK: tuple[Scenario, Traffic, float, int, int, float] | None = None
"""What forked workers read: set just before the pool forks."""


def simulate(
    scenario: Scenario,
    *,
    seed: int | None = None,
    messages: int | None = None,
    contenders: list[str] | None = None,
    jobs: int | None = None,
    oracle: bool = True,
    replicas: int = 1,
    shared: str | None = None,
    sync_ms: float = 250.0,
) -> Simulation:
    """Run ``scenario`` (optionally with another seed, a scale model of ``messages``, a subset
    of its contenders, several replicas per contender with or without shared state - ``shared``
    defaults to ``"both"`` for several replicas, else ``"off"``); see the module docstring."""
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
    names += [ORACLE] if oracle else []
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(names)))
    global _WORK
    _WORK = (
        dataclasses.replace(scenario, contenders=tuple(chosen)),
        traffic,
        scale,
        seed,
        replicas,
        sync_ms,
    )
    try:
        if jobs > 1 and "fork" in multiprocessing.get_all_start_methods():
            with multiprocessing.get_context("fork").Pool(jobs) as pool:
                results = pool.map(_run_named, names, chunksize=1)
        else:
            jobs = 1
            results = [_run_named(name) for name in names]
    finally:
        _WORK = None
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
    simulation.results = [r for r in results if r.name != ORACLE]
    simulation.oracle = next((r for r in results if r.name == ORACLE), None)
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
    replicas without/with shared state) or the oracle."""
    assert _WORK is not None, "simulate() sets the work before running contenders"
    scenario, traffic, scale, seed, replicas, sync_ms = _WORK
    name, _, mode = work.partition("\t")
    if name == ORACLE:
        contender = Contender(ORACLE, "")
    else:
        contender = next(c for c in scenario.contenders if c.name == name)
    config = contender_config(scenario, contender, scale)
    fleet = Fleet.build(
        config.targets, scenario.fleet, scenario.faults, instances_of(scenario, contender)
    )
    if name == ORACLE:
        classes = {c.name: c.targets for c in config.classes}
        missing = [c for c in traffic.classes if c not in classes]
        if missing:
            raise ConfigError(f"traffic class {missing[0]!r} is not a request class of the config")
        return run_oracle(
            classes, traffic, fleet, scenario.budget, tuple(t.name for t in config.targets)
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
    )


def shared_settings(sync_ms: float) -> SharedSettings:
    """Shared state as the simulated replicas use it: an in-process store (the URL is never
    dialled), each replica syncing every ``sync_ms`` of virtual time."""
    return SharedSettings(
        url="redis://sim",
        deployment="sim",
        sync_interval_ms=sync_ms,
        stale_after_ms=max(2000.0, 4 * sync_ms),
    )
