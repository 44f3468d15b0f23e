"""The shape of a routing policy: filters, then a ranker, then a picker.

* A **filter** looks at one target's statistics and either lets it through (``None``) or
  names why it is excluded (``"breaker_open"``, ``"at_capacity(0.97)"``, ...).
* A **ranker** orders the survivors, best first, and may report a score per target.
* A **picker** turns the ordered list into a :class:`~mangaroute.core.snapshot.PickPlan`:
  which slot a request lands in (always the best, a weighted split, primary and canaries),
  the reason of each slot and its ordered fallbacks.

All three run when a snapshot is rebuilt, never per request; the only per-request step is the
latency-budget check, switched on by the policy's ``budget`` flag (and made deadline-aware by
its ``deadline`` predictor: the check then uses each call's estimated output tokens). A
:class:`Policy` composes them, so a later policy is new parts plus a config entry, not a
change to the router. Parts that need the time of day or the spend so far implement
:class:`~mangaroute.core.policy.context.Contextual` and are bound to the rebuild's
:class:`~mangaroute.core.policy.context.PolicyContext` first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar, cast

from mangaroute.core.breaker import BreakerState
from mangaroute.core.policy.context import Contextual, PolicyContext
from mangaroute.core.policy.prediction import LatencyPredictor
from mangaroute.core.policy.quality import BELOW_FLOOR, QualityFloor, append_fallbacks
from mangaroute.core.snapshot import PickPlan, Route, TargetView
from mangaroute.core.targets import Target

MAX_DEADLINE_CANDIDATES = 8
"""Deadline-aware routing keeps one lazily built plan per subset of candidates; beyond this
many candidates only the best ``MAX_DEADLINE_CANDIDATES`` are checked per request (the rest
stay as fallbacks)."""


_Part = TypeVar("_Part")


class Filter(Protocol):
    @property
    def name(self) -> str: ...

    def exclude(self, view: TargetView) -> str | None:
        """``None`` to keep the target, else a short machine-readable reason."""
        ...


class Comparative(Protocol):
    """A filter that judges a target against the others of its class (the throttle bet of
    :mod:`mangaroute.core.policy.throttle`): at each rebuild :meth:`among` gets the class's
    eligible targets and returns the filter to use for them."""

    def among(self, views: Sequence[TargetView]) -> Filter: ...


class Ranker(Protocol):
    @property
    def name(self) -> str: ...

    def rank(self, views: Sequence[TargetView]) -> tuple[list[TargetView], dict[str, float]]:
        """Order ``views`` best first; optionally return a score per target name."""
        ...


class Picker(Protocol):
    @property
    def name(self) -> str: ...

    def plan(self, ranked: Sequence[TargetView], primary: str | None) -> PickPlan:
        """Precompute the pick over a non-empty, ranked candidate list."""
        ...


def plan_in_order(
    targets: Sequence[Target],
    reasons: Sequence[str],
    weights: Sequence[float] | None = None,
    *,
    sticky: bool = False,
    rotate: bool = False,
) -> PickPlan:
    """Build a plan whose every slot falls back to the other slots in their order."""
    ordered = tuple(targets)
    fallbacks = tuple(ordered[:i] + ordered[i + 1 :] for i in range(len(ordered)))
    cumulative: tuple[float, ...] | None = None
    if weights is not None:
        running = 0.0
        sums = []
        for weight in weights:
            running += weight
            sums.append(running)
        cumulative = tuple(sums)
    return PickPlan(ordered, tuple(reasons), fallbacks, cumulative, sticky, rotate)


def panic_plan(eligible: Sequence[TargetView], floor: frozenset[str] | None = None) -> PickPlan:
    """Every eligible target, closed breakers first, then half-open, then open; with a
    quality ``floor`` (the tiers that meet it), those targets first within each state."""
    rank = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}
    if floor is None:
        ordered = sorted(eligible, key=lambda view: rank[view.breaker])
        return plan_in_order([view.target for view in ordered], ["panic"] * len(ordered))
    ordered = sorted(eligible, key=lambda view: (rank[view.breaker], view.target.tier not in floor))
    reasons = ["panic" if v.target.tier in floor else "panic" + BELOW_FLOOR for v in ordered]
    return plan_in_order([view.target for view in ordered], reasons)


@dataclass(frozen=True, slots=True)
class Policy:
    """A named composition of filters, a ranker and a picker."""

    name: str
    ranker: Ranker
    picker: Picker
    filters: tuple[Filter, ...] = field(default=())
    budget: bool = True
    """Drop, per request, targets whose predicted p99 exceeds the remaining budget."""
    deadline: LatencyPredictor | None = None
    """With ``budget``: predict each call's p99 from its estimated output tokens and the
    targets' TTFT and per-token times (deadline-aware) instead of one p99 per target."""
    last_resort: bool = False
    """Append the eligible targets the filters excluded to every fallback chain, healthiest
    first (closed breakers, then half-open, then open - the panic order): a filter makes a
    target a worse choice, not a forbidden one, and once the preferred targets have failed or
    throttled, even an ejected target (a fast failure at worst) beats a certain one. Ejected
    targets still get no first attempts."""
    floors: tuple[tuple[str, frozenset[str]], ...] = ()
    """Per request class, the tiers that meet its quality floor (classes without a floor are
    not listed); set from the classes by :class:`~mangaroute.core.settings.RouterConfig`.
    See :mod:`mangaroute.core.policy.quality`."""
    contextual: tuple[bool, ...] = field(default=(), init=False, compare=False, repr=False)
    """Which parts (filters, then ranker, then picker) need binding to a context; empty when
    none does (worked out once: a runtime protocol check is slow)."""
    comparative: tuple[bool, ...] = field(default=(), init=False, compare=False, repr=False)
    """Which filters are :class:`Comparative` (bound to the class's targets); empty when none."""

    def __post_init__(self) -> None:
        parts = (*self.filters, self.ranker, self.picker)
        flags = tuple(isinstance(part, Contextual) for part in parts)
        object.__setattr__(self, "contextual", flags if any(flags) else ())
        among = tuple(callable(getattr(part, "among", None)) for part in self.filters)
        object.__setattr__(self, "comparative", among if any(among) else ())

    def route(
        self,
        request_class: str,
        eligible: Sequence[TargetView],
        primary: str | None,
        probes: tuple[str, ...],
        context: PolicyContext | None = None,
    ) -> Route:
        """Build the routing table of one request class from the current statistics."""
        filters, ranker, picker = self.filters, self.ranker, self.picker
        flags: tuple[bool, ...] = self.contextual
        if context is not None and flags:
            filters = tuple(
                _bind(part, context) if flag else part
                for part, flag in zip(filters, flags, strict=False)
            )
            ranker = _bind(ranker, context) if flags[-2] else ranker
            picker = _bind(picker, context) if flags[-1] else picker
        if self.comparative:
            filters = tuple(
                cast(Comparative, part).among(eligible) if flag else part
                for part, flag in zip(filters, self.comparative, strict=True)
            )
        floor = None
        for name, tiers in self.floors:
            if name == request_class:
                floor = tiers
                picker = QualityFloor(picker, tiers)
                break
        kept: list[TargetView] = []
        excluded: list[tuple[str, str]] = []
        for view in eligible:
            reason = _exclusion(filters, view)
            if reason is None:
                kept.append(view)
            else:
                excluded.append((view.name, reason))
        scores: dict[str, float] = {}
        steps: tuple[float, ...] = ()
        budget_plans: tuple[tuple[PickPlan, str], ...] = ()
        deadline = _NO_DEADLINE
        if kept:
            kept, scores = ranker.rank(kept)
            spare: tuple[Target, ...] = ()
            if self.last_resort and excluded:
                names = {name for name, _ in excluded}
                spare = panic_plan([v for v in eligible if v.name in names], floor).targets
            plan = picker.plan(kept, primary)
            if spare:
                plan = append_fallbacks(plan, spare)
            if self.budget and self.deadline is not None:
                deadline = _deadline_route(self.deadline, kept, primary, plan, picker, spare)
            elif self.budget:
                steps, budget_plans = _budget_plans(picker, kept, primary, plan, spare)
        else:
            plan = panic_plan(eligible, floor)
        return Route(
            request_class=request_class,
            policy=self.name,
            candidates=tuple(kept),
            excluded=tuple(excluded),
            scores=tuple(scores.items()),
            plan=plan,
            enforce_budget=self.budget,
            max_p99_ms=max((view.p99_ms for view in kept), default=0.0),
            eligible=tuple(eligible),
            probes=probes,
            budget_steps=steps,
            budget_plans=budget_plans,
            deadline=deadline.lines,
            deadline_tokens=deadline.tokens,
            full_mask=deadline.full_mask,
            masked_plans=deadline.table,
            plan_for_mask=deadline.plan_for_mask,
        )


def _bind(part: _Part, context: PolicyContext) -> _Part:
    return cast(_Part, cast(Contextual, part).bind(context))


def _exclusion(filters: Sequence[Filter], view: TargetView) -> str | None:
    for part in filters:
        reason = part.exclude(view)
        if reason is not None:
            return reason
    return None


def _budget_plans(
    picker: Picker,
    ranked: list[TargetView],
    primary: str | None,
    full: PickPlan,
    spare: tuple[Target, ...] = (),
) -> tuple[tuple[float, ...], tuple[tuple[PickPlan, str], ...]]:
    """Precompute the pick for every budget that drops someone.

    Only the distinct predicted p99s of the candidates matter: a budget below the smallest
    drops everyone (the full plan is used, reason ``+over_budget``); a budget in
    ``[steps[i-1], steps[i])`` keeps exactly the candidates with p99 <= ``steps[i-1]``, the
    rest becoming last-resort fallbacks (reason ``+budget``). ``choose()`` then needs one
    bisect instead of a re-plan per request.
    """
    steps = tuple(sorted({view.p99_ms for view in ranked}))
    plans: list[tuple[PickPlan, str]] = [(full, "+over_budget")]
    for ceiling in steps[:-1]:
        fitting = [view for view in ranked if view.p99_ms <= ceiling]
        slow = tuple(view.target for view in ranked if view.p99_ms > ceiling)
        plans.append((append_fallbacks(picker.plan(fitting, primary), slow + spare), "+budget"))
    return steps, tuple(plans)


@dataclass(frozen=True, slots=True)
class _DeadlineRoute:
    lines: tuple[tuple[float, float], ...] | None = None
    tokens: int = 300
    full_mask: int = 0
    table: list[tuple[PickPlan, str] | None] = field(default_factory=list)
    plan_for_mask: Callable[[int], tuple[PickPlan, str]] | None = None


_NO_DEADLINE = _DeadlineRoute()


def _deadline_route(
    predictor: LatencyPredictor,
    ranked: list[TargetView],
    primary: str | None,
    full: PickPlan,
    picker: Picker,
    spare: tuple[Target, ...] = (),
) -> _DeadlineRoute:
    """Route fields for deadline-aware budgets: one predicted line per checked candidate and
    a lazily filled table of plans by the mask of candidates that fit a call."""
    checked = ranked[:MAX_DEADLINE_CANDIDATES]
    full_mask = (1 << len(checked)) - 1

    def plan_for_mask(mask: int) -> tuple[PickPlan, str]:
        if mask == 0:
            return full, "+over_budget"
        fitting = [view for i, view in enumerate(checked) if mask >> i & 1]
        fitting += ranked[MAX_DEADLINE_CANDIDATES:]
        slow = tuple(view.target for i, view in enumerate(checked) if not mask >> i & 1)
        return append_fallbacks(picker.plan(fitting, primary), slow + spare), "+budget"

    table: list[tuple[PickPlan, str] | None] = [None] * (full_mask + 1)
    table[full_mask] = (full, "")
    return _DeadlineRoute(
        tuple(predictor.line(view) for view in checked),
        predictor.avg_output_tokens,
        full_mask,
        table,
        plan_for_mask,
    )
