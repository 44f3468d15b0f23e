"""The reference every policy is scored against: a bound no online policy can beat.

Two linear programs over the day, solved by HiGHS (through ``scipy.optimize.linprog``):

1. **answers** - the most messages any policy could answer within the SLO (full answer; and,
   in a second run, first token), and
2. **cost** - the least any policy could pay for that many answers within the SLO.

Each is a *relaxation*: every way a real policy runs the day is a feasible point of the LP
with an objective at least as good for the policy, so the LP's optimum is out of reach.
What is relaxed, and why that keeps it a bound:

* **Hindsight feasibility.** A message may count on a target only if
  :meth:`SimTarget.earliest_answer` - a pure lower bound, over every attempt ``nth <
  attempts`` started anywhere in the time left, of how soon that target could answer it,
  ignoring all load - is within the SLO. Any real answer within the SLO took at least that
  long, so it is counted. Nothing else is asked of a message: failed attempts, other
  targets tried first, hedges and abandoned calls are free in time and in capacity.
* **Capacity per window.** Messages are grouped by the window (``window_s``) they arrive
  in; an attempt for one of them starts within ``[t0, t1 + cutoff]``. A target with a
  tokens-per-minute bucket (rate ``r``, depth ``D``, both times the largest capacity factor
  ``f`` a throttle storm or quota cut allows in that interval) admits at most ``f (D + r
  (window_s + cutoff))`` tokens in it where a call is charged when it starts. A target that
  reserves ``input + max_tokens`` (Bedrock on-demand, on traffic that records
  ``max_tokens``) and settles at the end gets one limit for the whole run instead, ``f (D + r
  (run + cutoff))``: returned reservations can land in any window. A message counts its
  *uncached* input plus output x the target's burndown -
  what Bedrock settles, never more. Request buckets (requests per minute; SageMaker
  instances under the seed's physics, at the most instances auto-scaling allows, all in
  service and free) are bounded the same way. Not constrained at all: concurrency, SageMaker
  queues (a queue admits everything; its wait shows in the earliest answer only as far as
  the model's pure bound does), daily token quotas, throttle probabilities, reservations
  larger than the bucket.
* **Aggregation.** Messages of one window, class, feasibility signature (which targets can
  answer it in time, full answer and first token) and token bin (input and output tokens,
  each in bins ``bin_ratio`` wide) form a group; every member is charged the *smallest*
  input and output token counts of its group, in capacity and in price, so grouping only
  lowers what an answer costs and needs.
* **Cost.** Only answers within the SLO are priced (``SimTarget.bill`` of the group's
  smallest uncached input and output tokens on the target that answers, cached input
  free - the real bill is never lower); every other message is free. Hourly
  prices (provisioned model units, the endpoint's minimum instances) are paid whatever
  happens: a constant floor.

The LP is fractional (a group may be split across targets in any proportion); an integer
answer count is its floor. A policy that beats it is a simulator bug, and
``tests/simulate/test_bound.py`` fails on one.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mangaroute.core.errors import MangarouteError
from mangaroute.core.targets import Pattern
from mangaroute.simulate.fleet import (
    NS_PER_S,
    QUOTA_CUT,
    THROTTLE_STORM,
    Fault,
    Fleet,
    SimTarget,
)
from mangaroute.simulate.traffic import Traffic

try:  # scipy is the simulator's extra: pip install 'mangaroute[simulate]'
    import numpy as np
    from scipy.optimize import linprog
    from scipy.sparse import coo_matrix, vstack
except ImportError as _missing:  # pragma: no cover - exercised only without the extra
    _IMPORT_ERROR: ImportError | None = _missing
else:
    _IMPORT_ERROR = None

__all__ = [
    "BIN_RATIO",
    "WINDOW_S",
    "Bound",
    "BoundProblem",
    "BoundUnavailable",
    "Demand",
    "Lane",
    "Limits",
    "aggregate",
    "blind_first_tokens",
    "compute_bound",
    "concatenate",
    "feasibility",
    "lanes_of",
    "require_solver",
    "solve",
]

WINDOW_S = 300.0
"""Capacity windows: 5 minutes (288 a day) keep the day's LP at a few ten thousand groups."""
BIN_RATIO = 1.25
"""Token bins: each 25 % wide, so a member is charged at least 80 % of its own tokens."""
TOLERANCE = 1e-7
"""Relative slack of the cost LP's coverage constraint (HiGHS's feasibility tolerance)."""
LAGRANGE = 0.5
"""The dearest answer's weight against one answer in the cost LP's first objective (then
/ 10 until the optimum keeps every answer asked for)."""
COST_MARGIN = 1e-5
"""The cost bound is lowered by this share for the solvers' tolerances (measured on a
50k-message bad day: the Lagrangian within 1.1e-6 of the exact constrained optimum, both
within HiGHS's 1e-7 feasibility tolerance)."""


class BoundUnavailable(MangarouteError, RuntimeError):
    """scipy (HiGHS) is not installed: the bound needs the simulator's extra (the CLI prints
    this and exits 2, as for a bad option)."""


def require_solver() -> None:
    """Raise :class:`BoundUnavailable` when scipy is missing."""
    if _IMPORT_ERROR is not None:
        raise BoundUnavailable(
            "the bound needs scipy (the HiGHS LP solver): pip install 'mangaroute[simulate]', "
            f"or run with --no-bound ({_IMPORT_ERROR})"
        )


@dataclass(frozen=True, slots=True)
class Lane:
    """One target as the LP sees it: what a window lets it admit and what an answer costs."""

    name: str
    tokens: Sequence[float] | None
    """Tokens admittable per window (``None``: unbounded)."""
    requests: Sequence[float] | None
    """Requests admittable per window (``None``: unbounded)."""
    price: Callable[[int, int], float]
    """USD of an answer with these (uncached) input and output tokens."""
    output_weight: float = 1.0
    """What an output token counts against the tokens per window (Bedrock's burndown)."""
    run_tokens: float | None = None
    """Tokens admittable over the whole run (``None``: unbounded) - the only token limit of
    a target that reserves ``max_tokens`` (see :func:`lanes_of`)."""


@dataclass(slots=True)
class Demand:
    """The day, aggregated: one entry per group (see the module docstring)."""

    window: Any
    """Window index per group (numpy int array)."""
    full_mask: Any
    """Bit ``j`` set: target ``j`` can give the full answer within the SLO."""
    first_mask: Any
    """Bit ``j`` set: target ``j`` can give the first token within the first-token SLO."""
    count: Any
    input_tokens: Any
    """The smallest uncached input tokens of the group's members."""
    output_tokens: Any
    windows: int
    messages: int
    feasible_full: int = 0
    """Messages some target could answer within the SLO, whatever the load."""
    feasible_first: int = 0
    unanswerable: int = 0
    """Messages no target can answer within the cutoff whatever the load: every policy
    fails at least these."""


@dataclass(frozen=True, slots=True)
class Bound:
    """The bound's figures for one day (see the module docstring)."""

    messages: int
    within_slo: int
    """No policy answers more messages within the SLO (full answer)."""
    within_first_token_slo: int
    """No policy gets more first tokens within the first-token SLO."""
    token_usd: float
    """No policy answering ``within_slo`` messages within the SLO (on a streamed day:
    getting ``within_first_token_slo`` first tokens within theirs) pays less for tokens."""
    fixed_usd: float
    """Hourly prices every policy pays (model units, minimum instances)."""
    feasible_slo: int
    """Messages some target could answer within the SLO if load did not matter."""
    unanswerable: int
    """A floor on every policy's failures: no target answers these within the cutoff."""
    groups: int
    variables: int
    window_s: float
    hindsight_s: float
    solve_s: float
    cpu_s: float = 0.0
    """CPU time of the whole bound (hindsight in every process, aggregation, LPs)."""

    @property
    def total_usd(self) -> float:
        return self.token_usd + self.fixed_usd


@dataclass(slots=True)
class BoundProblem:
    """The LPs over one aggregated day; :meth:`max_answers` and :meth:`min_token_usd` solve
    them (each call is one HiGHS solve)."""

    demand: Demand
    lanes: list[Lane]
    solve_s: float = 0.0
    _built: dict[bool, tuple[Any, ...]] = field(default_factory=dict)

    def _matrix(self, first_token: bool) -> tuple[Any, ...]:
        """Variables (group, lane) where the lane is feasible for the group, the capacity and
        group rows over them, and each variable's price."""
        if first_token in self._built:
            return self._built[first_token]
        demand = self.demand
        mask = demand.first_mask if first_token else demand.full_mask
        groups_of, lanes_of_ = [], []
        for j in range(len(self.lanes)):
            chosen = np.flatnonzero((mask >> j) & 1)
            groups_of.append(chosen)
            lanes_of_.append(np.full(chosen.size, j, dtype=np.int64))
        group = np.concatenate(groups_of) if groups_of else np.zeros(0, dtype=np.int64)
        lane = np.concatenate(lanes_of_) if lanes_of_ else np.zeros(0, dtype=np.int64)
        n_vars = group.size
        tin = demand.input_tokens.astype(np.float64)
        tout = demand.output_tokens.astype(np.float64)
        rows, cols, values, rhs = [], [], [], []
        n_groups = demand.count.size
        rows.append(group)
        cols.append(np.arange(n_vars))
        values.append(np.ones(n_vars))
        rhs.append(demand.count.astype(np.float64))
        next_row = n_groups
        for j, spec in enumerate(self.lanes):
            on = lane == j
            tokens = tin + tout * spec.output_weight
            for caps, weight in ((spec.tokens, tokens), (spec.requests, None)):
                if caps is None:
                    continue
                index = np.flatnonzero(on)
                windows = demand.window[group[index]]
                rows.append(next_row + windows)
                cols.append(index)
                values.append(weight[group[index]] if weight is not None else np.ones(index.size))
                rhs.append(np.asarray(caps, dtype=np.float64))
                next_row += demand.windows
        for j, spec in enumerate(self.lanes):
            if spec.run_tokens is None:
                continue
            index = np.flatnonzero(lane == j)
            rows.append(np.full(index.size, next_row, dtype=np.int64))
            cols.append(index)
            values.append((tin + tout * spec.output_weight)[group[index]])
            rhs.append(np.array([spec.run_tokens]))
            next_row += 1
        matrix = coo_matrix(
            (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
            shape=(next_row, n_vars),
        ).tocsr()
        price = np.zeros(n_vars)
        cache: dict[tuple[int, int, int], float] = {}
        low_in, low_out = demand.input_tokens, demand.output_tokens
        for v in range(n_vars):
            g, j = int(group[v]), int(lane[v])
            key = (j, int(low_in[g]), int(low_out[g]))
            if key not in cache:
                cache[key] = self.lanes[j].price(key[1], key[2])
            price[v] = cache[key]
        built = (matrix, np.concatenate(rhs), price, n_vars)
        self._built[first_token] = built
        return built

    def variables(self, first_token: bool = False) -> int:
        return int(self._matrix(first_token)[3])

    def max_answers(self, first_token: bool = False) -> float:
        """The LP optimum of answers within the SLO (fractional; floor it for a count)."""
        matrix, rhs, _, n_vars = self._matrix(first_token)
        if not n_vars:
            return 0.0
        result = self._solve(-np.ones(n_vars), matrix, rhs)
        return float(-result.fun)

    def min_token_usd(self, answers: float, first_token: bool = False) -> float:
        """The least token spend of ``answers`` answers within the SLO (``first_token``:
        first tokens within theirs), exactly: one LP with the coverage as a constraint (slow
        on a whole day: see :meth:`cost_at_most_answers`). Raises ``ValueError`` above
        :meth:`max_answers`."""
        matrix, rhs, price, n_vars = self._matrix(first_token)
        if answers <= 0:
            return 0.0
        if not n_vars:
            raise ValueError(f"no message can be answered within the SLO, asked {answers}")
        need = answers * (1 - TOLERANCE) - TOLERANCE
        full = vstack([matrix, coo_matrix(-np.ones((1, n_vars)))]).tocsr()
        result = self._solve(price, full, np.append(rhs, -need))
        return max(0.0, float(result.fun) * (1 - TOLERANCE))

    def cost_at_most_answers(self, answers: float, first_token: bool = False) -> float:
        """A lower bound of the token spend of ``answers`` answers within the SLO (at most
        :meth:`max_answers`; the bound asks it for the most answers a policy can have), by
        Lagrangian relaxation of the coverage constraint - one LP about as fast as the
        first: maximise ``sum(x) - mu * cost(x)``; its optimum ``V`` gives, for every
        assignment with ``answers`` answers, ``cost >= (answers - V) / mu``. It starts with
        ``mu`` = ``LAGRANGE`` / the dearest answer's price and divides it by 10 until the
        optimum keeps ``answers`` answers; then the bound is short of the exact constrained
        optimum by at most the optimum's surplus answers times ``1 / mu`` (under twice the
        dearest answer's price when that surplus is the fractional part of the maximum).
        ``first_token``: answers are first tokens within their SLO (a streamed day)."""
        matrix, rhs, price, n_vars = self._matrix(first_token)
        if answers <= 0 or not n_vars:
            return 0.0
        top = float(price.max())
        if top <= 0:
            return 0.0
        mu = LAGRANGE / top
        value = 0.0
        for _ in range(8):
            result = self._solve(price * mu - 1.0, matrix, rhs)
            value = -float(result.fun)
            if float(result.x.sum()) >= answers * (1 - TOLERANCE) - 1e-6:
                break
            mu /= 10.0
        return max(0.0, (answers - value) / mu * (1 - COST_MARGIN))

    def _solve(self, cost: Any, matrix: Any, rhs: Any) -> Any:
        started = time.perf_counter()
        result = linprog(cost, A_ub=matrix, b_ub=rhs, bounds=(0, None), method="highs")
        self.solve_s += time.perf_counter() - started
        if result.status != 0:
            raise ValueError(f"the bound's LP did not solve: {result.message}")
        return result


def bins(values: Any, ratio: float) -> Any:
    """Log-scale bin of each token count (``ratio`` wide; 1 token is bin 0)."""
    return np.floor(np.log(np.maximum(values, 1)) / math.log(ratio)).astype(np.int64)


@dataclass(frozen=True, slots=True)
class Limits:
    """What counts as in time: the SLO of the full answer, of the first token, and the
    cutoff after which the orchestrator gives up (all ms after arrival)."""

    slo_ms: float
    first_token_ms: float
    cutoff_ms: float
    attempts: int = 1
    """Attempts of one message on one target to allow for (``nth < attempts``): without
    retries the failover plan sends a call to each target at most once (a failover or a
    hedge goes to another target); a contender with a retry policy may send it
    ``1 + max_per_call`` times (:func:`mangaroute.simulate.run.limits_of`)."""
    streaming: bool = False
    """The day streams (``[budget] streaming``): a call is answered at its first token, so a
    message is answerable when a first token can come within the cutoff."""


def feasibility(
    traffic: Traffic,
    fleet: Fleet,
    class_targets: dict[str, tuple[str, ...]],
    limits: Limits,
    lo: int = 0,
    hi: int | None = None,
) -> tuple[Any, Any, Any]:
    """Hindsight per message ``lo <= i < hi``: bit masks (bit ``j`` = ``fleet.targets[j]``)
    of the targets that can give the full answer within the SLO and the first token within
    its SLO, and whether any target answers within the cutoff - each from
    :meth:`SimTarget.earliest_answer`, so load never enters. Slices of one day can run in
    separate processes."""
    require_solver()
    hi = len(traffic) if hi is None else hi
    index = {sim.name: bit for bit, sim in enumerate(fleet.targets)}
    allowed = [
        [(fleet.by_name[name].earliest_answer, 1 << index[name]) for name in class_targets[c]]
        for c in traffic.classes
    ]
    size = max(0, hi - lo)
    full = np.zeros(size, dtype=np.uint16)
    first = np.zeros(size, dtype=np.uint16)
    reachable = np.zeros(size, dtype=bool)
    times, klass, draws = traffic.time_ns, traffic.klass, traffic.draw
    tin_all, tout_all = traffic.input_tokens, traffic.output_tokens
    max_tokens = traffic.max_tokens
    cached = traffic.cached_tokens
    slo, first_slo, cutoff = limits.slo_ms, limits.first_token_ms, limits.cutoff_ms
    attempts, streaming = limits.attempts, limits.streaming
    strict = min(slo, cutoff)
    horizon = max(slo, first_slo, cutoff)
    extra: dict[str, int] = {}
    for i in range(lo, hi):
        f = s = 0
        reach = False
        if max_tokens is not None or cached is not None:
            extra = {}
            if max_tokens is not None and max_tokens[i]:
                extra["max_tokens"] = max_tokens[i]
            if cached is not None and cached[i]:
                extra["cached_tokens"] = cached[i]
        args = (times[i], draws[i], tin_all[i], tout_all[i])
        for earliest_answer, bit in allowed[klass[i]]:
            earliest = earliest_answer(*args, horizon_ms=horizon, attempts=1, **extra)
            if attempts > 1 and (
                earliest is None or earliest[0] > strict or earliest[1] > first_slo
            ):  # only when the first attempt fails a test can a later one change a thing
                earliest = earliest_answer(*args, horizon_ms=horizon, attempts=attempts, **extra)
            if earliest is None:
                continue
            whole, token = earliest
            if whole <= slo:
                f |= bit
            if token <= first_slo:
                s |= bit
            if (token if streaming else whole) <= cutoff:
                reach = True
        full[i - lo] = f
        first[i - lo] = s
        reachable[i - lo] = reach
    return full, first, reachable


def concatenate(parts: Sequence[Any]) -> Any:
    """Join the slices :func:`feasibility` returned, in order."""
    require_solver()
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint16)


def _unique_columns(key: Any) -> tuple[Any, Any]:
    """``np.unique(key, axis=1, return_inverse=True)``, fast: the columns packed into one
    integer each (mixed radix) when they fit in 63 bits, as they do for a day."""
    if not key.shape[1]:
        return key, np.zeros(0, dtype=np.int64)
    low = key.min(axis=1, keepdims=True)
    sizes = (key.max(axis=1) - low[:, 0] + 1).tolist()
    if math.prod(sizes) >= 2**62:
        groups, inverse = np.unique(key, axis=1, return_inverse=True)
        return groups, inverse.reshape(-1)
    packed = np.zeros(key.shape[1], dtype=np.int64)
    for row, size in zip(key - low, sizes, strict=True):
        packed = packed * size + row
    codes, inverse = np.unique(packed, return_inverse=True)
    groups = np.empty((key.shape[0], codes.size), dtype=np.int64)
    for r in range(key.shape[0] - 1, -1, -1):
        codes, groups[r] = np.divmod(codes, sizes[r])
    return groups + low, inverse.reshape(-1)


def aggregate(
    traffic: Traffic,
    full: Any,
    first: Any,
    reachable: Any,
    *,
    window_s: float = WINDOW_S,
    bin_ratio: float = BIN_RATIO,
) -> Demand:
    """Group the day's messages by (window, class, both feasibility masks, input and output
    token bins), each group charged its members' smallest input and output tokens."""
    require_solver()
    start_s, end_s = traffic.window
    windows = max(1, math.ceil((end_s - start_s) / window_s))
    t = np.asarray(traffic.time_ns, dtype=np.int64)
    window = np.clip((t - round(start_s * NS_PER_S)) // round(window_s * NS_PER_S), 0, windows - 1)
    tin = np.asarray(traffic.input_tokens, dtype=np.int64)
    cached = traffic.cached_tokens
    if cached is not None and len(cached):  # cached input is cheaper and not held against quota
        tin = np.maximum(tin - np.asarray(cached, dtype=np.int64), 0)
    tout = np.asarray(traffic.output_tokens, dtype=np.int64)
    k = np.asarray(traffic.klass, dtype=np.int64)
    full = np.asarray(full, dtype=np.int64)
    first = np.asarray(first, dtype=np.int64)
    key = np.stack([window, k, full, first, bins(tin, bin_ratio), bins(tout, bin_ratio)])
    groups, inverse = _unique_columns(key)
    count = np.bincount(inverse, minlength=groups.shape[1])
    low_in = np.full(groups.shape[1], np.iinfo(np.int64).max)
    low_out = low_in.copy()
    np.minimum.at(low_in, inverse, tin)
    np.minimum.at(low_out, inverse, tout)
    n = len(traffic)
    return Demand(
        window=groups[0],
        full_mask=groups[2],
        first_mask=groups[3],
        count=count,
        input_tokens=low_in,
        output_tokens=low_out,
        windows=windows,
        messages=n,
        feasible_full=int(np.count_nonzero(full)),
        feasible_first=int(np.count_nonzero(first)),
        unanswerable=int(n - np.count_nonzero(reachable)),
    )


def lanes_of(
    fleet: Fleet,
    faults: Sequence[Fault],
    limits: Limits,
    *,
    start_s: float,
    windows: int,
    window_s: float,
    end_s: float | None = None,
    traffic: Traffic | None = None,
) -> list[Lane]:
    """Each target's capacity per window as the LP relaxes it (see the module docstring).

    An attempt for a message arriving in window ``[t0, t1)`` (the last one ends with the
    day, ``end_s``) starts within ``[t0, t1 + cutoff]``. A bucket of rate ``r`` and depth
    ``D`` (both times the largest capacity factor ``f`` of the interval) admits at most
    ``f (D + r (t1 + cutoff - t0))`` in it - where a call is charged once, when it starts.
    Where Bedrock reserves ``input + max_tokens`` at the start and gives the unused part back
    when the call ends (a target that reserves, on traffic that carries ``max_tokens``), a
    window can settle more than that - the calls still holding reservations at ``t0`` may
    give them back inside it, and an abandoned call runs on past the cutoff - so such a
    target gets one limit for the whole run instead: the bucket starts full and nothing but
    its refill adds to it, so at most ``f (D + r (run + cutoff))`` is ever settled."""
    late_s = max(limits.slo_ms, limits.first_token_ms, limits.cutoff_ms) / 1000.0
    end = start_s + windows * window_s if end_s is None else end_s
    firsts = [start_s + w * window_s for w in range(windows)]
    reaches = [min(window_s, end - t0) + late_s for t0 in firsts]  # the last may be short
    recorded = traffic.max_tokens if traffic is not None else None
    reserving = recorded is not None and any(recorded)
    lanes = []
    for sim in fleet.targets:
        mine = [f for f in faults if f.target == sim.name and f.kind in (THROTTLE_STORM, QUOTA_CUT)]
        factors = [
            _max_factor(mine, t0, t0 + reach) for t0, reach in zip(firsts, reaches, strict=True)
        ]
        tokens = None
        run_tokens = None
        if sim.tok_rate:
            rate = sim.tok_rate * NS_PER_S
            if sim.reserves and reserving:
                whole = _max_factor(mine, start_s, end + late_s)
                run_tokens = whole * (sim.tok_depth + rate * (end - start_s + late_s))
            else:
                tokens = [
                    f * (sim.tok_depth + rate * reach)
                    for f, reach in zip(factors, reaches, strict=True)
                ]
        requests = None
        rps, depth = _request_capacity(sim)
        if rps:
            requests = [
                f * (depth + rps * reach) for f, reach in zip(factors, reaches, strict=True)
            ]
        weight = max(1.0, sim.burndown)
        lanes.append(Lane(sim.name, tokens, requests, _pricer(sim), weight, run_tokens))
    return lanes


def _request_capacity(sim: SimTarget) -> tuple[float, float]:
    """Requests per second and bucket depth: at the most instances auto-scaling allows, in
    service at once (an endpoint that queues has no request limit here: a queue admits
    every request, its wait is what the SLO limits)."""
    if sim.queues:
        return 0.0, 0.0
    if sim.scales:
        rps = sim.rps_per_instance * max(sim.model.max_instances, sim.instances_min)
        return rps, max(1.0, rps)
    return sim.req_rate * NS_PER_S, sim.req_depth


def _pricer(sim: SimTarget) -> Callable[[int, int], float]:
    """``bill`` on a copy's behalf: the bound's own fleet, whose usage nobody reports."""

    def price(tin: int, tout: int) -> float:
        return float(sim.bill(tin, tout))

    return price


def _max_factor(faults: Sequence[Fault], start: float, end: float) -> float:
    """The largest capacity factor of overlapping faults at any instant of ``[start, end)``
    (1 where none applies): the product is constant between fault edges."""
    edges = [edge for f in faults for edge in (f.start_s, f.end_s)]
    instants = [start] + [edge for edge in edges if start < edge < end]
    best = 0.0
    for t in instants:
        factor = 1.0
        for fault in faults:
            if fault.start_s <= t < fault.end_s:
                factor *= fault.factor
        best = max(best, factor)
    return best


def fixed_floor(fleet: Fleet, duration_s: float) -> float:
    """Hourly prices paid whatever the traffic: model units for the whole run, an endpoint's
    minimum instances."""
    total = 0.0
    for sim in fleet.targets:
        if sim.pattern is Pattern.SAGEMAKER_REALTIME and sim.scales:
            total += sim.instances_min * sim.instance_hourly * duration_s / 3600.0
        else:
            total += sim.hourly_usd * duration_s / 3600.0
    return total


def _count(optimum: float) -> int:
    """An LP optimum of answers as a count no integer solution exceeds (the solver's
    tolerance rounded in the policies' favour)."""
    return math.floor(optimum * (1 + TOLERANCE) + 1e-6)


def solve(
    demand: Demand,
    fleet: Fleet,
    faults: Sequence[Fault],
    limits: Limits,
    *,
    start_s: float,
    end_s: float,
    window_s: float = WINDOW_S,
    hindsight_s: float = 0.0,
    traffic: Traffic | None = None,
) -> tuple[Bound, BoundProblem]:
    """The bound from an aggregated day: both answer LPs, then the cost at the most answers."""
    lanes = lanes_of(
        fleet,
        faults,
        limits,
        start_s=start_s,
        windows=demand.windows,
        window_s=window_s,
        end_s=end_s,
        traffic=traffic,
    )
    problem = BoundProblem(demand, lanes)
    answers = problem.max_answers()
    first = problem.max_answers(first_token=True)
    # A streamed day is answered at the first token: the cost is that of the most first
    # tokens within their SLO; otherwise of the most whole answers within the SLO.
    if limits.streaming:
        token_usd = problem.cost_at_most_answers(_count(first), first_token=True)
    else:
        token_usd = problem.cost_at_most_answers(_count(answers))
    bound = Bound(
        messages=demand.messages,
        within_slo=_count(answers),
        within_first_token_slo=_count(first),
        token_usd=token_usd,
        fixed_usd=fixed_floor(fleet, end_s - start_s),
        feasible_slo=demand.feasible_full,
        unanswerable=demand.unanswerable,
        groups=int(demand.count.size),
        variables=problem.variables(),
        window_s=window_s,
        hindsight_s=hindsight_s,
        solve_s=problem.solve_s,
    )
    return bound, problem


def compute_bound(
    traffic: Traffic,
    fleet: Fleet,
    class_targets: dict[str, tuple[str, ...]],
    faults: Sequence[Fault],
    limits: Limits,
    *,
    window_s: float = WINDOW_S,
    bin_ratio: float = BIN_RATIO,
) -> tuple[Bound, BoundProblem]:
    """The bound of one day on ``fleet`` (a fleet of its own: pricing bills it), in this
    process."""
    started = time.perf_counter()
    masks = feasibility(traffic, fleet, class_targets, limits)
    demand = aggregate(traffic, *masks, window_s=window_s, bin_ratio=bin_ratio)
    start_s, end_s = traffic.window
    return solve(
        demand,
        fleet,
        faults,
        limits,
        start_s=start_s,
        end_s=end_s,
        window_s=window_s,
        hindsight_s=time.perf_counter() - started,
        traffic=traffic,
    )


def blind_first_tokens(
    traffic: Traffic, fleet: Fleet, class_targets: dict[str, tuple[str, ...]], limits: Limits
) -> tuple[float, float]:
    """What hindsight of the latency draws is worth: ``(blind, seen)``, the first tokens
    within their SLO that a policy may *expect* if it sends each message to the one allowed
    target most likely to answer it in time - knowing every target's latency distribution
    and the message's uncached input, not the draw - and the count the bound's hindsight
    allows (some allowed target's own draw fits, as :func:`feasibility` decides).

    ``blind`` ignores load, faults and cold starts, which only lower a target's chance, and
    hedges, which buy it with a second call: no single-attempt policy can expect more. It is
    an expectation, not a bound - a policy's count scatters around it. The model's first
    token on a warm, idle target is ``(ttft + per-token x uncached input) x multiplier`` (plus
    a cross-region hop), the multiplier drawn from the target's table, and a baseline error
    fails the attempt (:meth:`SimTarget.attempt`)."""
    require_solver()
    _, first, _ = feasibility(traffic, fleet, class_targets, limits)
    slo = limits.first_token_ms
    tables = {sim.name: sorted(sim.mult) for sim in fleet.targets}
    allowed = [[fleet.by_name[name] for name in class_targets[c]] for c in traffic.classes]
    cached = traffic.cached_tokens
    chance: dict[tuple[str, int], float] = {}
    blind = 0.0
    for i in range(len(traffic)):
        uncached = traffic.input_tokens[i] - (cached[i] if cached is not None else 0)
        best = 0.0
        for sim in allowed[traffic.klass[i]]:
            p = chance.get((sim.name, uncached))
            if p is None:
                base = sim.ttft_ms + sim.ttft_in_ms * uncached
                room = (slo - (sim.cross_region_ms or 0.0)) / base if base > 0 else math.inf
                table = tables[sim.name]
                p = bisect.bisect_right(table, room) / len(table) * (1.0 - sim.error_rate)
                chance[(sim.name, uncached)] = p
            best = max(best, p)
        blind += best
    return blind, float(np.count_nonzero(first))
