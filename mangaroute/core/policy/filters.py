"""Filters: which targets may take traffic right now."""

from __future__ import annotations

from dataclasses import dataclass

from mangaroute.core.limits import check_fields
from mangaroute.core.snapshot import TargetView


@dataclass(frozen=True, slots=True)
class Healthy:
    """Only targets whose breaker is closed (half-open ones get probe calls, not traffic)."""

    name: str = "healthy"

    def exclude(self, view: TargetView) -> str | None:
        return None if view.available else f"breaker_{view.breaker.value}"


@dataclass(frozen=True, slots=True)
class Headroom:
    """Only targets with capacity left: utilization below ``max_utilization`` and, once they
    have seen ``min_requests`` calls in the window, a throttle rate below
    ``max_throttle_rate`` (a throttled target is healthy but full)."""

    max_utilization: float = 0.95
    max_throttle_rate: float = 0.25
    min_requests: int = 10
    name: str = "headroom"

    def __post_init__(self) -> None:
        # the section's other keys are the throttle bet's (core/policy/throttle.py)
        check_fields(self, "headroom", ("max_utilization", "max_throttle_rate", "min_requests"))

    def exclude(self, view: TargetView) -> str | None:
        return self.at_capacity(view) or self.throttling(view)

    def at_capacity(self, view: TargetView) -> str | None:
        """The utilization cut's reason, or ``None``."""
        if view.utilization >= self.max_utilization:
            return f"at_capacity({view.utilization:.2f})"
        return None

    def throttling(self, view: TargetView) -> str | None:
        """The throttle cut's reason, or ``None``."""
        if view.requests >= self.min_requests and view.throttle_rate >= self.max_throttle_rate:
            return f"throttling({view.throttle_rate:.2f})"
        return None


@dataclass(frozen=True, slots=True)
class LatencyCeiling:
    """The seed's hard filter: drop a target whose effective p99 exceeds a ceiling (the seed
    uses 1.5 x the target p99: 2,250 ms for MangaAssist's 1,500 ms inference budget)."""

    max_p99_ms: float = 2250.0
    name: str = "latency_ceiling"

    def __post_init__(self) -> None:
        check_fields(self, "latency_ceiling")

    def exclude(self, view: TargetView) -> str | None:
        if view.p99_ms > self.max_p99_ms:
            return f"p99_over_ceiling({view.p99_ms:.0f}ms)"
        return None
