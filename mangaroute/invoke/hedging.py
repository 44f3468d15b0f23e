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

from dataclasses import dataclass

from mangaroute.core.limits import check_fields
from mangaroute.invoke.retry import ExtraAttempts

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


class HedgeBudget(ExtraAttempts):
    """Hedges allowed over the last ``window`` events: at most ``max_ratio`` per call.

    Every routed call is counted with :meth:`count_call`; :meth:`try_spend` grants a hedge
    only if, with it, the hedges in the sliding window stay within ``max_ratio`` of the calls
    in it - so extra calls never exceed that share of the calls around them. O(1),
    thread-safe (the same budget as retries, :class:`~mangaroute.invoke.retry.RetryBudget`,
    without a reserve).
    """

    __slots__ = ()

    def __init__(self, policy: HedgePolicy) -> None:
        super().__init__(policy.max_ratio, policy.window)

    @property
    def hedges(self) -> int:
        """Hedges within the current window."""
        return self.extras
