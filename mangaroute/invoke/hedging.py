"""Hedged requests: when the primary is slow, race the first fallback against it.

A hedge starts when the primary has not produced its first token (the whole answer, for a
non-streaming call) by ``after_fraction`` of the call's budget; whichever attempt answers
first wins and the other is cancelled (a stream is closed) or abandoned (a blocking boto3
call cannot be interrupted; its outcome is still recorded when it lands). Hedging cuts tail
latency at the price of extra calls, so a :class:`HedgeBudget` caps hedges to ``max_ratio``
of the calls over the last ``window`` calls - the "hedged requests" of Dean and Barroso,
"The Tail at Scale" (CACM 2013), with the retry budget of Finagle and gRPC's hedging
throttle. Calls without a budget are never hedged.

The delay can differ per request class (``per_class``): a class whose answers are long and
whose primary is often slow gains from an early hedge, a class answered in a few hundred ms
gains nothing and only pays for the extra calls. ``mangaroute.invoke.client`` ships the
delays ``scripts/tune_hedge.py`` chose on the simulator (docs/invoke.md, "Hedging").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from mangaroute.core.limits import RangeError, check_fields, violation
from mangaroute.invoke.retry import ExtraAttempts

__all__ = ["HedgeBudget", "HedgePolicy"]


@dataclass(frozen=True, slots=True)
class HedgePolicy:
    """When to hedge, and how many hedges the budget allows.

    ``HedgePolicy()`` hedges every class at half its budget; ``InvokeSettings()``'s default
    (:data:`mangaroute.invoke.client.DEFAULT_HEDGE`) hedges only the classes the simulator
    found it pays for."""

    after_fraction: float | None = 0.5
    """Hedge when the primary has no first token after this fraction of the budget; ``None``:
    classes not in ``per_class`` are not hedged."""
    max_ratio: float = 0.05
    """Hedges may be at most this share of calls over the sliding window (5 %)."""
    window: int = 1000
    """The sliding count of calls the ratio is measured over."""
    per_class: Mapping[str, float | None] = field(default_factory=lambda: MappingProxyType({}))
    """``after_fraction`` for some request classes (``None``: never hedge that class). The
    budget (``max_ratio``, ``window``) stays one for every class of the client."""

    def __post_init__(self) -> None:
        check_fields(self, "hedge")
        for name, fraction in self.per_class.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"hedge.per_class: class names must be text, got {name!r}")
            if fraction is not None:
                reason = violation("hedge.after_fraction", fraction)
                if reason is not None:
                    raise RangeError(f"per_class.{name}", reason)
        object.__setattr__(self, "per_class", MappingProxyType(dict(self.per_class)))

    def after_fraction_for(self, request_class: str) -> float | None:
        """The hedge delay of ``request_class`` as a fraction of its budget (``None``: no
        hedge)."""
        return self.per_class.get(request_class, self.after_fraction)

    @property
    def hedges_any(self) -> bool:
        """Whether some class is hedged at all."""
        return self.after_fraction is not None or any(
            f is not None for f in self.per_class.values()
        )


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
