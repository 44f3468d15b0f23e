"""Per-target health: a closed -> open -> half-open circuit breaker.

Modelled on Envoy's outlier detection (consecutive failures, a failure percentage over a
minimum request volume per interval, an ejection time that grows with each ejection) and on
the classic half-open probe of a circuit breaker:

* **closed** - the target serves traffic. ``consecutive_failures`` failures in a row, or a
  failure rate of at least ``error_rate`` over at least ``min_requests`` calls in the current
  ``interval_s``, open the breaker. Throttles are neither failures nor successes: a throttled
  target is healthy but full (capacity handles that).
* **open** - no traffic for the cool-down: ``cooldown_s`` doubled for every ejection since the
  target last stayed healthy for ``max_cooldown_s``, capped at ``max_cooldown_s``. The
  doubling stops once it reaches the cap (the ejection count goes on): a target that stays
  down keeps being probed every ``max_cooldown_s`` for as long as the outage lasts, where an
  uncapped ``2 ** ejections`` would leave the float range after 1,024 ejections (about 85
  hours at the shipped 30 s / 300 s) and raise ``OverflowError`` out of ``record()``.
* **half-open** - at most ``half_open_probes`` probe calls at a time (a probe that never
  reports frees its slot after ``probe_timeout_s``); ``successes_to_close`` successful probes
  close the breaker, one failed probe opens it again with a longer cool-down.

The breaker is not thread-safe; the router calls it under the target's lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mangaroute.core.clock import NS_PER_S
from mangaroute.core.limits import check_fields


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """Thresholds of a :class:`Breaker`; see the module docstring for their meaning."""

    consecutive_failures: int = 5
    error_rate: float = 0.5
    min_requests: int = 20
    interval_s: float = 10.0
    cooldown_s: float = 30.0
    max_cooldown_s: float = 300.0
    half_open_probes: int = 1
    probe_timeout_s: float = 30.0
    successes_to_close: int = 3

    def __post_init__(self) -> None:
        check_fields(self, "breaker")
        if self.max_cooldown_s < self.cooldown_s:
            raise ValueError(
                f"max_cooldown_s ({self.max_cooldown_s}) must be >= cooldown_s ({self.cooldown_s})"
            )


class Breaker:
    """The health state machine of one target."""

    __slots__ = (
        "_consecutive",
        "_failures",
        "_interval_start_ns",
        "_max_doublings",
        "_policy",
        "_probes",
        "_requests",
        "_successes",
        "changed_ns",
        "ejections",
        "reason",
        "reopen_ns",
        "state",
    )

    def __init__(self, policy: BreakerPolicy, now_ns: int) -> None:
        self._policy = policy
        self._max_doublings = doublings_to_reach(policy.cooldown_s, policy.max_cooldown_s)
        self.state = BreakerState.CLOSED
        self.ejections = 0
        self.changed_ns = now_ns
        self.reopen_ns = 0
        self.reason = ""
        self._consecutive = 0
        self._requests = 0
        self._failures = 0
        self._interval_start_ns = now_ns
        self._probes: list[int] = []
        self._successes = 0

    def set_policy(self, policy: BreakerPolicy) -> None:
        """Judge from now on by ``policy`` (a config reload), keeping the state, the
        ejection count and the current interval's counts."""
        self._policy = policy
        self._max_doublings = doublings_to_reach(policy.cooldown_s, policy.max_cooldown_s)

    def on_result(self, now_ns: int, failure: bool) -> bool:
        """Feed one non-throttled result; returns True when the state changed."""
        if self.state is BreakerState.CLOSED:
            return self._on_closed_result(now_ns, failure)
        if self.state is BreakerState.HALF_OPEN:
            if self._probes:
                self._probes.pop(0)
            if failure:
                self._open(now_ns, "probe_failed")
                return True
            self._successes += 1
            if self._successes >= self._policy.successes_to_close:
                self._close(now_ns)
                return True
        return False  # results that arrive while open change nothing

    def _on_closed_result(self, now_ns: int, failure: bool) -> bool:
        policy = self._policy
        if now_ns - self._interval_start_ns >= policy.interval_s * NS_PER_S:
            self._interval_start_ns = now_ns
            self._requests = 0
            self._failures = 0
            if self.ejections and now_ns - self.changed_ns >= policy.max_cooldown_s * NS_PER_S:
                self.ejections = 0
        self._requests += 1
        if not failure:
            self._consecutive = 0
            return False
        self._failures += 1
        self._consecutive += 1
        if self._consecutive >= policy.consecutive_failures:
            self._open(now_ns, f"consecutive_failures({self._consecutive})")
            return True
        if (
            self._requests >= policy.min_requests
            and self._failures >= policy.error_rate * self._requests
        ):
            self._open(now_ns, f"error_rate({self._failures}/{self._requests})")
            return True
        return False

    def tick(self, now_ns: int) -> bool:
        """Let time act: an open breaker whose cool-down is over becomes half-open."""
        if self.state is BreakerState.OPEN and now_ns >= self.reopen_ns:
            self.state = BreakerState.HALF_OPEN
            self.changed_ns = now_ns
            self.reason = "cooldown_elapsed"
            self._successes = 0
            self._probes.clear()
            return True
        return False

    def try_probe(self, now_ns: int) -> bool:
        """Claim a probe slot in half-open; False when all slots are taken."""
        if self.state is not BreakerState.HALF_OPEN:
            return False
        timeout_ns = self._policy.probe_timeout_s * NS_PER_S
        self._probes = [start for start in self._probes if now_ns - start < timeout_ns]
        if len(self._probes) >= self._policy.half_open_probes:
            return False
        self._probes.append(now_ns)
        return True

    def release_probe(self) -> None:
        """A probe call was abandoned before it ran: free its slot."""
        if self._probes:
            self._probes.pop(0)

    def force_open(
        self, now_ns: int, reason: str, cooldown_s: float | None = None, *, exact: bool = False
    ) -> bool:
        """Eject now (for example after AccessDenied: the target cannot work until someone
        fixes its configuration). Returns True when the state changed. An already open
        breaker keeps the later of its cool-down end and ``cooldown_s`` from now; with
        ``exact`` (an operator's eject, whose time limit is what the operator said) it ends
        exactly ``cooldown_s`` from now."""
        if self.state is BreakerState.OPEN:
            # already ejected (say, a probe just failed): lengthen the cool-down if asked,
            # but this is the same ejection, not a new one
            if cooldown_s is not None:
                end = now_ns + round(cooldown_s * NS_PER_S)
                self.reopen_ns = end if exact else max(self.reopen_ns, end)
                self.reason = reason
            return False
        self._open(now_ns, reason, cooldown_s)
        return True

    def force_close(self, now_ns: int, reason: str) -> bool:
        """Restore now (an operator knows the target is fine): close the breaker whatever
        its state, with fresh failure counts; the ejection count is kept, so a target that
        fails again soon gets the longer cool-down. Returns True when the state changed."""
        if self.state is BreakerState.CLOSED:
            return False
        self._close(now_ns)
        self.reason = reason
        self._probes.clear()
        return True

    def _open(self, now_ns: int, reason: str, cooldown_s: float | None = None) -> None:
        policy = self._policy
        self.ejections += 1
        if cooldown_s is None:
            doublings = min(self.ejections - 1, self._max_doublings)
            cooldown_s = min(policy.cooldown_s * 2.0**doublings, policy.max_cooldown_s)
        self.state = BreakerState.OPEN
        self.changed_ns = now_ns
        self.reopen_ns = now_ns + round(cooldown_s * NS_PER_S)
        self.reason = reason
        self._probes.clear()

    def _close(self, now_ns: int) -> None:
        self.state = BreakerState.CLOSED
        self.changed_ns = now_ns
        self.reason = "probes_succeeded"
        self._consecutive = 0
        self._requests = 0
        self._failures = 0
        self._interval_start_ns = now_ns


def doublings_to_reach(start: float, ceiling: float) -> int:
    """How many doublings take ``start`` to ``ceiling`` or beyond: the last exponent of the
    cool-down that still matters. At most 1,023, so ``2.0 ** n`` itself never overflows."""
    doublings = 0
    while doublings < 1023 and start * 2.0**doublings < ceiling:
        doublings += 1
    return doublings
