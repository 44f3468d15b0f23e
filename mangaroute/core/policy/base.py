"""The shape of a routing policy: filters, then a ranker, then a picker.

* A **filter** looks at one target's statistics and either lets it through (``None``) or
  names why it is excluded (``"breaker_open"``, ``"at_capacity(0.97)"``, ...).
* A **ranker** orders the survivors, best first, and may report a score per target.
* A **picker** turns the ordered list into a :class:`~mangaroute.core.snapshot.PickPlan`:
  which slot a request lands in (always the best, a weighted split, primary and canaries),
  the reason of each slot and its ordered fallbacks.

All three run when a snapshot is rebuilt, never per request; the only per-request step is the
latency-budget check, switched on by the policy's ``budget`` flag. A :class:`Policy` composes
them, so a later policy is new parts plus a config entry, not a change to the router.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from mangaroute.core.breaker import BreakerState
from mangaroute.core.snapshot import PickPlan, Route, TargetView
from mangaroute.core.targets import Target


class Filter(Protocol):
    @property
    def name(self) -> str: ...

    def exclude(self, view: TargetView) -> str | None:
        """``None`` to keep the target, else a short machine-readable reason."""
        ...


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
    return PickPlan(ordered, tuple(reasons), fallbacks, cumulative, sticky)


def panic_plan(eligible: Sequence[TargetView]) -> PickPlan:
    """Every eligible target, closed breakers first, then half-open, then open."""
    rank = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}
    ordered = sorted(eligible, key=lambda view: rank[view.breaker])
    return plan_in_order([view.target for view in ordered], ["panic"] * len(ordered))


@dataclass(frozen=True, slots=True)
class Policy:
    """A named composition of filters, a ranker and a picker."""

    name: str
    ranker: Ranker
    picker: Picker
    filters: tuple[Filter, ...] = field(default=())
    budget: bool = True
    """Drop, per request, targets whose predicted p99 exceeds the remaining budget."""

    def route(
        self,
        request_class: str,
        eligible: Sequence[TargetView],
        primary: str | None,
        probes: tuple[str, ...],
    ) -> Route:
        """Build the routing table of one request class from the current statistics."""
        kept: list[TargetView] = []
        excluded: list[tuple[str, str]] = []
        for view in eligible:
            reason = self._exclusion(view)
            if reason is None:
                kept.append(view)
            else:
                excluded.append((view.name, reason))
        scores: dict[str, float] = {}
        steps: tuple[float, ...] = ()
        budget_plans: tuple[tuple[PickPlan, str], ...] = ()
        if kept:
            kept, scores = self.ranker.rank(kept)
            plan = self.picker.plan(kept, primary)
            if self.budget:
                steps, budget_plans = self._budget_plans(kept, primary, plan)
        else:
            plan = panic_plan(eligible)
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
        )

    def _budget_plans(
        self, ranked: list[TargetView], primary: str | None, full: PickPlan
    ) -> tuple[tuple[float, ...], tuple[tuple[PickPlan, str], ...]]:
        """Precompute the pick for every budget that drops someone.

        Only the distinct predicted p99s of the candidates matter: a budget below the
        smallest drops everyone (the full plan is used, reason ``+over_budget``); a budget in
        ``[steps[i-1], steps[i])`` keeps exactly the candidates with p99 <= ``steps[i-1]``,
        the rest becoming last-resort fallbacks (reason ``+budget``). ``choose()`` then needs
        one bisect instead of a re-plan per request.
        """
        steps = tuple(sorted({view.p99_ms for view in ranked}))
        plans: list[tuple[PickPlan, str]] = [(full, "+over_budget")]
        for ceiling in steps[:-1]:
            fitting = [view for view in ranked if view.p99_ms <= ceiling]
            slow = tuple(view.target for view in ranked if view.p99_ms > ceiling)
            plan = self.picker.plan(fitting, primary)
            plans.append(
                (
                    PickPlan(
                        plan.targets,
                        plan.reasons,
                        tuple(chain + slow for chain in plan.fallbacks),
                        plan.cumulative,
                        plan.sticky,
                    ),
                    "+budget",
                )
            )
        return steps, tuple(plans)

    def _exclusion(self, view: TargetView) -> str | None:
        for part in self.filters:
            reason = part.exclude(view)
            if reason is not None:
                return reason
        return None
