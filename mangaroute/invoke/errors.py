"""The errors a routed call raises on purpose, below :class:`mangaroute.MangarouteError`.

::

    MangarouteError
    └── InvocationError            every routed-call error; carries the attempts so far
        ├── FailoverExhausted      no target answered and no fallback is left to try
        │   └── DeadlineExceeded   the deadline ran out first (also a ``TimeoutError``)
        ├── MalformedResponse      an endpoint answered a body its mapping cannot read
        ├── UnsupportedRequest     a target cannot carry this request (skipped, not blamed)
        └── UnsupportedTarget      no invoker for a target's pattern (raised at construction)

Errors the caller must fix (``ValidationException``) and errors after the first streamed
token are *not* wrapped: they reach the caller unchanged. A wrapped error's ``__cause__`` is
the last target's own exception. Messages name targets, outcomes and error codes only; no
prompt or answer text ever goes into one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mangaroute.core.errors import MangarouteError

if TYPE_CHECKING:
    from mangaroute.invoke.result import Attempt, RoutingResult

__all__ = [
    "DeadlineExceeded",
    "FailoverExhausted",
    "InvocationError",
    "MalformedResponse",
    "UnsupportedRequest",
    "UnsupportedTarget",
]


class InvocationError(MangarouteError):
    """A routed call failed; ``routing`` holds the decision and every attempt made."""

    routing: RoutingResult | None = None

    @property
    def attempts(self) -> tuple[Attempt, ...]:
        return self.routing.attempts if self.routing is not None else ()


class FailoverExhausted(InvocationError):
    """Every target tried failed and no fallback is left (or a rule stopped the failover,
    e.g. a second ``ModelError``)."""

    def __init__(self, why: str, routing: RoutingResult) -> None:
        self.why = why
        self.routing = routing
        super().__init__(f"no target answered: {why}; attempts: {routing.describe()}")


class DeadlineExceeded(FailoverExhausted, TimeoutError):
    """The call's deadline ran out - or what is left of it fits no remaining fallback -
    before any target answered."""


class MalformedResponse(InvocationError, ValueError):
    """A SageMaker endpoint answered a body its mapping cannot read; handled like the
    endpoint's own ``ModelError`` (at most one failover)."""


class UnsupportedRequest(InvocationError, ValueError):
    """A target's invoker cannot express this request (e.g. ``toolConfig`` for a SageMaker
    text-generation endpoint). The target is skipped, not held responsible."""


class UnsupportedTarget(InvocationError, ValueError):
    """No invoker handles a configured target's pattern (Lambda, unless you pass one)."""
