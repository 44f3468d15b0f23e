"""Routing context for drop-in calls: a context variable, and ``requestMetadata`` keys.

Frameworks call ``converse(**kwargs)`` with boto3's arguments only, so the routing context a
``RoutedClient`` call takes as keyword arguments (session id for sticky picks, latency
budget) reaches the drop-in client another way: from ``with mangaroute.context(...)`` around
the framework call, or per call from ``requestMetadata`` keys the framework passes through
(``mangaroute.session_id``, ``mangaroute.budget_ms``; both removed before the request is
sent). A request's own keys win over the surrounding context.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace

from mangaroute.core.errors import InvalidRequest, echo
from mangaroute.invoke.deadline import Deadline

__all__ = [
    "BUDGET_KEY",
    "SESSION_KEY",
    "RoutingContext",
    "context",
    "current_context",
    "parse_budget_ms",
    "split_metadata",
]

SESSION_KEY = "mangaroute.session_id"
"""``requestMetadata`` key: the session id sticky pickers hash (e.g. the chat session)."""
BUDGET_KEY = "mangaroute.budget_ms"
"""``requestMetadata`` key: the call's latency budget in milliseconds (e.g. ``"1500"``)."""


@dataclass(frozen=True, slots=True)
class RoutingContext:
    """What a routed call is chosen with besides its request class.

    Its time limit is ``budget_ms`` (each call gets that much) or ``deadline`` (an instant on
    the router's clock that every call in the block shares - an agent's whole tool loop
    within the 3 s of one chat request), never both.
    """

    session_id: str | None = None
    budget_ms: float | None = None
    deadline: Deadline | None = None

    def __post_init__(self) -> None:
        if self.budget_ms is not None:
            _check_budget(self.budget_ms, "budget_ms")
            if self.deadline is not None:
                raise InvalidRequest("pass budget_ms or deadline, not both")

    def over(self, outer: RoutingContext) -> RoutingContext:
        """This context's values, with ``outer``'s where this one has none (the time limit -
        budget or deadline - as one value)."""
        if self is _EMPTY or outer is _EMPTY:  # the common case, on every routed call
            return outer if self is _EMPTY else self
        limit = self if self.budget_ms is not None or self.deadline is not None else outer
        return RoutingContext(
            self.session_id if self.session_id is not None else outer.session_id,
            limit.budget_ms,
            limit.deadline,
        )


_EMPTY = RoutingContext()
_CURRENT: ContextVar[RoutingContext] = ContextVar("mangaroute_routing_context", default=_EMPTY)


def current_context() -> RoutingContext:
    """The routing context of the running code (empty outside any ``context()`` block)."""
    return _CURRENT.get()


@contextmanager
def context(
    *,
    session_id: str | None = None,
    budget_ms: float | None = None,
    deadline: Deadline | None = None,
) -> Iterator[RoutingContext]:
    """Route drop-in calls made inside the block with this session id and time limit: a
    ``budget_ms`` for each call, or a ``deadline`` all of them share (make it with the drop-in
    client's ``deadline(ms)``, on the router's clock).

    Blocks nest: an inner block's values replace the outer's, the rest are inherited. The
    value lives in a :class:`contextvars.ContextVar`, so it follows asyncio tasks and the
    threads frameworks run boto3 in when they copy the context (``asyncio.to_thread``,
    ``anyio.to_thread.run_sync``); a plain ``ThreadPoolExecutor.submit`` does not copy it.
    """
    if session_id is not None and not isinstance(session_id, str):
        raise InvalidRequest(f"session_id must be a string, got {type(session_id).__name__}")
    if deadline is not None and not isinstance(deadline, Deadline):
        raise InvalidRequest(
            f"deadline must be a Deadline (bedrock.deadline(ms)), got {type(deadline).__name__}"
        )
    made = replace(_EMPTY, session_id=session_id, budget_ms=budget_ms, deadline=deadline)
    inner = made.over(_CURRENT.get())
    token = _CURRENT.set(inner)
    try:
        yield inner
    finally:
        _CURRENT.reset(token)


def _check_budget(value: float, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequest(f"{field} must be a number of milliseconds, got {echo(value)}")
    if not math.isfinite(value) or value <= 0:
        raise InvalidRequest(f"{field} must be a positive, finite number of ms, got {echo(value)}")
    return float(value)


def parse_budget_ms(text: str) -> float:
    """Read ``requestMetadata["mangaroute.budget_ms"]``: a positive number of milliseconds."""
    field = f"requestMetadata[{BUDGET_KEY!r}]"
    try:
        value = float(text)
    except ValueError:
        raise InvalidRequest(
            f"{field} must be a positive number of milliseconds (e.g. '1500'), got {echo(text)}"
        ) from None
    return _check_budget(value, field)


def split_metadata(
    metadata: Mapping[str, str] | None,
) -> tuple[RoutingContext, dict[str, str] | None]:
    """The routing context a request's ``requestMetadata`` carries, and the metadata left to
    send (``None`` when nothing is left: Bedrock requires at least one entry if present)."""
    if not metadata:
        return _EMPTY, None if metadata is None else dict(metadata)
    rest = {k: v for k, v in metadata.items() if k not in (SESSION_KEY, BUDGET_KEY)}
    budget = metadata.get(BUDGET_KEY)
    found = RoutingContext(
        session_id=metadata.get(SESSION_KEY),
        budget_ms=None if budget is None else parse_budget_ms(budget),
    )
    return found, rest or None
