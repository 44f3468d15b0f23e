"""The primary-with-failover switcher (seed section 5.1, ``DynamicPatternSwitcher``).

One target is the *primary*. When it degrades - unavailable (breaker not closed), predicted
p99 above ``latency_threshold_ms``, error rate above ``error_rate_threshold`` (over at least
``min_requests`` calls), or capacity use above ``capacity_threshold`` - the switcher moves the
primary to the first target in ``order`` that is available, below both thresholds and within
the latency threshold. The seed does not check the candidate's latency, so it could switch to
a slower target; here a slow candidate is skipped. The seed also never switches back; here the
preferred primary (the configured one) is restored once it has stayed healthy for
``return_after_s`` - hysteresis that stops flapping while still returning to the target that is
already paid for.

An operator may *pin* the primary (:meth:`PrimarySwitcher.pin`): while the pin holds, the
pinned target is the primary whatever its health, and nothing switches away from it; at its
time limit the pin lapses and the rules above apply again (a degraded pinned primary is then
left at the next evaluation; a healthy one is kept until the configured primary has been
healthy for ``return_after_s``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mangaroute.core.clock import NS_PER_S
from mangaroute.core.limits import check_fields
from mangaroute.core.snapshot import Pin, TargetView


@dataclass(frozen=True, slots=True)
class SwitcherSettings:
    primary: str
    order: tuple[str, ...]
    primary_weight: float = 0.80
    canary_weight: float = 0.05
    latency_threshold_ms: float = 2500.0
    error_rate_threshold: float = 0.05
    capacity_threshold: float = 0.85
    min_requests: int = 20
    return_after_s: float = 120.0
    history: int = 100
    fleet_hold_s: float = 60.0
    """With shared state: for this long after adopting the fleet's primary, this replica does
    not switch away from it on its *own* latency or error observations (other replicas may
    see it differently, and taking turns would flap the fleet's primary); unavailability and
    capacity, which the fleet shares, still switch at once."""

    def __post_init__(self) -> None:
        if self.primary not in self.order:
            raise ValueError(f"primary {self.primary!r} must appear in order {list(self.order)}")
        check_fields(self, "switcher")
        if self.canary_weight > self.primary_weight:
            raise ValueError("need 0 <= canary_weight <= primary_weight")


class PrimarySwitcher:
    """Holds the current primary and decides switches from snapshot views."""

    __slots__ = ("_healthy_since_ns", "_held_until_ns", "current", "pinned", "settings")

    def __init__(self, settings: SwitcherSettings) -> None:
        self.settings = settings
        self.current = settings.primary
        self.pinned: Pin | None = None
        """An operator's pin while it holds (it is cleared by :meth:`lapse` or
        :meth:`unpin`)."""
        self._healthy_since_ns: int | None = None
        self._held_until_ns = 0

    def pin(self, pin: Pin) -> None:
        """Hold ``pin.target`` as primary until ``pin.until_ns``; the next :meth:`evaluate`
        makes it the primary (a switch with reason ``pinned``)."""
        self.pinned = pin
        self._healthy_since_ns = None

    def unpin(self) -> Pin | None:
        """End the pin now (the primary stays where it is); returns the pin it ended."""
        pin, self.pinned = self.pinned, None
        self._healthy_since_ns = None
        return pin

    def lapse(self, now_ns: int) -> Pin | None:
        """End the pin if its time is up; returns the pin that lapsed."""
        pin = self.pinned
        if pin is None or now_ns < pin.until_ns:
            return None
        return self.unpin()

    def adopt(self, name: str, now_ns: int) -> None:
        """Make ``name`` the primary because the fleet chose it (shared state), and hold it
        for ``fleet_hold_s`` against this replica's own latency and error judgement. An
        operator's pin on this replica outranks the fleet: the next evaluation returns to
        the pinned target."""
        self.current = name
        self._healthy_since_ns = None
        self._held_until_ns = now_ns + round(self.settings.fleet_hold_s * NS_PER_S)

    def degradation(self, view: TargetView) -> str | None:
        """Why ``view`` is unfit to be primary, or ``None`` (the seed's ``_get_switch_reason``,
        all reasons joined)."""
        s = self.settings
        reasons = []
        if not view.available:
            reasons.append("unavailable")
        if view.p99_ms > s.latency_threshold_ms:
            reasons.append(f"high_latency({view.p99_ms:.0f}ms)")
        if view.requests >= s.min_requests and view.error_rate > s.error_rate_threshold:
            reasons.append(f"high_errors({view.error_rate:.1%})")
        if view.utilization > s.capacity_threshold:
            reasons.append(f"capacity({view.utilization:.1%})")
        return ", ".join(reasons) or None

    def evaluate(self, views: Mapping[str, TargetView], now_ns: int) -> tuple[str, str] | None:
        """Switch if needed; returns ``(new primary, reason)`` when the primary changed.
        While pinned, the pinned target is the primary and nothing else is judged."""
        pin = self.pinned
        if pin is not None:
            if self.current == pin.target:
                return None
            self.current = pin.target
            return pin.target, "pinned"
        s = self.settings
        preferred = views.get(s.primary)
        if self.current != s.primary and preferred is not None:
            if self.degradation(preferred) is None:
                if self._healthy_since_ns is None:
                    self._healthy_since_ns = now_ns
                elif now_ns - self._healthy_since_ns >= s.return_after_s * NS_PER_S:
                    self.current = s.primary
                    self._healthy_since_ns = None
                    return s.primary, "recovered"
            else:
                self._healthy_since_ns = None
        current = views.get(self.current)
        if current is None:
            return None
        reason = self.degradation(current)
        if reason is None:
            return None
        if (
            now_ns < self._held_until_ns
            and current.available
            and current.utilization <= s.capacity_threshold
        ):
            return None  # the fleet's choice, doubted only on this replica's own evidence
        for name in s.order:
            candidate = views.get(name)
            if name == self.current or candidate is None:
                continue
            if self.degradation(candidate) is None:
                self.current = name
                self._healthy_since_ns = None
                return name, reason
        return None
