"""Build TargetViews by hand for policy tests."""

from __future__ import annotations

from typing import Any

from mangaroute.core.breaker import BreakerState
from mangaroute.core.snapshot import TargetView
from mangaroute.core.targets import Capacity, LatencyProfile, Pattern, Pricing, Target


def make_target(name: str, pattern: Pattern = Pattern.BEDROCK_ON_DEMAND, **kw: Any) -> Target:
    kw.setdefault("prior", LatencyProfile(500, 800, 1200))
    return Target(name, pattern, f"model-{name}", "ap-northeast-1", **kw)


def make_view(
    name: str,
    *,
    p99: float = 1000.0,
    pattern: Pattern = Pattern.BEDROCK_ON_DEMAND,
    pricing: Pricing | None = None,
    capacity: Capacity | None = None,
    **fields: Any,
) -> TargetView:
    target = make_target(
        name, pattern, pricing=pricing or Pricing(), capacity=capacity or Capacity()
    )
    values: dict[str, Any] = dict(
        target=target,
        p50_ms=p99 / 2,
        p90_ms=p99 * 0.8,
        p99_ms=p99,
        latency_source="observed",
        ttft_p50_ms=100.0,
        ttft_p99_ms=300.0,
        samples=100,
        requests=100,
        ok=100,
        throttled=0,
        errors=0,
        timeouts=0,
        error_rate=0.0,
        throttle_rate=0.0,
        tokens_per_minute=0.0,
        requests_per_second=1.0,
        utilization=0.0,
        in_flight=0,
        breaker=BreakerState.CLOSED,
        breaker_reason="",
        ejections=0,
    )
    values.update(fields)
    return TargetView(**values)
