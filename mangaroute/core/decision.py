"""What ``choose()`` returns."""

from __future__ import annotations

from typing import Any, NamedTuple

from mangaroute.core.targets import Target


class Decision(NamedTuple):
    """Where one call should go, why, and where to go next if it fails.

    A tuple underneath (cheap to build on the hot path) and immutable.
    """

    decision_id: int
    """Unique within a router; pass the decision back to ``record()``."""
    target: Target
    fallbacks: tuple[Target, ...]
    """Other usable targets for this request, in the order to try them."""
    reason: str
    """Machine-readable: ``primary``, ``canary``, ``best``, ``weighted``, ``probe``,
    ``panic``, with ``+budget`` when the latency budget dropped targets and ``+over_budget``
    when no target fits the budget."""
    request_class: str
    policy: str
    created_ns: int

    @property
    def attempts(self) -> tuple[Target, ...]:
        """The chosen target followed by its fallbacks."""
        return (self.target, *self.fallbacks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision_id": self.decision_id,
            "target": self.target.identity(),
            "fallbacks": [t.identity() for t in self.fallbacks],
            "reason": self.reason,
            "request_class": self.request_class,
            "policy": self.policy,
        }
