"""A call's deadline: an instant on the router's clock."""

from __future__ import annotations

import math
from dataclasses import dataclass

from mangaroute.core.clock import NS_PER_MS, Clock
from mangaroute.core.errors import InvalidRequest, echo

__all__ = ["Deadline"]


@dataclass(frozen=True, slots=True)
class Deadline:
    """The instant (router clock, monotonic ns) by which an answer must have arrived.

    Make one when a chat request arrives and pass it to every model call that serves it, so
    each call gets what is left (``Deadline.after(3000, clock)`` for the 3 s end-to-end budget);
    or pass ``budget_ms=`` to a single call.
    """

    at_ns: int

    @classmethod
    def after(cls, budget_ms: float, clock: Clock) -> Deadline:
        if type(budget_ms) not in (int, float) or not 0.0 <= budget_ms < math.inf:
            raise InvalidRequest(f"budget_ms must be a finite number >= 0, got {echo(budget_ms)}")
        return cls(clock() + round(budget_ms * NS_PER_MS))

    def remaining_ms(self, now_ns: int) -> float:
        """Milliseconds left at ``now_ns``; negative once passed."""
        return (self.at_ns - now_ns) / NS_PER_MS
