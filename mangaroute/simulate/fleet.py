"""The simulated deployment targets: latency, capacity, cold starts, faults and price.

One :class:`SimTarget` per router target, built from the target's config (prior profile,
capacity, prices) and the scenario's fleet settings:

* **Latency** is time to first token plus a time per output token, scaled by a heavy-tailed
  multiplier: a lognormal body fitted to the prior's p50/p90 and a steeper lognormal tail
  fitted to its p90/p99 (piecewise, continuous at p90), so a ``reference_output_tokens``
  answer reproduces the seed's p50/p90/p99 (section 1.2) exactly. ``ttft_share`` of the
  median is time to first token.
* **Cold starts** (SageMaker serverless, Lambda): the prior's cold-start probability per
  call, and always after ``idle_cold_s`` without a call.
* **Capacity** is hard: tokens per minute (provisioned model units; on-demand quotas) as a
  token bucket ``BURST_S`` (15 s) deep, requests per second (SageMaker instances) as a bucket one
  second deep, concurrency as a count of calls in flight. A call that does not fit is
  throttled at once (``ThrottlingException`` after ``throttle_latency_ms``).
* **SageMaker auto-scaling** (seed section 4): target tracking on invocations per instance,
  evaluated every minute, scale-out cool-down 60 s, scale-in cool-down 300 s, new instances in
  service ``scale_out_lag_s`` after launch (the seed: 5-15 minutes), billed from launch.
* **Faults** (windows of the day): ``outage`` (every call fails fast with
  ``ServiceUnavailableException``), ``throttle_storm`` (capacity x ``capacity_factor`` and a
  throttle probability), ``slowdown`` (latency x ``factor``), ``fast_errors`` (a share of calls
  fail in a few ms - the case that fools latency routing that counts failures as fast calls).
* **Price**: per-token prices for answered calls (and for calls the orchestrator gave up on:
  the model still generated them), the hourly price of model units for the whole day, and
  instance-hours as the endpoint scaled.

Every random draw derives from the message's one uniform number (see
:mod:`mangaroute.simulate.traffic`), the attempt number and the target, so the same message
meets the same luck on the same target whichever policy sent it there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist

from mangaroute.core.outcome import ERROR, OK, THROTTLED
from mangaroute.core.targets import LatencyProfile, Pattern, Target
from mangaroute.simulate.traffic import TABLE_SIZE

NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000
BURST_S = 15.0
"""A tokens-per-minute limit admits at most this many seconds' worth of tokens at once."""
TICK_NS = 60 * NS_PER_S
"""Auto-scaling is evaluated (and instance time billed) once a virtual minute."""

_Z90 = NormalDist().inv_cdf(0.90)
_Z99 = NormalDist().inv_cdf(0.99)

OUTAGE, THROTTLE_STORM, SLOWDOWN, FAST_ERRORS = (
    "outage",
    "throttle_storm",
    "slowdown",
    "fast_errors",
)
FAULT_KINDS = (OUTAGE, THROTTLE_STORM, SLOWDOWN, FAST_ERRORS)


@dataclass(frozen=True, slots=True)
class Fault:
    """Something wrong with one target during ``[start_s, end_s)`` (seconds after midnight)."""

    kind: str
    target: str
    start_s: float
    end_s: float
    factor: float = 1.0
    """``slowdown``: latency multiplier; ``throttle_storm``: capacity multiplier."""
    probability: float = 0.0
    """``throttle_storm``: share of calls throttled on top; ``fast_errors``: share failed."""
    latency_ms: float = 15.0
    """``fast_errors``: how fast the failure comes back."""

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}, got {self.kind!r}")
        if not 0 <= self.start_s < self.end_s:
            raise ValueError(f"need 0 <= start < end, got {self.start_s}..{self.end_s} s")
        if not (math.isfinite(self.factor) and self.factor > 0):
            raise ValueError(f"factor must be > 0, got {self.factor}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"probability must be in [0, 1], got {self.probability}")
        if not self.latency_ms > 0:
            raise ValueError(f"latency_ms must be > 0, got {self.latency_ms}")


@dataclass(frozen=True, slots=True)
class TargetModel:
    """Scenario settings of one simulated target (defaults suit every pattern)."""

    ttft_share: float = 0.35
    reference_output_tokens: int = 300
    error_latency_ms: float = 30.0
    throttle_latency_ms: float = 40.0
    idle_cold_s: float = 600.0
    max_instances: int = 8
    target_utilization: float = 0.7
    scale_out_lag_s: float = 480.0
    scale_out_cooldown_s: float = 60.0
    scale_in_cooldown_s: float = 300.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.ttft_share <= 1.0:
            raise ValueError(f"ttft_share must be in [0, 1], got {self.ttft_share}")
        if self.reference_output_tokens < 1:
            raise ValueError("reference_output_tokens must be >= 1")
        for name in ("error_latency_ms", "throttle_latency_ms", "idle_cold_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.max_instances < 1 or not 0 < self.target_utilization <= 1:
            raise ValueError("max_instances must be >= 1 and target_utilization in (0, 1]")
        if self.scale_out_lag_s < 0:
            raise ValueError("scale_out_lag_s must be >= 0")


def multiplier_table(profile: LatencyProfile) -> list[float]:
    """Quantiles of the latency multiplier (median 1): lognormal body to p90, steeper
    lognormal tail beyond, fitted to the profile's p50/p90/p99."""
    p50 = max(profile.p50_ms, 1e-3)
    body = math.log(max(profile.p90_ms, p50) / p50) / _Z90
    tail = math.log(max(profile.p99_ms, profile.p90_ms) / max(profile.p90_ms, p50)) / (_Z99 - _Z90)
    normal = NormalDist()
    table = []
    for k in range(TABLE_SIZE):
        z = normal.inv_cdf((k + 0.5) / TABLE_SIZE)
        log_m = body * z if z <= _Z90 else body * _Z90 + tail * (z - _Z90)
        table.append(math.exp(log_m))
    return table


@dataclass(slots=True)
class Usage:
    """What one target did over a run."""

    attempts: int = 0
    ok: int = 0
    throttled: int = 0
    errors: int = 0
    timeouts: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    token_usd: float = 0.0
    fixed_usd: float = 0.0
    instance_seconds: float = 0.0
    max_instances: int = 0


class SimTarget:
    """One target's simulated state; see the module docstring."""

    __slots__ = (
        "_faults",
        "_salt",
        "cold_ms",
        "cold_prob",
        "committed",
        "concurrency",
        "current",
        "error_latency_ms",
        "hourly_usd",
        "idle_cold_ns",
        "in_flight",
        "index",
        "instance_hourly",
        "instances_min",
        "last_call_ns",
        "last_in_ns",
        "last_out_ns",
        "model",
        "mult",
        "name",
        "pattern",
        "pending",
        "price_in",
        "price_out",
        "req_depth",
        "req_last",
        "req_level",
        "req_rate",
        "rps_per_instance",
        "target",
        "throttle_latency_ms",
        "tick_calls",
        "tok_depth",
        "tok_last",
        "tok_level",
        "tok_rate",
        "tpot_ms",
        "ttft_ms",
        "usage",
    )

    def __init__(
        self,
        target: Target,
        index: int,
        model: TargetModel,
        faults: list[Fault],
        instances: int | None = None,
    ) -> None:
        self.target = target
        self.name = target.name
        self.index = index
        self.model = model
        self.pattern = target.pattern
        prior = target.prior
        self.ttft_ms = prior.p50_ms * model.ttft_share
        self.tpot_ms = prior.p50_ms * (1.0 - model.ttft_share) / model.reference_output_tokens
        self.mult = multiplier_table(prior)
        serverless = target.pattern in (Pattern.SAGEMAKER_SERVERLESS, Pattern.LAMBDA_ON_DEMAND)
        self.cold_prob = prior.cold_start_probability if serverless else 0.0
        self.cold_ms = prior.cold_start_ms if serverless else 0.0
        self.idle_cold_ns = round(model.idle_cold_s * NS_PER_S) if serverless else 0
        self.last_call_ns = -(10**18)  # never called: the first call starts cold
        self.error_latency_ms = model.error_latency_ms
        self.throttle_latency_ms = model.throttle_latency_ms
        self._faults = sorted(faults, key=lambda f: f.start_s)
        self._salt = (index * 0.7548776662466927) % 1.0
        pricing = target.pricing
        self.price_in = pricing.input_per_million_usd / 1e6
        self.price_out = pricing.output_per_million_usd / 1e6
        self.hourly_usd = pricing.hourly_usd
        capacity = target.capacity
        tpm = capacity.tokens_per_minute
        self.tok_rate = tpm / 60.0 / NS_PER_S if tpm else 0.0
        self.tok_depth = tpm * BURST_S / 60.0 if tpm else 0.0
        self.tok_level = self.tok_depth
        self.tok_last = 0
        self.concurrency = capacity.concurrency or 0
        self.in_flight = 0
        self.usage = Usage()
        if target.pattern is not Pattern.SAGEMAKER_REALTIME:
            instances = 0
        elif instances is None:
            instances = _instances(target)
        self.instances_min = instances
        self.current = instances
        self.pending: list[tuple[int, int]] = []
        self.last_out_ns = -(10**18)
        self.last_in_ns = -(10**18)
        self.tick_calls = 0
        rps = capacity.requests_per_second
        self.rps_per_instance = rps / instances if rps and instances else 0.0
        self.instance_hourly = self.hourly_usd / instances if instances else 0.0
        self.req_rate = 0.0
        self.req_depth = 0.0
        self.req_level = 0.0
        self.req_last = 0
        if rps:
            self._set_request_capacity(rps if not instances else None)
        self.committed = self.hourly_usd > 0

    @property
    def scales(self) -> bool:
        """A SageMaker real-time endpoint whose instance count auto-scales."""
        return self.pattern is Pattern.SAGEMAKER_REALTIME and self.rps_per_instance > 0

    def _set_request_capacity(self, rps: float | None = None) -> None:
        total = rps if rps is not None else self.rps_per_instance * self.current
        self.req_rate = total / NS_PER_S
        self.req_depth = max(1.0, total)
        self.req_level = min(self.req_level, self.req_depth) if self.req_last else self.req_depth

    # -- one attempt ----------------------------------------------------------------------

    def attempt(
        self,
        now: int,
        draw: float,
        k: int,
        tin: int,
        tout: int,
        commit: bool,
        *,
        max_tokens: int | None = None,
        cached_tokens: int = 0,
    ) -> tuple[int, float, float, str | None]:
        """``(outcome code, latency ms, ttft ms, error code)`` of a call starting at ``now``;
        ``k`` (``nth``) is how many earlier attempts of this message went to this target, so
        a message meets the same luck here whichever policy sent it. With ``commit`` the call
        takes capacity (a peek without it changes nothing but the buckets' refill clock).
        ``max_tokens`` and ``cached_tokens`` are accepted for the engine's contract."""
        u_evt = (draw * 104729.0 + k * 0.6180339887498949 + self._salt) % 1.0
        slow = 1.0
        capacity_factor = 1.0
        for fault in self._faults:
            if fault.start_s * NS_PER_S > now:
                break
            if now >= fault.end_s * NS_PER_S:
                continue
            kind = fault.kind
            if kind == OUTAGE:
                return ERROR, self.error_latency_ms * (0.5 + u_evt), 0.0, "ServiceUnavailable"
            if kind == FAST_ERRORS:
                if u_evt < fault.probability:
                    return ERROR, fault.latency_ms * (0.5 + u_evt), 0.0, "InternalServerException"
            elif kind == THROTTLE_STORM:
                capacity_factor *= fault.factor
                if u_evt < fault.probability:
                    return self._throttled(u_evt)
            else:
                slow *= fault.factor
        if self.tok_rate:
            level = self.tok_level + (now - self.tok_last) * self.tok_rate * capacity_factor
            depth = self.tok_depth * capacity_factor
            level = min(level, depth)
            self.tok_level = level
            self.tok_last = now
            need = tin + tout
            if level < need:
                return self._throttled(u_evt)
            if commit:
                self.tok_level = level - need
        if self.req_rate:
            level = self.req_level + (now - self.req_last) * self.req_rate * capacity_factor
            level = min(level, self.req_depth * capacity_factor)
            self.req_level = level
            self.req_last = now
            if level < 1.0:
                return self._throttled(u_evt)
            if commit:
                self.req_level = level - 1.0
                self.tick_calls += 1
        if self.concurrency and self.in_flight >= self.concurrency:
            return self._throttled(u_evt)
        u_lat = (draw * 7919.0 + k * 0.41421356237309503 + self._salt) % 1.0
        mult = self.mult[int(u_lat * TABLE_SIZE)] * slow
        ttft = self.ttft_ms * mult
        latency = ttft + self.tpot_ms * tout * mult
        if self.cold_prob or self.idle_cold_ns:
            u_cold = (draw * 15485863.0 + k * 0.2360679774997897) % 1.0
            if u_cold < self.cold_prob or now - self.last_call_ns >= self.idle_cold_ns:
                ttft += self.cold_ms
                latency += self.cold_ms
            if commit:
                self.last_call_ns = now
        if commit and self.concurrency:
            self.in_flight += 1
        return OK, latency, ttft, None

    def _throttled(self, u: float) -> tuple[int, float, float, str | None]:
        return THROTTLED, self.throttle_latency_ms * (0.5 + u), 0.0, "ThrottlingException"

    def finished(
        self,
        now_ns: int | None = None,
        tin: int = 0,
        tout: int = 0,
        max_tokens: int | None = None,
        code: int = OK,
    ) -> None:
        """An admitted call is over (answered, or abandoned at ``now_ns``): free its
        concurrency slot. The arguments let a model settle what the call reserved."""
        if self.concurrency and self.in_flight:
            self.in_flight -= 1

    def earliest_answer(
        self,
        now_ns: int,
        draw: float,
        tin: int,
        tout: int,
        *,
        horizon_ms: float,
        attempts: int = 1,
        max_tokens: int | None = None,
        cached_tokens: int = 0,
    ) -> tuple[float, float] | None:
        """A lower bound of (ms until the full answer, ms until the first token) over every
        attempt ``nth < attempts`` of this message started in ``[now_ns, now_ns +
        horizon_ms]``, ignoring load (no queue, no quota, warm); ``None`` when none of them
        can answer. Pure: what a hindsight bound asks, never more than a real attempt gets.

        The faults are piecewise constant in time, so it is enough to look at the start of
        every piece the horizon overlaps: a later start in a piece finishes later."""
        end_ns = now_ns + round(horizon_ms * NS_PER_MS)
        starts = [now_ns]
        for fault in self._faults:
            for edge in (fault.start_s * NS_PER_S, fault.end_s * NS_PER_S):
                if now_ns < edge <= end_ns:
                    starts.append(math.ceil(edge))
        best_full = best_ttft = math.inf
        for start in starts:
            offset_ms = (start - now_ns) / NS_PER_MS
            for nth in range(attempts):
                luck = self._luck(start, draw, nth)
                if luck is None:
                    continue
                full, ttft = self._service(draw, nth, tout, luck)
                best_full = min(best_full, offset_ms + full)
                best_ttft = min(best_ttft, offset_ms + ttft)
        if best_full == math.inf:
            return None
        return best_full, best_ttft

    def _luck(self, now: int, draw: float, nth: int) -> float | None:
        """The latency factor of the faults active at ``now`` for attempt ``nth`` (slowdowns
        multiplied), or ``None`` when they fail it whatever the load."""
        u_evt = (draw * 104729.0 + nth * 0.6180339887498949 + self._salt) % 1.0
        slow = 1.0
        for fault in self._faults:
            if fault.start_s * NS_PER_S > now:
                break
            if now >= fault.end_s * NS_PER_S:
                continue
            if fault.kind == OUTAGE or (fault.kind == FAST_ERRORS and u_evt < fault.probability):
                return None
            if fault.kind == SLOWDOWN:
                slow *= fault.factor
        return slow

    def _service(self, draw: float, nth: int, tout: int, slow: float) -> tuple[float, float]:
        """(latency, ttft) in ms of attempt ``nth`` on a warm, idle target."""
        u_lat = (draw * 7919.0 + nth * 0.41421356237309503 + self._salt) % 1.0
        mult = self.mult[int(u_lat * TABLE_SIZE)] * slow
        ttft = self.ttft_ms * mult
        return ttft + self.tpot_ms * tout * mult, ttft

    def bill(self, tin: int, tout: int) -> float:
        cost = tin * self.price_in + tout * self.price_out
        usage = self.usage
        usage.token_usd += cost
        usage.input_tokens += tin
        usage.output_tokens += tout
        return cost

    # -- time -----------------------------------------------------------------------------

    def tick(self, now: int) -> None:
        """Once a virtual minute: bill instance time, bring launched instances into service,
        and run target tracking (seed section 4.2: scale out fast, scale in slowly)."""
        if not self.scales:
            return
        model = self.model
        usage = self.usage
        running = self.current + sum(count for _, count in self.pending)
        usage.instance_seconds += running * TICK_NS / NS_PER_S
        usage.max_instances = max(usage.max_instances, running)
        ready = [p for p in self.pending if p[0] <= now]
        if ready:
            self.pending = [p for p in self.pending if p[0] > now]
            self.current += sum(count for _, count in ready)
            self._set_request_capacity()
        rate = self.tick_calls / (TICK_NS / NS_PER_S)
        self.tick_calls = 0
        desired = math.ceil(rate / (self.rps_per_instance * model.target_utilization))
        desired = min(max(desired, self.instances_min), model.max_instances)
        launching = sum(count for _, count in self.pending)
        if (
            desired > self.current + launching
            and now - self.last_out_ns >= model.scale_out_cooldown_s * NS_PER_S
        ):
            lag = round(model.scale_out_lag_s * NS_PER_S)
            self.pending.append((now + lag, desired - self.current - launching))
            self.last_out_ns = now
        elif (
            desired < self.current
            and not launching
            and now - self.last_out_ns >= model.scale_in_cooldown_s * NS_PER_S
            and now - self.last_in_ns >= model.scale_in_cooldown_s * NS_PER_S
        ):
            self.current = desired
            self.last_in_ns = now
            self._set_request_capacity()

    def close(self, duration_s: float) -> None:
        """Fix the fixed costs of a run of ``duration_s`` seconds."""
        usage = self.usage
        if self.scales:
            usage.fixed_usd = usage.instance_seconds / 3600.0 * self.instance_hourly
        else:
            usage.fixed_usd = self.hourly_usd * duration_s / 3600.0
            usage.max_instances = self.current


def _instances(target: Target) -> int:
    """Instances behind a SageMaker real-time endpoint when the config's ``instances`` count
    is not given to :meth:`Fleet.build`: its capacity over the seed's 8 req/s of an
    ``ml.g5.2xlarge``."""
    rps = target.capacity.requests_per_second
    return max(1, round(rps / 8.0)) if rps else 0


@dataclass(slots=True)
class Fleet:
    """Every simulated target, by router target name."""

    targets: list[SimTarget] = field(default_factory=list)
    by_name: dict[str, SimTarget] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        targets: tuple[Target, ...],
        models: dict[str, TargetModel],
        faults: tuple[Fault, ...] | list[Fault],
        instances: dict[str, int] | None = None,
    ) -> Fleet:
        """A fresh fleet (every run gets its own: capacity and instances are state)."""
        fleet = cls()
        for index, target in enumerate(targets):
            sim = SimTarget(
                target,
                index,
                models.get(target.name, TargetModel()),
                [f for f in faults if f.target == target.name],
                (instances or {}).get(target.name),
            )
            fleet.targets.append(sim)
            fleet.by_name[target.name] = sim
        return fleet

    def tick(self, now: int) -> None:
        for target in self.targets:
            target.tick(now)

    def close(self, duration_s: float) -> None:
        for target in self.targets:
            target.close(duration_s)
