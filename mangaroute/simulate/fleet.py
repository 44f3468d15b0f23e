"""The simulated deployment targets: latency, capacity, queues, quotas, faults and price.

One :class:`SimTarget` per router target, built from the target's config (prior profile,
capacity, prices) and the scenario's fleet settings. Two physics (``TargetModel.physics``):

``published`` (the default; every figure and its source is in docs/simulate.md, "Model"):

* **Time to first token** = (``ttft_ms`` + ``ttft_per_1k_input_ms`` per 1,000 uncached input
  tokens) x a heavy-tailed multiplier shaped like the prior profile (median 1), plus a
  cold start where the pattern has them. **Output** takes ``output tokens / tokens_per_s``
  x its own lognormal multiplier (``tps_sigma``). Medians come from published Bedrock benchmarks.
* **Bedrock quotas as enforced**: requests per minute and tokens per minute as buckets
  (``BURST_S`` deep); a call reserves ``input + max_tokens`` when it starts and is settled
  at the end (:meth:`SimTarget.finished`) to ``uncached input + output x burndown``; a daily
  token quota (the per-minute quota x 1,440 unless set). A call that does not fit is a
  ``ThrottlingException`` one round trip later (``throttle_latency_ms``).
* **SageMaker real-time endpoints queue**: each instance has ``slots`` concurrent requests;
  a request waits for the first free slot and fails (``ModelError``) once its wait passes the
  60 s invocation timeout - it is never rejected at once. A request the orchestrator gave up
  on keeps its slot until the container finishes it.
* A **baseline error rate** per call (``error_rate``), independent of load.
* **Prompt caching**: cached input tokens skip prefill (no input-length term), are billed at
  ``cache_read_price`` x the input price and do not count towards the quota once settled.

``seed-profiles`` (the seed's whole-call profiles, as before): latency = time to first token
plus a time per output token, scaled by a multiplier fitted to the prior's p50/p90/p99, so a
``reference_output_tokens`` answer reproduces the seed's profile; ``ttft_share`` of the median
is time to first token; requests per second as a bucket one second deep (instant 429s).

Both: **cross-Region inference profiles** (a model id like ``apac.anthropic...``) add
``cross_region_ms`` to the first token; **cold starts** (SageMaker serverless, Lambda: the
prior's probability per call, and always after ``idle_cold_s`` without a call);
**concurrency** as calls in flight;
**SageMaker auto-scaling** (seed section 4: target tracking on invocations per instance every
minute, cool-downs 60 s out / 300 s in, new instances in service ``scale_out_lag_s`` after
launch, billed from launch); **faults** (windows of the day): ``outage`` (every call fails
fast), ``throttle_storm`` (capacity x ``factor`` and a throttle probability), ``quota_cut``
(capacity x ``factor``: the account's quota lowered), ``slowdown`` (latency x ``factor``),
``fast_errors`` (a share of calls fail in a few ms); **price**: tokens of answered calls (and
of calls the orchestrator gave up on: the model still generated them), model units for the
whole day, instance-hours as the endpoint scaled.

Every random draw derives from the message's one uniform number (see
:mod:`mangaroute.simulate.traffic`), the attempt number on this target and the target, so
the same message meets the same luck on the same target whichever policy sent it there.
The per-attempt code is on the simulator's hot loop: table lookups and arithmetic only.
"""

from __future__ import annotations

import heapq
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

_TABLE_BITS = TABLE_SIZE.bit_length() - 1
_TABLE_MASK = TABLE_SIZE - 1
_SPLIT = float(TABLE_SIZE * TABLE_SIZE)
"""A latency draw scaled by this: bits for two table indices, the fraction left over for an
error draw (~40 bits of fraction remain after the hash: ~16 for it; an error is a fraction
within ``error_rate`` of 1, so a round test draw such as 0.5 is not one)."""
if TABLE_SIZE != 1 << _TABLE_BITS:
    raise ImportError("TABLE_SIZE must be a power of two")

_Z90 = NormalDist().inv_cdf(0.90)
_Z99 = NormalDist().inv_cdf(0.99)

OUTAGE, THROTTLE_STORM, SLOWDOWN, FAST_ERRORS, QUOTA_CUT = (
    "outage",
    "throttle_storm",
    "slowdown",
    "fast_errors",
    "quota_cut",
)
FAULT_KINDS = (OUTAGE, THROTTLE_STORM, SLOWDOWN, FAST_ERRORS, QUOTA_CUT)

PUBLISHED, SEED_PROFILES = "published", "seed-profiles"
PHYSICS = (PUBLISHED, SEED_PROFILES)
"""The two target models (see the module docstring)."""

INVOCATION_TIMEOUT_MS = 60_000.0
"""SageMaker InvokeEndpoint: the container must answer within 60 s (AWS API reference)."""
CROSS_REGION_MS = 60.0
"""Added latency of a cross-Region inference profile (none published: see the docs)."""
CROSS_REGION_PREFIXES = ("us.", "eu.", "apac.", "jp.", "au.", "ca.", "us-gov.", "global.")
"""Model ids of Bedrock's system-defined cross-Region inference profiles start with these."""


@dataclass(frozen=True, slots=True)
class Physics:
    """Published medians for one kind of target (docs/simulate.md, "Model", cites each)."""

    ttft_ms: float
    tokens_per_s: float


PUBLISHED_DEFAULTS: dict[str, Physics] = {
    "haiku": Physics(ttft_ms=750.0, tokens_per_s=65.0),
    "sonnet": Physics(ttft_ms=760.0, tokens_per_s=60.0),
    "custom": Physics(ttft_ms=300.0, tokens_per_s=45.0),
}
"""By the target's tier: Haiku from Artificial Analysis' Bedrock measurements of Claude 3.5
Haiku, Sonnet from its Claude 3 Sonnet on Bedrock; ``custom`` (a fine-tuned model on one
SageMaker GPU instance) has no published figure - see the docs for how it was chosen."""


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
    """Scenario settings of one simulated target (defaults suit every pattern; ``None``
    means "from the published defaults for the target's tier and pattern")."""

    physics: str = PUBLISHED
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
    ttft_ms: float | None = None
    ttft_per_1k_input_ms: float = 100.0
    tokens_per_s: float | None = None
    tps_sigma: float = 0.15
    error_rate: float = 0.0005
    requests_per_minute: float | None = None
    daily_tokens: float | None = None
    burndown: float | None = None
    cross_region_ms: float | None = None
    slots_per_instance: int | None = None
    cache_read_price: float = 0.1

    def __post_init__(self) -> None:
        if self.physics not in PHYSICS:
            raise ValueError(f"physics must be one of {', '.join(PHYSICS)}, got {self.physics!r}")
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
        for name in ("ttft_ms", "tokens_per_s", "requests_per_minute", "daily_tokens"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be > 0, got {value}")
        for name in ("ttft_per_1k_input_ms", "tps_sigma", "cache_read_price"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.error_rate < 1.0:
            raise ValueError(f"error_rate must be in [0, 1), got {self.error_rate}")
        if self.burndown is not None and not self.burndown >= 1:
            raise ValueError(f"burndown must be >= 1, got {self.burndown}")
        if self.cross_region_ms is not None and not self.cross_region_ms >= 0:
            raise ValueError(f"cross_region_ms must be >= 0, got {self.cross_region_ms}")
        if self.slots_per_instance is not None and self.slots_per_instance < 1:
            raise ValueError("slots_per_instance must be >= 1")


def default_burndown(model_id: str) -> float:
    """Output-token burndown rate of a Bedrock model towards its quotas: 5 for Claude
    Sonnet 4 and Opus 4 (docs/simulate.md cites it), else 1 - set ``burndown`` in the
    scenario for another model that has one."""
    lowered = model_id.lower()
    fives = ("claude-sonnet-4", "claude-opus-4")
    return 5.0 if any(name in lowered for name in fives) else 1.0


def is_cross_region(model_id: str) -> bool:
    """A system-defined cross-Region inference profile (``apac.anthropic...``)."""
    return model_id.lower().startswith(CROSS_REGION_PREFIXES)


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


def lognormal_table(sigma: float) -> list[float]:
    """Quantiles of a lognormal multiplier with median 1 and log-spread ``sigma``."""
    normal = NormalDist()
    return [math.exp(sigma * normal.inv_cdf((k + 0.5) / TABLE_SIZE)) for k in range(TABLE_SIZE)]


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
        "burndown",
        "cache_read_price",
        "cold_ms",
        "cold_prob",
        "committed",
        "concurrency",
        "cross_region_ms",
        "current",
        "daily_left",
        "error_latency_ms",
        "error_rate",
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
        "published",
        "queues",
        "req_depth",
        "req_last",
        "req_level",
        "req_rate",
        "reserves",
        "rps_per_instance",
        "slots",
        "slots_per_instance",
        "target",
        "throttle_latency_ms",
        "tick_calls",
        "tok_depth",
        "tok_last",
        "tok_level",
        "tok_rate",
        "tpot_ms",
        "tps_mult",
        "ttft_in_ms",
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
        self.published = model.physics == PUBLISHED
        self.mult = multiplier_table(prior)
        if self.published:
            physics = PUBLISHED_DEFAULTS.get(target.tier, PUBLISHED_DEFAULTS["sonnet"])
            self.ttft_ms = model.ttft_ms if model.ttft_ms is not None else physics.ttft_ms
            tps = model.tokens_per_s if model.tokens_per_s is not None else physics.tokens_per_s
            self.tpot_ms = 1000.0 / tps
            self.ttft_in_ms = model.ttft_per_1k_input_ms / 1000.0
            self.tps_mult = lognormal_table(model.tps_sigma)
            self.error_rate = model.error_rate
        else:
            self.ttft_ms = prior.p50_ms * model.ttft_share
            self.tpot_ms = prior.p50_ms * (1.0 - model.ttft_share) / model.reference_output_tokens
            self.ttft_in_ms = 0.0
            self.tps_mult = self.mult
            self.error_rate = 0.0
        cross = model.cross_region_ms  # a property of the target, in either physics
        if cross is None:
            cross = CROSS_REGION_MS if is_cross_region(target.model_id) else 0.0
        self.cross_region_ms = cross
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
        self.cache_read_price = model.cache_read_price if self.published else 1.0
        self.hourly_usd = pricing.hourly_usd
        capacity = target.capacity
        tpm = capacity.tokens_per_minute
        self.tok_rate = tpm / 60.0 / NS_PER_S if tpm else 0.0
        self.tok_depth = tpm * BURST_S / 60.0 if tpm else 0.0
        self.tok_level = self.tok_depth
        self.tok_last = 0
        on_demand = self.published and target.pattern is Pattern.BEDROCK_ON_DEMAND
        self.reserves = on_demand and bool(tpm)
        self.burndown = (
            (model.burndown or default_burndown(target.model_id)) if self.reserves else 1.0
        )
        daily = model.daily_tokens or (tpm * 1440.0 if tpm else 0.0)
        self.daily_left = daily if on_demand and daily else math.inf
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
        self.queues = self.published and bool(instances)
        self.slots: list[int] = []
        self.slots_per_instance = 0
        if self.queues:
            per = model.slots_per_instance
            if per is None:  # Little's law: the seed's req/s per instance x a median call
                median_s = (self.ttft_ms + model.reference_output_tokens * self.tpot_ms) / 1000
                per = max(1, round((self.rps_per_instance or 8.0) * median_s))
            self.slots_per_instance = per
            self.slots = [0] * (per * instances)
        self.req_rate = 0.0
        self.req_depth = 0.0
        self.req_level = 0.0
        self.req_last = 0
        if rps and not self.queues:
            self._set_request_capacity(rps if not instances else None)
        elif on_demand and model.requests_per_minute:
            self._set_request_capacity(model.requests_per_minute / 60.0, BURST_S)
        self.committed = self.hourly_usd > 0

    @property
    def scales(self) -> bool:
        """A SageMaker real-time endpoint whose instance count auto-scales."""
        return self.pattern is Pattern.SAGEMAKER_REALTIME and self.rps_per_instance > 0

    def _set_request_capacity(self, rps: float | None = None, depth_s: float = 1.0) -> None:
        if self.queues:
            self._resize_slots()
            return
        total = rps if rps is not None else self.rps_per_instance * self.current
        self.req_rate = total / NS_PER_S
        self.req_depth = max(1.0, total * depth_s)
        self.req_level = min(self.req_level, self.req_depth) if self.req_last else self.req_depth

    def _resize_slots(self) -> None:
        """Instances came or went: as many slots as instances x slots each (a removed
        instance takes its busiest slots with it)."""
        want = self.current * self.slots_per_instance
        slots = sorted(self.slots)[:want]
        slots.extend([0] * (want - len(slots)))
        heapq.heapify(slots)
        self.slots = slots

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
        a message meets the same luck here whichever policy sent it. The latency includes
        any wait for a SageMaker slot. With ``commit`` the call takes capacity: quota
        (``input + max_tokens`` reserved where Bedrock reserves, settled by
        :meth:`finished`), a slot, a place in flight; without, it only looks."""
        slow = 1.0
        capacity_factor = 1.0
        if self._faults:
            u_evt = (draw * 104729.0 + k * 0.6180339887498949 + self._salt) % 1.0
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
                        latency = fault.latency_ms * (0.5 + u_evt)
                        return ERROR, latency, 0.0, "InternalServerException"
                elif kind == THROTTLE_STORM:
                    capacity_factor *= fault.factor
                    if u_evt < fault.probability:
                        return self._throttled(draw, k)
                elif kind == QUOTA_CUT:
                    capacity_factor *= fault.factor
                else:
                    slow *= fault.factor
        if self.req_rate:
            level = self.req_level + (now - self.req_last) * self.req_rate * capacity_factor
            level = min(level, self.req_depth * capacity_factor)
            self.req_level = level
            self.req_last = now
            if level < 1.0:
                return self._throttled(draw, k)
        need = 0.0
        if self.tok_rate:
            level = self.tok_level + (now - self.tok_last) * self.tok_rate * capacity_factor
            level = min(level, self.tok_depth * capacity_factor)
            self.tok_level = level
            self.tok_last = now
            if max_tokens is not None and self.reserves:
                need = tin + max_tokens
            else:
                need = tin + tout * self.burndown
            if level < need or need > self.daily_left:
                return self._throttled(draw, k)
        if self.concurrency and self.in_flight >= self.concurrency:
            return self._throttled(draw, k)
        # one uniform draw, three independent uses: its top bits pick the first-token
        # multiplier, the next ones the output rate's, the rest decide a baseline error
        scaled = ((draw * 7919.0 + k * 0.41421356237309503 + self._salt) % 1.0) * _SPLIT
        bits = int(scaled)
        if self.error_rate and bits + 1.0 - scaled <= self.error_rate:
            latency = self.error_latency_ms * (0.5 + (bits + 1.0 - scaled) / self.error_rate)
            return ERROR, latency, 0.0, "InternalServerException"
        mult = self.mult[bits >> _TABLE_BITS] * slow
        ttft = (self.ttft_ms + self.ttft_in_ms * (tin - cached_tokens)) * mult
        if self.published:
            latency = ttft + self.tpot_ms * tout * self.tps_mult[bits & _TABLE_MASK] * slow
        else:
            latency = ttft + self.tpot_ms * tout * mult
        if self.cross_region_ms:
            ttft += self.cross_region_ms
            latency += self.cross_region_ms
        if self.cold_prob or self.idle_cold_ns:
            u_cold = (draw * 15485863.0 + k * 0.2360679774997897) % 1.0
            if u_cold < self.cold_prob or now - self.last_call_ns >= self.idle_cold_ns:
                ttft += self.cold_ms
                latency += self.cold_ms
            if commit:
                self.last_call_ns = now
        if self.queues:
            slots = self.slots
            wait_ms = (slots[0] - now) / NS_PER_MS if slots[0] > now else 0.0
            if wait_ms + latency > INVOCATION_TIMEOUT_MS:
                return ERROR, INVOCATION_TIMEOUT_MS, 0.0, "ModelError"
            ttft += wait_ms
            latency += wait_ms
            if commit:
                heapq.heapreplace(slots, now + int(latency * NS_PER_MS))
        if commit:
            if need:
                self.tok_level -= need
                self.daily_left -= need
            if self.req_rate:
                self.req_level -= 1.0
            if self.rps_per_instance:
                self.tick_calls += 1
            if self.concurrency:
                self.in_flight += 1
        return OK, latency, ttft, None

    def _throttled(self, draw: float, k: int) -> tuple[int, float, float, str | None]:
        """A 429 one round trip later (the round trip varies +-50 % with the draw)."""
        u = (draw * 104729.0 + k * 0.6180339887498949 + self._salt) % 1.0
        return THROTTLED, self.throttle_latency_ms * (0.5 + u), 0.0, "ThrottlingException"

    def finished(
        self,
        now_ns: int | None = None,
        tin: int = 0,
        tout: int = 0,
        max_tokens: int | None = None,
        code: int = OK,
        *,
        cached_tokens: int = 0,
    ) -> None:
        """An admitted call is over (answered, or abandoned at ``now_ns`` - the model still
        generated its ``tout`` tokens): free its place in flight and settle its quota
        reservation of ``input + max_tokens`` to what Bedrock counts, ``uncached input +
        output x burndown`` (cache reads are released at settlement)."""
        if self.concurrency and self.in_flight:
            self.in_flight -= 1
        if self.reserves and max_tokens is not None:
            refund = tin + max_tokens - (tin - cached_tokens + tout * self.burndown)
            self.tok_level = min(self.tok_level + refund, self.tok_depth)
            self.daily_left += refund

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
                full, ttft = self._service(draw, nth, tin - cached_tokens, tout, luck)
                best_full = min(best_full, offset_ms + full)
                best_ttft = min(best_ttft, offset_ms + ttft)
        if best_full == math.inf:
            return None
        return best_full, best_ttft

    def _luck(self, now: int, draw: float, nth: int) -> float | None:
        """The latency factor of the faults active at ``now`` for attempt ``nth`` (slowdowns
        multiplied), or ``None`` when faults or the baseline error rate fail it whatever
        the load."""
        scaled = ((draw * 7919.0 + nth * 0.41421356237309503 + self._salt) % 1.0) * _SPLIT
        if int(scaled) + 1.0 - scaled <= self.error_rate:
            return None
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

    def _service(
        self, draw: float, nth: int, uncached: int, tout: int, slow: float
    ) -> tuple[float, float]:
        """(latency, ttft) in ms of attempt ``nth`` on a warm, idle target (the same
        arithmetic as :meth:`attempt`; a test holds them equal)."""
        bits = int(((draw * 7919.0 + nth * 0.41421356237309503 + self._salt) % 1.0) * _SPLIT)
        mult = self.mult[bits >> _TABLE_BITS] * slow
        ttft = (self.ttft_ms + self.ttft_in_ms * uncached) * mult
        if self.published:
            latency = ttft + self.tpot_ms * tout * self.tps_mult[bits & _TABLE_MASK] * slow
        else:
            latency = ttft + self.tpot_ms * tout * mult
        return latency + self.cross_region_ms, ttft + self.cross_region_ms

    def bill(self, tin: int, tout: int, cached_tokens: int = 0) -> float:
        """What the call's tokens cost; cached input tokens at the cache-read price."""
        cost = (tin - cached_tokens * (1.0 - self.cache_read_price)) * self.price_in
        cost += tout * self.price_out
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
