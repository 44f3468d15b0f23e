"""Retries of fast failures, bounded by a retry budget.

A call whose attempt fails fast - an error or a throttle with most of its budget left - can
often still be answered: on the same target when its errors look random (a 5xx on a target
that answers most calls), on the next fallback otherwise. Retrying without a bound turns an
outage into a retry storm, so retries share a budget with the calls around them: at most
``max_ratio`` of the calls over a sliding window of ``window`` calls, plus a small
``reserve`` so a quiet process can still retry. This is the retry budget of Finagle
(``RetryBudget``: a percentage of requests, 20 % by default, plus a minimum rate) and of
Envoy's retry budgets (``budget_percent`` of active requests, 20 % by default, plus a minimum
concurrency), counted over calls rather than seconds so virtual time needs no timer.

A retry waits a jittered exponential backoff first ("full jitter": uniformly between 0 and
``backoff_ms`` x 2^(n-1) for the n-th retry of the call), and only if the target's predicted
latency still fits the budget left after it.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from mangaroute.core.limits import check_fields, check_value

__all__ = ["ExtraAttempts", "RetryBudget", "RetryPolicy"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When a failed attempt may be retried (off unless you pass one)."""

    max_per_call: int = 1
    """Retries one call may make (each a new attempt, on the same target or the next)."""
    max_ratio: float = 0.2
    """Retries may be at most this share of calls over the sliding window (20 %)."""
    window: int = 1000
    """The sliding count of calls the ratio is measured over."""
    reserve: int = 10
    """Retries allowed in the window whatever the traffic (a quiet process can retry)."""
    backoff_ms: float = 25.0
    """Full-jitter backoff base: the n-th retry waits uniformly 0 .. this x 2^(n-1)."""
    fast_fraction: float = 0.5
    """A failure is fast when it came within this fraction of the call's budget."""
    same_target_below: float = 0.5
    """Retry an error on the same target when its observed error rate is below this (its
    errors look random); otherwise, and for throttles, the next fallback first."""
    evidence_calls: int = 20
    """Calls in the target's window before its error rate counts: with fewer, an error
    looks random (one failed call of one is not a pattern)."""
    per_class: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    """``max_per_call`` for some request classes (0: never retry that class)."""

    def __post_init__(self) -> None:
        check_fields(self, "retry")
        for name, count in self.per_class.items():
            check_value("retry.max_per_call", count)
            if not isinstance(name, str) or not name:
                raise ValueError(f"retry.per_class: class names must be text, got {name!r}")
        object.__setattr__(self, "per_class", MappingProxyType(dict(self.per_class)))

    def retries_for(self, request_class: str) -> int:
        """Retries a call of ``request_class`` may make."""
        return self.per_class.get(request_class, self.max_per_call)

    def backoff_bound_ms(self, nth: int) -> float:
        """The most the ``nth`` retry (1-based) of a call waits."""
        return self.backoff_ms * (1 << max(0, nth - 1))


class ExtraAttempts:
    """Extra attempts (hedges, retries) allowed over the last ``window`` calls: at most
    ``max_ratio`` per call, plus ``reserve``.

    Every routed call is counted with :meth:`count_call`; :meth:`try_spend` grants an extra
    attempt only if, with it, the extras of the calls in the sliding window stay within
    ``reserve + max_ratio`` x those calls. An extra belongs to the newest call, and leaves the
    window with it, so the bound holds at every moment, not only when an extra is granted.
    O(1), thread-safe.
    """

    __slots__ = ("_extras", "_lock", "_ratio", "_reserve", "_window")

    def __init__(self, max_ratio: float, window: int, reserve: int = 0) -> None:
        self._ratio = max_ratio
        self._reserve = reserve
        self._window: deque[int] = deque(maxlen=window)
        """Extras spent per call, oldest call first."""
        self._extras = 0
        self._lock = threading.Lock()

    def count_call(self) -> None:
        with self._lock:
            window = self._window
            if len(window) == window.maxlen:
                self._extras -= window[0]
            window.append(0)

    def try_spend(self) -> bool:
        """Take one extra attempt from the budget; False when the window has none left (or
        holds no call yet)."""
        with self._lock:
            window = self._window
            if not window or self._extras + 1 > self._reserve + self._ratio * len(window):
                return False
            window[-1] += 1
            self._extras += 1
            return True

    @property
    def extras(self) -> int:
        """Extra attempts of the calls within the current window."""
        return self._extras

    @property
    def calls(self) -> int:
        """Calls within the current window."""
        return len(self._window)


class RetryBudget(ExtraAttempts):
    """The retries a :class:`RetryPolicy` allows, shared by every call of one client."""

    __slots__ = ()

    def __init__(self, policy: RetryPolicy) -> None:
        super().__init__(policy.max_ratio, policy.window, policy.reserve)

    @property
    def retries(self) -> int:
        """Retries within the current window."""
        return self.extras
