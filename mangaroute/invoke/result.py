"""What a routed call reports: each attempt, and the routing result attached to the answer."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = ["Attempt", "AttemptKind", "ConverseResponse", "RoutingResult"]


class AttemptKind(StrEnum):
    PRIMARY = "primary"
    """The target ``choose()`` picked."""
    FAILOVER = "failover"
    """A fallback started after an attempt failed."""
    HEDGE = "hedge"
    """A fallback started while the primary was still running (hedging)."""
    RETRY = "retry"
    """The same target again after a fast failure, within the retry budget."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """One call to one target, as the caller sees it.

    ``outcome`` is an :class:`~mangaroute.Outcome` value (``ok``, ``throttled``, ``error``,
    ``timeout``) or what the routed call did with it: ``cancelled`` (a losing hedge whose
    stream was closed), ``abandoned`` (a losing hedge still running when the call returned;
    the router records its real outcome when it lands) or ``skipped`` (the target cannot
    carry this request). Times are in milliseconds of the router's clock.
    """

    target: str
    model_id: str
    pattern: str
    kind: AttemptKind
    outcome: str
    error_code: str | None
    started_ms: float
    """When the attempt began, counted from the start of the routed call."""
    latency_ms: float
    ttft_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "model_id": self.model_id,
            "pattern": self.pattern,
            "kind": self.kind.value,
            "outcome": self.outcome,
            "error_code": self.error_code,
            "started_ms": round(self.started_ms, 3),
            "latency_ms": round(self.latency_ms, 3),
            "ttft_ms": None if self.ttft_ms is None else round(self.ttft_ms, 3),
        }

    def describe(self) -> str:
        code = f" {self.error_code}" if self.error_code else ""
        return f"{self.target} {self.outcome}{code} after {self.latency_ms:.0f} ms"


@dataclass(frozen=True, slots=True)
class RoutingResult:
    """Where a routed call went and why: the decision, and every attempt in start order."""

    decision_id: int
    request_class: str
    reason: str
    """The decision's reason (``primary``, ``canary``, ``best``, ``probe``, ... ``+budget``)."""
    attempts: tuple[Attempt, ...]
    target: str | None
    """The target that answered; ``None`` when none did."""
    latency_ms: float
    """From the start of the routed call to the answer (to the first token for a stream)."""
    budget_ms: float | None
    """The budget the call started with; ``None`` without a deadline."""

    @property
    def failovers(self) -> int:
        return sum(1 for a in self.attempts if a.kind is AttemptKind.FAILOVER)

    @property
    def hedged(self) -> bool:
        return any(a.kind is AttemptKind.HEDGE for a in self.attempts)

    @property
    def retries(self) -> int:
        return sum(1 for a in self.attempts if a.kind is AttemptKind.RETRY)

    def describe(self) -> str:
        return "; ".join(a.describe() for a in self.attempts) or "(none)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision_id": self.decision_id,
            "request_class": self.request_class,
            "reason": self.reason,
            "target": self.target,
            "latency_ms": round(self.latency_ms, 3),
            "budget_ms": self.budget_ms,
            "failovers": self.failovers,
            "hedged": self.hedged,
            "retries": self.retries,
            "attempts": [a.to_dict() for a in self.attempts],
        }


class ConverseResponse(dict[str, Any]):
    """The Converse response (a plain ``dict``, as boto3 returns it) with ``routing``.

    For a SageMaker target the dict is built by the endpoint mapping in Converse's shape
    (``output.message``, ``stopReason``, ``usage``, ``metrics``).
    """

    routing: RoutingResult

    def __init__(self, response: dict[str, Any], routing: RoutingResult) -> None:
        super().__init__(response)
        self.routing = routing
