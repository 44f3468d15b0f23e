"""Hedged requests: when the primary is slow, race the first fallback against it.

A hedge starts when the primary has not produced its first token (the whole answer, for a
non-streaming call) by ``after_fraction`` of the call's budget; whichever attempt answers
first wins and the other is cancelled (a stream is closed) or abandoned (a blocking boto3
call cannot be interrupted; its outcome is still recorded when it lands). Hedging cuts tail
latency at the price of extra calls, so a :class:`HedgeBudget` caps hedges to ``max_ratio``
of the calls over the last ``window`` calls - the "hedged requests" of Dean and Barroso,
"The Tail at Scale" (CACM 2013), with the retry budget of Finagle and gRPC's hedging
throttle. Calls without a budget are never hedged.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

from mangaroute.core.limits import check_fields

__all__ = ["HedgeBudget", "HedgePolicy"]


@dataclass(frozen=True, slots=True)
class HedgePolicy:
    """When to hedge, and how many hedges the budget allows (off unless you pass one)."""

    after_fraction: float = 0.5
    """Hedge when the primary has no first token after this fraction of the budget."""
    max_ratio: float = 0.05
    """Hedges may be at most this share of calls over the sliding window (5 %)."""
    window: int = 1000
    """The sliding count of calls the ratio is measured over."""

    def __post_init__(self) -> None:
        check_fields(self, "hedge")


class HedgeBudget:
    """Hedges allowed over the last ``window`` events: at most ``max_ratio`` per call.

    Every routed call is counted with :meth:`count_call`; :meth:`try_spend` grants a hedge
    only if, with it, the hedges in the sliding window stay within ``max_ratio`` of the calls
    in it - so extra calls never exceed that share of the calls around them. O(1),
    thread-safe.
    """

    __slots__ = ("_hedges", "_lock", "_ratio", "_window")

    def __init__(self, policy: HedgePolicy) -> None:
        self._ratio = policy.max_ratio
        self._window: deque[bool] = deque(maxlen=policy.window)
        self._hedges = 0
        self._lock = threading.Lock()

    def count_call(self) -> None:
        with self._lock:
            self._push(hedge=False)

    def try_spend(self) -> bool:
        """Take one hedge from the budget; False when the window has none left."""
        with self._lock:
            calls = len(self._window) - self._hedges
            if self._hedges + 1 > self._ratio * calls:
                return False
            self._push(hedge=True)
            return True

    def _push(self, *, hedge: bool) -> None:
        window = self._window
        if len(window) == window.maxlen and window[0]:
            self._hedges -= 1
        window.append(hedge)
        if hedge:
            self._hedges += 1

    @property
    def hedges(self) -> int:
        """Hedges within the current window."""
        return self._hedges

    @property
    def calls(self) -> int:
        """Calls (not hedges) within the current window."""
        return len(self._window) - self._hedges
