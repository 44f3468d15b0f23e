"""Immutable views of the router's state.

A :class:`Snapshot` is rebuilt off the hot path (every few milliseconds, or at once when a
breaker changes state) and swapped in with one reference assignment; ``choose()`` only reads
it. Dashboards, the CLI and the sidecar read the same object.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from mangaroute.core.breaker import BreakerState
from mangaroute.core.targets import Target

if TYPE_CHECKING:
    from mangaroute.core.fleet import FleetView


@dataclass(frozen=True, slots=True)
class TargetView:
    """Derived statistics of one target over the sliding window."""

    target: Target
    p50_ms: float
    p90_ms: float
    p99_ms: float
    """Predicted latency percentiles: observed once ``samples >= min_samples``, otherwise the
    prior profile (whose p99 is the cold-start-aware effective p99)."""
    latency_source: str
    """``"observed"`` or ``"prior"``."""
    ttft_p50_ms: float
    ttft_p99_ms: float
    samples: int
    requests: int
    ok: int
    throttled: int
    errors: int
    timeouts: int
    error_rate: float
    """(errors + timeouts) / requests over the window; 0 with no requests."""
    throttle_rate: float
    tokens_per_minute: float
    requests_per_second: float
    utilization: float
    """The busiest capacity axis: tokens/min, requests/s or in-flight against the target's
    capacity (0 when the target declares none)."""
    in_flight: int
    breaker: BreakerState
    breaker_reason: str
    ejections: int
    tokens_per_call: float = math.nan
    """Average input + output tokens of the window's successful calls (NaN with none)."""
    output_tokens_per_call: float = math.nan
    """Average output tokens of the window's successful calls (NaN with none): the answer
    length the observed latency percentiles describe."""
    breaker_until: float | None = None
    """While the breaker is open: the wall-clock time (epoch seconds) its cool-down ends and
    probing starts; ``None`` otherwise."""

    @property
    def name(self) -> str:
        return self.target.name

    @property
    def available(self) -> bool:
        return self.breaker is BreakerState.CLOSED

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.target.identity(),
            "latency_ms": {
                "p50": _num(self.p50_ms),
                "p90": _num(self.p90_ms),
                "p99": _num(self.p99_ms),
                "source": self.latency_source,
            },
            "ttft_ms": {"p50": _num(self.ttft_p50_ms), "p99": _num(self.ttft_p99_ms)},
            "samples": self.samples,
            "requests": self.requests,
            "outcomes": {
                "ok": self.ok,
                "throttled": self.throttled,
                "error": self.errors,
                "timeout": self.timeouts,
            },
            "error_rate": round(self.error_rate, 6),
            "throttle_rate": round(self.throttle_rate, 6),
            "tokens_per_minute": round(self.tokens_per_minute, 3),
            "output_tokens_per_call": _num(self.output_tokens_per_call),
            "capacity_tokens_per_minute": self.target.capacity.tokens_per_minute,
            "requests_per_second": round(self.requests_per_second, 3),
            "utilization": round(self.utilization, 6),
            "in_flight": self.in_flight,
            "breaker": {
                "state": self.breaker.value,
                "reason": self.breaker_reason,
                "ejections": self.ejections,
                "until": None if self.breaker_until is None else round(self.breaker_until, 3),
            },
        }


def _num(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 3)


@dataclass(frozen=True, slots=True)
class PickPlan:
    """A picker's precomputed answer for one ordered candidate list.

    ``choose()`` draws ``u`` (uniform, or the session hash when ``sticky``), finds its slot in
    ``cumulative`` and returns the precomputed target, reason and fallbacks of that slot; no
    allocation beyond the decision itself.
    """

    targets: tuple[Target, ...]
    reasons: tuple[str, ...]
    fallbacks: tuple[tuple[Target, ...], ...]
    cumulative: tuple[float, ...] | None = None
    """Running sums of the weights; ``None`` always picks slot 0."""
    sticky: bool = False
    rotate: bool = False
    """Take the slots in turn (round robin) instead of drawing at random."""

    @property
    def total(self) -> float:
        return self.cumulative[-1] if self.cumulative else 1.0

    def marked(self, suffix: str) -> PickPlan:
        """The same plan (targets, weights, fallbacks, stickiness, rotation) with ``suffix``
        added to every reason: how a wrapping picker says it changed the candidates
        (``+spend_guard``, ``+below_floor``)."""
        return replace(self, reasons=tuple(reason + suffix for reason in self.reasons))


@dataclass(frozen=True, slots=True)
class Route:
    """The routing table of one request class inside a snapshot."""

    request_class: str
    policy: str
    candidates: tuple[TargetView, ...]
    """Targets that passed the static filters, best first."""
    excluded: tuple[tuple[str, str], ...]
    """``(target name, reason)`` for each eligible target a filter dropped."""
    scores: tuple[tuple[str, float], ...]
    plan: PickPlan
    """The pick over the candidates; when no candidate passed the filters, the *panic* plan
    over every eligible target, healthiest first (Envoy's panic routing: better to try a
    target that may fail than to fail the call outright)."""
    enforce_budget: bool
    max_p99_ms: float
    """The slowest candidate's predicted p99: a budget at least this large drops nobody
    (0 in panic, where the budget is not applied)."""
    eligible: tuple[TargetView, ...]
    """Every target configured for the class, in config order (the last resort)."""
    probes: tuple[str, ...]
    """Half-open targets of this class that may take a probe call."""
    budget_steps: tuple[float, ...] = ()
    """The distinct predicted p99s of the candidates, ascending."""
    budget_plans: tuple[tuple[PickPlan, str], ...] = ()
    """``budget_plans[i]``: the plan and reason suffix for a budget with ``i`` steps at or
    below it (``i < len(budget_steps)``; a budget at or above the last step drops nobody)."""
    deadline: tuple[tuple[float, float], ...] | None = None
    """Deadline-aware policies: per candidate (in rank order) the predicted p99 line
    ``(a, b)``, i.e. ``a + b x output_tokens`` ms. ``choose()`` keeps the candidates whose
    line fits the budget (a bit mask) and takes the plan of that subset."""
    deadline_tokens: int = 300
    """Output tokens assumed for a call that gives no estimate."""
    full_mask: int = 0
    masked_plans: list[tuple[PickPlan, str] | None] = field(
        default_factory=list, compare=False, repr=False
    )
    """Plans by candidate mask, built on first use (a benign race: two threads may both
    build the same immutable plan)."""
    plan_for_mask: Callable[[int], tuple[PickPlan, str]] | None = field(
        default=None, compare=False, repr=False
    )

    def masked_plan(self, mask: int) -> tuple[PickPlan, str]:
        """The plan and reason suffix when exactly the candidates in ``mask`` fit."""
        entry = self.masked_plans[mask]
        if entry is None and self.plan_for_mask is not None:
            entry = self.plan_for_mask(mask)
            self.masked_plans[mask] = entry
        return entry if entry is not None else (self.plan, "")

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "policy": self.policy,
            "candidates": [view.name for view in self.candidates],
            "excluded": {name: reason for name, reason in self.excluded},
            "scores": {name: round(score, 3) for name, score in self.scores},
            "probes": list(self.probes),
        }
        if self.deadline is not None:
            data["predicted_p99_ms"] = {
                view.name: {"ttft_ms": round(a, 3), "per_token_ms": round(b, 5)}
                for view, (a, b) in zip(self.candidates, self.deadline, strict=False)
            }
        arms = self.arms()
        if arms:
            data["arms"] = arms
        return data

    def arms(self) -> list[dict[str, Any]]:
        """A/B statistics: for a plan split into ``control`` and ``candidate`` arms, each
        arm's share of traffic and its target's window statistics (give the candidate a
        target of its own - a new model version, an endpoint variant - so that its window
        holds exactly the arm's calls)."""
        plan = self.plan
        if plan.cumulative is None or not set(plan.reasons) & set(AB_ARMS):
            return []
        views = {view.name: view for view in self.eligible}
        arms = []
        previous = 0.0
        for target, reason, running in zip(
            plan.targets, plan.reasons, plan.cumulative, strict=True
        ):
            share = (running - previous) / plan.total if plan.total else 0.0
            previous = running
            if share <= 0 or reason not in AB_ARMS:
                continue
            view = views.get(target.name)
            arm: dict[str, Any] = {"arm": reason, "target": target.name, "share": round(share, 6)}
            if view is not None:
                arm.update(
                    requests=view.requests,
                    p50_ms=_num(view.p50_ms),
                    p99_ms=_num(view.p99_ms),
                    error_rate=round(view.error_rate, 6),
                    throttle_rate=round(view.throttle_rate, 6),
                    latency_source=view.latency_source,
                )
            arms.append(arm)
        return arms


AB_ARMS = ("control", "candidate")
"""Reasons a canary / A-B picker gives its two arms."""


@dataclass(frozen=True, slots=True)
class SwitchEvent:
    """The primary target changed."""

    kind = "switch"

    from_target: str
    to_target: str
    reason: str
    at_ns: int
    """Router clock (monotonic ns)."""
    unix_time: float
    """Wall-clock seconds, derived from the router clock and its start offset."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "from": self.from_target,
            "to": self.to_target,
            "reason": self.reason,
            "at_ns": self.at_ns,
            "unix_time": round(self.unix_time, 6),
        }


@dataclass(frozen=True, slots=True)
class BreakerEvent:
    """A target's breaker changed state."""

    kind = "breaker"

    target: str
    from_state: BreakerState
    to_state: BreakerState
    reason: str
    at_ns: int
    unix_time: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "from": self.from_state.value,
            "to": self.to_state.value,
            "reason": self.reason,
            "at_ns": self.at_ns,
            "unix_time": round(self.unix_time, 6),
        }


OPERATOR_PREFIX = "operator"
"""A breaker reason that starts with this was set by an operator's eject
(``operator(<who>): <why>``), not by the router's own judgement."""


def operator_reason(by: str, reason: str) -> str:
    """The breaker reason of an operator's eject: ``operator(<by>): <reason>``."""
    return f"{OPERATOR_PREFIX}({by}): {reason}"


@dataclass(frozen=True, slots=True)
class Pin:
    """An operator's hold on the primary: the switcher keeps ``target`` as primary and does
    not switch away from it until ``until_ns`` on the router clock."""

    target: str
    reason: str
    by: str
    until_ns: int
    until_unix: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "reason": self.reason,
            "by": self.by,
            "until": round(self.until_unix, 3),
        }


ADMIN_ACTIONS = ("eject", "restore", "pin", "unpin", "pin_lapsed")
"""What an :class:`AdminEvent` says happened (``pin_lapsed``: a pin reached its time limit)."""


@dataclass(frozen=True, slots=True)
class AdminEvent:
    """An operator acted on the router (or an operator's pin lapsed)."""

    kind = "admin"

    action: str
    """One of :data:`ADMIN_ACTIONS`."""
    target: str
    reason: str
    by: str
    """Who acted: the Python caller's ``by=``, or the sidecar's caller (``uid 1000 over
    unix:/path``, ``mTLS CN=ops``)."""
    until_unix: float | None
    """For eject and pin: when it lapses (epoch seconds)."""
    changed: bool
    """False when the action found nothing to change (restoring a closed breaker)."""
    at_ns: int
    unix_time: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "target": self.target,
            "reason": self.reason,
            "by": self.by,
            "until": None if self.until_unix is None else round(self.until_unix, 3),
            "changed": self.changed,
            "at_ns": self.at_ns,
            "unix_time": round(self.unix_time, 6),
        }

    def describe(self) -> str:
        until = "" if self.until_unix is None else f" until unix {self.until_unix:.0f}"
        done = "" if self.changed else " (nothing to change)"
        return f"{self.action} {self.target} by {self.by}{until}{done}: {self.reason}"


@dataclass(frozen=True, slots=True)
class ReloadEvent:
    """A config reload: the router now routes by a new config (``accepted``), or a new
    config was refused before it reached the router (:meth:`Router.reject_reload`) and the
    running one keeps serving."""

    kind = "reload"

    source: str
    """The config file (or ``<string>``) that was loaded or refused."""
    accepted: bool
    detail: str
    """What changed (``4 targets kept; added spare-haiku``), or why it was refused."""
    at_ns: int
    unix_time: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "accepted": self.accepted,
            "detail": self.detail,
            "at_ns": self.at_ns,
            "unix_time": round(self.unix_time, 6),
        }


RouterEvent = SwitchEvent | BreakerEvent | AdminEvent | ReloadEvent


@dataclass(frozen=True, slots=True)
class Reconfigured:
    """What :meth:`Router.reconfigure` changed: the config's source and the targets added,
    removed and kept (their windows, breakers and in-flight decisions carried over)."""

    source: str
    added: tuple[str, ...]
    removed: tuple[str, ...]
    kept: tuple[str, ...]

    def describe(self) -> str:
        parts = [f"{len(self.kept)} targets kept"]
        if self.added:
            parts.append("added " + ", ".join(self.added))
        if self.removed:
            parts.append("removed " + ", ".join(self.removed))
        return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything ``choose()`` needs, and everything a dashboard shows."""

    built_ns: int
    targets: tuple[TargetView, ...]
    routes: dict[str, Route]
    primary: str | None
    window_s: float
    fleet: FleetView | None = None
    """The other replicas' share merged into this snapshot (shared state), or ``None``."""
    pin: Pin | None = None
    """An operator's pin on the primary while it holds (:meth:`Router.pin_primary`)."""

    def target(self, name: str) -> TargetView:
        for view in self.targets:
            if view.name == name:
                return view
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "built_ns": self.built_ns,
            "window_s": self.window_s,
            "primary": self.primary,
            "targets": [view.to_dict() for view in self.targets],
            "routes": {name: route.to_dict() for name, route in self.routes.items()},
            "fleet": self.fleet.to_dict() if self.fleet is not None else None,
            "pin": self.pin.to_dict() if self.pin is not None else None,
        }
