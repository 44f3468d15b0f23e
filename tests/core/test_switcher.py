"""The seed's primary-with-failover switcher, corrected."""

from __future__ import annotations

from typing import Any

import pytest

from mangaroute.core.breaker import BreakerState
from mangaroute.core.policy.switcher import PrimarySwitcher, SwitcherSettings
from mangaroute.core.snapshot import TargetView

from .views import make_view

S = 1_000_000_000
ORDER = ("pt", "haiku", "sonnet", "sm")


def views(**changes: dict[str, Any]) -> dict[str, TargetView]:
    return {name: make_view(name, **changes.get(name, {})) for name in ORDER}


def switcher(**kw: Any) -> PrimarySwitcher:
    return PrimarySwitcher(SwitcherSettings(primary="pt", order=ORDER, **kw))


def test_a_healthy_primary_stays() -> None:
    s = switcher()
    assert s.evaluate(views(), 0) is None
    assert s.current == "pt"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"breaker": BreakerState.OPEN}, "unavailable"),
        ({"p99": 2600.0}, "high_latency(2600ms)"),
        ({"error_rate": 0.06}, "high_errors(6.0%)"),
        ({"utilization": 0.9}, "capacity(90.0%)"),
    ],
)
def test_each_threshold_moves_the_primary_to_the_next_healthy_target(
    change: dict[str, Any], reason: str
) -> None:
    s = switcher()
    assert s.evaluate(views(pt=change), 0) == ("haiku", reason)
    assert s.current == "haiku"


def test_error_rate_needs_a_minimum_volume() -> None:
    assert switcher().evaluate(views(pt={"error_rate": 0.5, "requests": 5}), 0) is None


def test_degraded_candidates_are_skipped_including_slow_ones() -> None:
    s = switcher()
    result = s.evaluate(
        views(pt={"breaker": BreakerState.OPEN}, haiku={"p99": 3000.0}, sonnet={"error_rate": 0.2}),
        0,
    )
    assert result == ("sm", "unavailable")


def test_no_switch_when_every_alternative_is_degraded() -> None:
    bad = {"breaker": BreakerState.OPEN}
    s = switcher()
    assert s.evaluate(views(pt=bad, haiku=bad, sonnet=bad, sm=bad), 0) is None
    assert s.current == "pt"


def test_the_preferred_primary_returns_after_staying_healthy() -> None:
    s = switcher(return_after_s=120)
    s.evaluate(views(pt={"breaker": BreakerState.OPEN}), 0)
    assert s.current == "haiku"
    assert s.evaluate(views(), 10 * S) is None  # healthy since t=10
    assert s.evaluate(views(), 129 * S) is None
    s.evaluate(views(pt={"p99": 9000.0}), 100 * S)  # a relapse restarts the clock
    assert s.evaluate(views(), 130 * S) is None
    assert s.evaluate(views(), 249 * S) is None
    assert s.evaluate(views(), 250 * S) == ("pt", "recovered")


def test_settings_validation() -> None:
    with pytest.raises(ValueError, match="must appear in order"):
        SwitcherSettings(primary="x", order=ORDER)
    with pytest.raises(ValueError, match="canary_weight"):
        SwitcherSettings(primary="pt", order=ORDER, primary_weight=0.1, canary_weight=0.5)
