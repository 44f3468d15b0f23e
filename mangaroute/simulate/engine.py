"""Replay a traffic day through the real router and its real failover plan in virtual time.

Event-driven: messages arrive in time order; at each arrival the router's clock (a
:class:`VirtualClock`) is set to that instant and the simulated orchestrator
(:mod:`mangaroute.simulate.driver`) runs the message as a routed call: ``Router.choose``,
then ``mangaroute.invoke``'s :class:`~mangaroute.invoke.plan.FailoverPlan` - its failover
rules, deadline, per-attempt read timeouts and hedging - against the simulated fleet. An
attempt's end (and a hedge's due time) is an event on a heap; at that instant the clock
moves there, the outcome goes to ``Router.record`` and the plan decides what comes next -
exactly the calls an orchestrator makes in production. Nothing sleeps; snapshot rebuilds
happen when virtual time says so.

The simulated orchestrator follows the seed's latency budget (section 1.1): the stages around
inference take ``pre_ms`` (WebSocket receive 50 + auth and session 100 + RAG retrieval 200)
and ``post_ms`` (post-processing 100 + WebSocket send 50), which leaves 2,500 ms of the 3 s
for inference; the seed allots 1,500 ms of it (``inference_ms``, the SLO the policies aim
for and a column of the report) and keeps the rest as slack for fallbacks. Each call gets a
:class:`~mangaroute.invoke.deadline.Deadline` 2,500 ms after its arrival (``cutoff_ms``);
when it passes, the call fails (the user sees a failure) and any attempt still running ends
as a read timeout.

The reference the policies are scored against is the hindsight bound
(:mod:`mangaroute.simulate.bound`), not a replay.
"""

from __future__ import annotations

import dataclasses
import heapq
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mangaroute.core.fleet import SharedSettings
from mangaroute.core.outcome import Outcome
from mangaroute.core.policy.budget import BudgetGuard, pace_fraction
from mangaroute.core.router import Router
from mangaroute.core.settings import RouterConfig
from mangaroute.core.snapshot import BreakerEvent, RouterEvent, SwitchEvent
from mangaroute.invoke.client import InvokeSettings
from mangaroute.shared.link import FleetLink
from mangaroute.shared.memory import MemoryStore
from mangaroute.simulate.driver import Orchestrator, output_estimates
from mangaroute.simulate.fleet import NS_PER_MS, NS_PER_S, TICK_NS, Fleet, SimTarget, Usage
from mangaroute.simulate.progress import EVERY
from mangaroute.simulate.traffic import Traffic

BUCKET_S = 900
"""Time series are kept per quarter hour of the day."""
BUCKETS = 96
LATENCY_BIN_MS = 20
LATENCY_BINS = 151
"""Per-bucket latency histograms: 20 ms bins up to 3 s, the last one open-ended."""
HIST_MAX_MS = 10_000
OUTCOMES = (Outcome.OK, Outcome.THROTTLED, Outcome.ERROR, Outcome.TIMEOUT)
SWITCH_LOG = 50
MINUTE_NS = 60 * NS_PER_S
NEVER = 2**63


@dataclass(frozen=True, slots=True)
class Budget:
    """The seed's latency budget (section 1.1)."""

    deadline_ms: float = 3000.0
    inference_ms: float = 1500.0
    pre_ms: float = 350.0
    post_ms: float = 150.0
    first_token_ms: float | None = None
    """The SLO of a streamed answer's first token (ms of inference); ``None``: the same as
    ``inference_ms``."""
    streaming: bool = False
    """The orchestrator streams its answers (ConverseStream): a call is answered at its first
    token, which must come before the deadline; the rest follows (see the driver)."""

    def __post_init__(self) -> None:
        if not self.inference_ms > 0 or self.pre_ms < 0 or self.post_ms < 0:
            raise ValueError("inference_ms must be > 0; pre_ms and post_ms >= 0")
        if self.first_token_ms is not None and not self.first_token_ms > 0:
            raise ValueError(f"first_token_ms must be > 0, got {self.first_token_ms}")
        if not self.cutoff_ms > 0:
            raise ValueError(
                f"deadline_ms ({self.deadline_ms}) leaves no time for inference after "
                f"pre_ms + post_ms ({self.pre_ms + self.post_ms})"
            )

    @property
    def first_token_slo_ms(self) -> float:
        return self.inference_ms if self.first_token_ms is None else self.first_token_ms

    @property
    def cutoff_ms(self) -> float:
        """Inference time the deadline allows."""
        return self.deadline_ms - self.pre_ms - self.post_ms


@dataclass(slots=True)
class ReplicaStats:
    """What running a policy as several replicas did."""

    replicas: int
    shared: bool
    sync_ms: float
    """Each replica's sync interval with shared state (0 without)."""
    messages: list[int]
    """Messages each replica served."""
    syncs: int = 0
    sync_failures: int = 0
    sampled_s: int = 0
    """Seconds of virtual time at which the replicas' primaries were compared."""
    disagree_s: int = 0
    """Of those, seconds at which not every replica had the same primary."""
    switch_events: int = 0
    """Primary switches announced fleet-wide (one ``SwitchEvent`` per replica that did)."""
    distinct_switches: int = 0
    """Changes of the fleet's primary (``distinct_switches``): a switch every replica
    announces on its own counts once."""


@dataclass(slots=True)
class RunResult:
    """Everything one policy did over the day."""

    name: str
    description: str
    classes: tuple[str, ...]
    target_names: tuple[str, ...]
    messages: int = 0
    answered: int = 0
    within_deadline: int = 0
    within_slo: int = 0
    """Answers whose inference (all attempts) took at most ``inference_ms``."""
    within_first_token_slo: int = 0
    """Answers whose first token came within ``first_token_ms`` of inference."""
    failed: int = 0
    failed_by_class: list[int] = field(default_factory=list)
    answers_by_class: list[int] = field(default_factory=list)
    """Answers per (class, target): index ``class * targets + target``."""
    target_tiers: tuple[str, ...] = ()
    """Each target's tier (its quality level), in ``target_names`` order."""
    latency_hist: list[int] = field(default_factory=list)
    """End-to-end latency of answered messages, 1 ms bins (the last one open-ended)."""
    failovers: int = 0
    """Messages that needed more than one attempt."""
    fallback_attempts: int = 0
    outcomes: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    switches: int = 0
    breaker_opens: int = 0
    switch_log: list[dict[str, Any]] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)
    usage: dict[str, Usage] = field(default_factory=dict)
    timeline_messages: list[int] = field(default_factory=list)
    timeline_failed: list[int] = field(default_factory=list)
    timeline_usd: list[float] = field(default_factory=list)
    timeline_targets: list[int] = field(default_factory=list)
    """Answers per (bucket, target): index ``bucket * targets + target``."""
    timeline_latency: list[int] = field(default_factory=list)
    """Latency bins per bucket: index ``bucket * LATENCY_BINS + bin``."""
    start_s: float = 0.0
    end_s: float = 86_400.0
    """The part of the day simulated (seconds after local midnight)."""
    wall_s: float = 0.0
    cpu_s: float = 0.0
    offered_tokens: dict[str, list[int]] = field(default_factory=dict)
    """Tokens offered to each target with a tokens-per-minute capacity - every attempt,
    admitted or throttled - per minute of the run."""
    capacity_tpm: dict[str, float] = field(default_factory=dict)
    """The tokens-per-minute capacity of those targets (fleet-wide: the account's)."""
    budget_daily_usd: float | None = None
    """The daily pay-per-use budget of the policy's budget guard, if it has one."""
    budget_window_usd: float | None = None
    """The share of that budget the guard's pace allots to the simulated hours."""
    replica_stats: ReplicaStats | None = None
    """Set when the policy ran as several replicas (or with shared state)."""

    @classmethod
    def empty(
        cls, name: str, description: str, classes: tuple[str, ...], targets: tuple[str, ...]
    ) -> RunResult:
        return cls(
            name,
            description,
            classes,
            targets,
            failed_by_class=[0] * len(classes),
            answers_by_class=[0] * (len(classes) * len(targets)),
            latency_hist=[0] * (HIST_MAX_MS + 1),
            timeline_messages=[0] * BUCKETS,
            timeline_failed=[0] * BUCKETS,
            timeline_usd=[0.0] * BUCKETS,
            timeline_targets=[0] * (BUCKETS * len(targets)),
            timeline_latency=[0] * (BUCKETS * LATENCY_BINS),
        )

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def token_usd(self) -> float:
        return sum(u.token_usd for u in self.usage.values())

    @property
    def fixed_usd(self) -> float:
        return sum(u.fixed_usd for u in self.usage.values())

    @property
    def total_usd(self) -> float:
        return self.token_usd + self.fixed_usd

    def percentile_ms(self, q: float) -> float | None:
        """Nearest-rank percentile of the answered messages' end-to-end latency."""
        if not self.answered:
            return None
        rank = max(1, round(q * self.answered + 0.4999999))
        seen = 0
        for ms, count in enumerate(self.latency_hist):
            seen += count
            if seen >= rank:
                return float(ms)
        return float(HIST_MAX_MS)


class _Recorder:
    """Counts router events (primary switches, breaker openings) with their virtual time;
    with several replicas, each replica's recorder says which one it was."""

    def __init__(
        self,
        result: RunResult,
        replica: str | None = None,
        switches: list[tuple[int, str, str]] | None = None,
    ) -> None:
        self.result = result
        self.replica = replica
        self.switches = switches

    def __call__(self, event: RouterEvent) -> None:
        result = self.result
        at_s = event.at_ns / NS_PER_S
        entry: dict[str, Any]
        if isinstance(event, SwitchEvent):
            result.switches += 1
            if self.switches is not None:
                self.switches.append((event.at_ns, event.from_target, event.to_target))
            entry = {
                "at": _clock(at_s),
                "event": "switch",
                "from": event.from_target,
                "to": event.to_target,
                "reason": event.reason,
            }
        elif isinstance(event, BreakerEvent) and event.to_state.value == "open":
            result.breaker_opens += 1
            entry = {
                "at": _clock(at_s),
                "event": "breaker_open",
                "target": event.target,
                "reason": event.reason,
            }
        else:
            return
        if len(result.switch_log) < SWITCH_LOG:
            if self.replica is not None:
                entry["replica"] = self.replica
            result.switch_log.append(entry)


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


class VirtualClock:
    """The router's clock in virtual time: a settable reading (nanoseconds). Lock-free and
    cheaper than :class:`~mangaroute.core.clock.FakeClock` - the simulation is one thread -
    and the loop makes sure it never goes backwards."""

    __slots__ = ("now",)

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def run_router(
    name: str,
    description: str,
    config: RouterConfig,
    traffic: Traffic,
    fleet: Fleet,
    budget: Budget,
    *,
    seed: int,
    day_start_unix: float,
    replicas: int = 1,
    shared: SharedSettings | None = None,
    invoke: InvokeSettings | None = None,
    estimates: dict[str, int] | None = None,
    progress: Callable[[int], None] | None = None,
) -> RunResult:
    """Replay ``traffic`` through ``replicas`` routers built on ``config`` (see the module
    docstring), with ``shared`` state between them when given. ``invoke`` are the routed
    calls' settings (fit percentile, hedging, retries, ejection cool-down) as ``RoutedClient`` takes
    them; ``estimates`` the output tokens the router is told to expect per class (default
    :data:`~mangaroute.simulate.driver.DEFAULT_OUTPUT_ESTIMATE`); ``progress`` is told how
    many messages have arrived every :data:`~mangaroute.simulate.progress.EVERY`."""
    if replicas < 1:
        raise ValueError(f"replicas must be >= 1, got {replicas}")
    started = time.perf_counter(), time.process_time()
    start_s, end_s = traffic.window
    start_ns = round(start_s * NS_PER_S)
    clock = VirtualClock(start_ns)
    routers = [
        Router(
            config,
            clock=clock,
            rng=random.Random(seed if r == 0 else f"{seed}/replica{r}"),
            wall_clock=lambda: day_start_unix + start_s,
        )
        for r in range(replicas)
    ]
    targets = tuple(t.name for t in config.targets)
    result = RunResult.empty(name, description, traffic.classes, targets)
    result.target_tiers = tuple(t.tier for t in config.targets)
    result.start_s, result.end_s = start_s, end_s
    switch_events: list[tuple[int, str, str]] = []
    for r, router in enumerate(routers):
        label = f"r{r}" if replicas > 1 else None
        router.subscribe(_Recorder(result, label, switch_events))
    links: list[FleetLink] = []
    if shared is not None:
        store = MemoryStore(clock=routers[0].unix_time)
        links = [
            FleetLink(router, store, dataclasses.replace(shared, replica_id=f"r{r}"))
            for r, router in enumerate(routers)
        ]
    times = traffic.time_ns
    klass = traffic.klass
    hist = result.latency_hist
    failed_by_class = result.failed_by_class
    by_class = result.answers_by_class
    tl_messages = result.timeline_messages
    tl_failed = result.timeline_failed
    tl_targets = result.timeline_targets
    tl_latency = result.timeline_latency
    n_targets = len(targets)
    end_ns = round(end_s * NS_PER_S)
    minutes = -(-(end_ns - start_ns) // MINUTE_NS)
    inference_ms = budget.inference_ms
    cutoff = budget.cutoff_ms
    around = budget.pre_ms + budget.post_ms
    bucket_ns = BUCKET_S * NS_PER_S
    # answered, within deadline, failed, -, -, within SLO, first token within its SLO
    stats = [0, 0, 0, 0, 0, 0, 0]
    first_slo = budget.first_token_slo_ms

    def answered(j: int, sim: SimTarget, inference: float, first: float) -> None:
        total = inference + around
        bucket = times[j] // bucket_ns
        stats[0] += 1
        if inference <= cutoff:
            stats[1] += 1
        if inference <= inference_ms:
            stats[5] += 1
        if first <= first_slo:
            stats[6] += 1
        hist[int(total) if total < HIST_MAX_MS else HIST_MAX_MS] += 1
        tl_targets[bucket * n_targets + sim.index] += 1
        tl_latency[bucket * LATENCY_BINS + min(int(total / LATENCY_BIN_MS), 150)] += 1
        by_class[klass[j] * n_targets + sim.index] += 1

    def failed(j: int) -> None:
        stats[2] += 1
        failed_by_class[klass[j]] += 1
        tl_failed[times[j] // bucket_ns] += 1

    orchestrator = Orchestrator(
        routers,
        _owners(traffic.session, replicas, seed),
        fleet,
        traffic,
        budget_ms=cutoff,
        settings=invoke or InvokeSettings(),
        estimates=output_estimates(traffic.classes, estimates),
        answered=answered,
        failed=failed,
        usd=result.timeline_usd,
        bucket_ns=bucket_ns,
        start_ns=start_ns,
        minutes=minutes,
        streaming=budget.streaming,
        jitter_seed=seed,
    )
    heap = orchestrator.heap
    settle = orchestrator.settle
    arrive = orchestrator.arrive
    pop = heapq.heappop
    timers = _Timers(fleet, routers, links, clock, start_ns, end_ns, shared)
    advance = timers.advance
    next_timer = timers.next_due
    n = len(times)
    mask = EVERY - 1
    i = 0
    arrival = times[0] if n else end_ns + 1
    while i < n or heap:
        if heap and (i >= n or heap[0][0] <= arrival):
            event = pop(heap)
            at = event[0]
            if at >= next_timer:
                next_timer = advance(at)
            clock.now = at
            settle(event)
            continue
        if arrival >= next_timer:
            next_timer = advance(arrival)
        clock.now = arrival
        tl_messages[arrival // bucket_ns] += 1
        arrive(i, arrival)
        i += 1
        if not i & mask and progress is not None:
            progress(i)
        arrival = times[i] if i < n else end_ns + 1
    advance(end_ns)
    if progress is not None:
        progress(n)
    counts = orchestrator.counts
    for sim in fleet.targets:
        usage = sim.usage
        usage.ok, usage.throttled, usage.errors, usage.timeouts = orchestrator.usage_counts(sim)
        usage.attempts = sum(orchestrator.usage_counts(sim))
        if sim.tok_rate:
            result.offered_tokens[sim.name] = orchestrator.offered[sim.index]
            result.capacity_tpm[sim.name] = sim.target.capacity.tokens_per_minute or 0.0
    for code in range(4):
        result.outcomes[code] = sum(counts[code::4])
    guard = budget_guard(config)
    if guard is not None:
        result.budget_daily_usd = guard.daily_usd
        result.budget_window_usd = guard.daily_usd * (
            pace_fraction(guard.pace, end_s) - pace_fraction(guard.pace, start_s)
        )
    if replicas > 1 or shared is not None:
        per_replica = [0] * replicas
        for r in orchestrator.owner:
            per_replica[r] += 1
        result.replica_stats = ReplicaStats(
            replicas=replicas,
            shared=shared is not None,
            sync_ms=shared.sync_interval_ms if shared is not None else 0.0,
            messages=per_replica,
            syncs=timers.syncs,
            sync_failures=timers.sync_failures,
            sampled_s=timers.sampled,
            disagree_s=timers.disagree,
            switch_events=len(switch_events),
            distinct_switches=distinct_switches(switch_events),
        )
    stats[3], stats[4] = orchestrator.failovers, orchestrator.fallback_attempts
    _finish(result, fleet, n, stats, started)
    return result


def _owners(sessions: Sequence[int], replicas: int, seed: int) -> Sequence[int]:
    """The replica serving each message: a seeded hash of its session (a WebSocket
    connection stays on one replica behind the load balancer)."""
    if replicas == 1:
        return bytes(len(sessions))
    salt = (seed * 0x9E3779B9 + 0x7F4A7C15) & 0xFFFFFFFF
    return [(((s * 2654435761 + salt) & 0xFFFFFFFF) * replicas) >> 32 for s in sessions]


def distinct_switches(events: Sequence[tuple[int, str, str]]) -> int:
    """Changes of the fleet's primary: announcements in time order, not counting one that
    moves to where the previous counted switch already went (another replica announcing the
    same switch again)."""
    distinct = 0
    primary: str | None = None
    for _, _, target in sorted(events):
        if target != primary:
            distinct += 1
            primary = target
    return distinct


def budget_guard(config: RouterConfig) -> BudgetGuard | None:
    """The budget guard of a policy some request class uses, if any."""
    for request_class in config.classes:
        picker = config.policies[request_class.policy].picker
        if isinstance(picker, BudgetGuard):
            return picker
    return None


class _Timers:
    """What happens at fixed instants of virtual time, in time order: the fleet's minute
    tick, each replica's shared-state sync (replica ``r`` at ``r / N`` of the interval, so
    the fleet's syncs are evenly staggered) and, with several replicas, a once-a-second look
    at whether they agree on the primary."""

    def __init__(
        self,
        fleet: Fleet,
        routers: list[Router],
        links: list[FleetLink],
        clock: VirtualClock,
        start_ns: int,
        end_ns: int,
        shared: SharedSettings | None,
    ) -> None:
        self.fleet_tick = fleet.tick
        self.routers = routers
        self.links = links
        self.clock = clock
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.next_tick = start_ns + TICK_NS
        self.interval_ns = round(shared.sync_interval_ms * NS_PER_MS) if shared else 0
        self.sync_count = 0
        self.next_sync = self._sync_at(0) if links else NEVER
        self.next_sample = start_ns + NS_PER_S if len(routers) > 1 or links else NEVER
        self.syncs = self.sync_failures = self.sampled = self.disagree = 0

    @property
    def next_due(self) -> int:
        return min(self.next_tick, self.next_sync, self.next_sample)

    def _sync_at(self, k: int) -> int:
        return self.start_ns + (k + 1) * self.interval_ns // len(self.links)

    def advance(self, until: int) -> int:
        """Run everything due at or before ``until`` (and the run's end); the next due time."""
        limit = min(until, self.end_ns)
        while True:
            due = min(self.next_tick, self.next_sync, self.next_sample)
            if due > limit:
                return due
            if due == self.next_tick:
                self.fleet_tick(due)
                self.next_tick += TICK_NS
            elif due == self.next_sync:
                self.clock.now = due
                link = self.links[self.sync_count % len(self.links)]
                self.syncs += 1
                if not link.sync():
                    self.sync_failures += 1
                self.sync_count += 1
                self.next_sync = self._sync_at(self.sync_count)
            else:
                self.sampled += 1
                first = self.routers[0].primary
                if any(router.primary != first for router in self.routers):
                    self.disagree += 1
                self.next_sample += NS_PER_S


def _finish(
    result: RunResult, fleet: Fleet, n: int, stats: list[int], started: tuple[float, float]
) -> None:
    fleet.close(result.duration_s)
    result.messages = n
    result.answered, result.within_deadline, result.failed = stats[0], stats[1], stats[2]
    result.failovers, result.fallback_attempts = stats[3], stats[4]
    result.within_slo = stats[5]
    result.within_first_token_slo = stats[6]
    result.usage = {sim.name: sim.usage for sim in fleet.targets}
    result.wall_s = time.perf_counter() - started[0]
    result.cpu_s = time.process_time() - started[1]
