"""What one call reported, as the router hands it to its observer.

``Router.record()`` validates the figures, updates the target's window and breaker, and - only
when an observer is attached - wraps them in one :class:`Observation` for
:meth:`~mangaroute.core.observer.Observer.on_outcome`. Without an observer none is built.

Like :class:`~mangaroute.core.decision.Decision` it is a named tuple: immutable, no
per-instance dict, and built in about a quarter of the time of a frozen dataclass, whose
``__init__`` pays one ``object.__setattr__`` per field (measured on CPython 3.11: ~0.5 us
against ~2 us for these nine fields; it is built once per recorded call).
"""

from __future__ import annotations

from typing import NamedTuple

from mangaroute.core.outcome import Outcome
from mangaroute.core.targets import Target


class Observation(NamedTuple):
    """One recorded call, already validated by the router (never prompt or answer text)."""

    target: Target
    """The deployment target that served (or failed) the call."""
    outcome: Outcome
    """``ok``, ``throttled``, ``error`` or ``timeout``."""
    latency_ms: float
    """Total time of the call, in milliseconds (finite, >= 0)."""
    ttft_ms: float | None
    """Time to the first token of a streamed answer, in milliseconds; ``None`` when not
    streamed or when no token arrived. Never more than ``latency_ms``."""
    input_tokens: int
    """Prompt tokens that were not read from or written to the prompt cache."""
    output_tokens: int
    """Tokens generated."""
    error_code: str | None
    """The AWS error code of a failed call (``ThrottlingException``, ...), else ``None``."""
    cache_read_tokens: int = 0
    """Prompt tokens read from the cache (Converse ``usage.cacheReadInputTokens``)."""
    cache_write_tokens: int = 0
    """Prompt tokens written to the cache (Converse ``usage.cacheWriteInputTokens``)."""

    def token_cost_usd(self) -> float:
        """What the call's tokens cost at the target's prices, prompt-cache reads and writes
        at its cache prices (hourly commitments are not per call)."""
        return self.target.pricing.token_cost_usd(
            self.input_tokens, self.output_tokens, self.cache_read_tokens, self.cache_write_tokens
        )
