"""What a stand-in target does on each call: the script, and the pure planner that reads it.

A ``TargetScript`` is immutable data. ``plan_call`` turns it, the call's index, the virtual
time and an rng into a ``CallPlan`` — which error (if any), how long to the first token, how
many output tokens, whether the stream breaks — without touching a clock or a socket, so a
test can check the scripting with a seeded ``random.Random`` alone.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from types import MappingProxyType

from mangaroute.testing.content import filler_pieces, split_pieces
from mangaroute.testing.errors import Service, stream_exception_type

__all__ = [
    "Burst",
    "CallPlan",
    "Latency",
    "Outage",
    "StreamFailure",
    "TargetScript",
    "ToolUse",
    "plan_call",
]

_Z99 = NormalDist().inv_cdf(0.99)


@dataclass(frozen=True, slots=True)
class Latency:
    """Time to first token, lognormal through a (p50, p99) pair, plus time per output token.

    A lognormal with median m and 99th percentile q has mu = ln m and
    sigma = (ln q − ln m) / z₀.₉₉ with z₀.₉₉ ≈ 2.326 — the usual way to fit a right-skewed
    latency from two quantiles. ``ttft_p99_ms=None`` (or equal to p50) makes it constant.
    Streaming total ≈ TTFT + output tokens × ``per_token_ms``, as the seed's latency profiles
    model generation.
    """

    ttft_p50_ms: float = 0.0
    ttft_p99_ms: float | None = None
    per_token_ms: float = 0.0

    def __post_init__(self) -> None:
        p99 = self.ttft_p50_ms if self.ttft_p99_ms is None else self.ttft_p99_ms
        if not (0 <= self.ttft_p50_ms <= p99 and math.isfinite(p99)):
            raise ValueError(f"need 0 <= ttft_p50_ms <= ttft_p99_ms < inf, got {self}")
        if not (0 <= self.per_token_ms < math.inf):
            raise ValueError(f"per_token_ms must be finite and >= 0, got {self.per_token_ms}")

    def sample_ttft_ms(self, rng: random.Random) -> float:
        p50, p99 = self.ttft_p50_ms, self.ttft_p99_ms
        if p99 is None or p50 in (p99, 0.0):
            return p50
        sigma = (math.log(p99) - math.log(p50)) / _Z99
        return rng.lognormvariate(math.log(p50), sigma)


@dataclass(frozen=True, slots=True)
class Outage:
    """Every call in ``[start_s, end_s)`` of virtual time since start fails with ``error``."""

    start_s: float
    end_s: float
    error: str = "ServiceUnavailableException"

    def __post_init__(self) -> None:
        if not (0 <= self.start_s < self.end_s):
            raise ValueError(f"need 0 <= start_s < end_s, got {self}")

    def covers(self, elapsed_s: float) -> bool:
        return self.start_s <= elapsed_s < self.end_s


@dataclass(frozen=True, slots=True)
class Burst:
    """Calls number ``first_call`` … ``first_call + calls − 1`` (0-based) fail with ``error``."""

    error: str
    calls: int
    first_call: int = 0

    def __post_init__(self) -> None:
        if self.calls < 0 or self.first_call < 0:
            raise ValueError(f"calls and first_call must be >= 0, got {self}")

    def covers(self, call_index: int) -> bool:
        return self.first_call <= call_index < self.first_call + self.calls


@dataclass(frozen=True, slots=True)
class StreamFailure:
    """With ``probability``, a ``ConverseStream`` breaks after ``after_chunks`` text deltas.

    ``error`` is an in-stream exception (``modelStreamErrorException``,
    ``throttlingException``, … — the PascalCase code is accepted too) sent as an exception
    frame, or ``"disconnect"`` to drop the connection with no frame at all.
    """

    after_chunks: int
    error: str = "modelStreamErrorException"
    probability: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "error", stream_exception_type(self.error))
        if self.after_chunks < 0 or not (0 <= self.probability <= 1):
            raise ValueError(f"need after_chunks >= 0 and 0 <= probability <= 1, got {self}")


@dataclass(frozen=True, slots=True)
class ToolUse:
    """The model calls tool ``name`` with ``input`` (a JSON object) when the request offers a
    tool of that name (``toolConfig.tools[].toolSpec.name``) and its last message carries no
    ``toolResult``: the first turn of an agent loop calls the tool, the turn after the tool's
    answer is text. The answer is one ``toolUse`` content block, ``stopReason`` ``tool_use``.
    """

    name: str
    input: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("ToolUse.name must be a non-empty tool name")
        object.__setattr__(self, "input", MappingProxyType(dict(self.input)))


@dataclass(frozen=True, slots=True)
class TargetScript:
    """How one stand-in target behaves. Everything defaults to "instant and healthy".

    ``output_tokens`` is a count or an inclusive ``(low, high)`` range drawn uniformly;
    ``text`` fixes the answer instead (its whitespace-separated pieces are the tokens).
    ``throttle_probability`` and ``error_probabilities`` are per-call chances, drawn with one
    uniform number, so together they must not exceed 1.
    ``cache_read_tokens`` and ``cache_write_tokens`` make every answer report prompt-cache
    usage (``usage.cacheReadInputTokens`` / ``cacheWriteInputTokens``): the cached prefix is
    counted apart from ``inputTokens``, which stays the uncached remainder of the prompt, as
    Bedrock reports it (AWS, "How tokens are counted in Amazon Bedrock").
    ``tool_use`` makes the model call a tool when the request offers it (:class:`ToolUse`).
    """

    latency: Latency = field(default_factory=Latency)
    output_tokens: int | tuple[int, int] = 16
    text: str | None = None
    tokens_per_chunk: int = 1
    throttle_probability: float = 0.0
    error_probabilities: Mapping[str, float] = field(default_factory=dict)
    bursts: Sequence[Burst] = ()
    outages: Sequence[Outage] = ()
    stream_failure: StreamFailure | None = None
    error_latency_ms: float = 0.0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    tool_use: ToolUse | None = None

    def __post_init__(self) -> None:
        freeze = object.__setattr__  # keep the script immutable even if the caller's dict is not
        freeze(self, "error_probabilities", MappingProxyType(dict(self.error_probabilities)))
        freeze(self, "bursts", tuple(self.bursts))
        freeze(self, "outages", tuple(self.outages))
        low, high = self.token_range
        if not (0 <= low <= high) or self.tokens_per_chunk < 1 or self.error_latency_ms < 0:
            raise ValueError(f"bad token counts or error latency in {self}")
        if self.cache_read_tokens < 0 or self.cache_write_tokens < 0:
            raise ValueError(
                "cache_read_tokens and cache_write_tokens must be >= 0, got "
                f"{self.cache_read_tokens} and {self.cache_write_tokens}"
            )
        chances = [self.throttle_probability, *self.error_probabilities.values()]
        if any(not (0 <= p <= 1) for p in chances) or math.fsum(chances) > 1 + 1e-12:
            raise ValueError(f"error probabilities must be in [0, 1] and sum to <= 1: {chances}")

    @property
    def token_range(self) -> tuple[int, int]:
        tokens = self.output_tokens
        return (tokens, tokens) if isinstance(tokens, int) else tokens

    def error_codes(self) -> set[str]:
        """Every pre-body error code this script can produce (for validation)."""
        codes = set(self.error_probabilities)
        codes.update(b.error for b in self.bursts)
        codes.update(o.error for o in self.outages)
        return codes

    def check(self, service: Service) -> TargetScript:
        """Return ``self`` if every error it names exists on ``service``."""
        for code in self.error_codes():
            service.check(code)
        if self.stream_failure is not None and service is not Service.BEDROCK:
            raise ValueError("stream_failure applies to Bedrock ConverseStream targets only")
        return self


@dataclass(frozen=True, slots=True)
class CallPlan:
    """The decided fate of one call. ``error`` set means an HTTP error before any body."""

    error: str | None = None
    ttft_ms: float = 0.0
    per_token_ms: float = 0.0
    output_tokens: int = 0
    text: str | None = None
    tokens_per_chunk: int = 1
    stream_failure: str | None = None
    stream_failure_after: int = 0
    text_seed: int = 0
    error_latency_ms: float = 0.0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    tool_use: ToolUse | None = None

    @property
    def outcome(self) -> str:
        """``ok``, the error code, or ``stream:<exception>`` for a scripted broken stream."""
        if self.error is not None:
            return self.error
        if self.stream_failure is not None:
            return f"stream:{self.stream_failure}"
        return "ok"

    def pieces(self) -> list[str]:
        """The answer's tokens: the scripted text's pieces, or seeded filler words."""
        if self.text is not None:
            return split_pieces(self.text)
        return filler_pieces(self.output_tokens, random.Random(self.text_seed))

    def generation_ms(self, tokens: int) -> float:
        """Virtual time to produce ``tokens`` tokens: TTFT, then ``per_token_ms`` each after."""
        return self.ttft_ms + self.per_token_ms * max(tokens - 1, 0)


def _random_error(script: TargetScript, throttle_error: str, rng: random.Random) -> str | None:
    draw = rng.random()
    chances = [(throttle_error, script.throttle_probability), *script.error_probabilities.items()]
    for code, chance in chances:
        if draw < chance:
            return code
        draw -= chance
    return None


def _scripted_error(script: TargetScript, call_index: int, elapsed_s: float) -> str | None:
    for outage in script.outages:
        if outage.covers(elapsed_s):
            return outage.error
    for burst in script.bursts:
        if burst.covers(call_index):
            return burst.error
    return None


def plan_call(
    script: TargetScript,
    *,
    service: Service,
    call_index: int,
    elapsed_s: float,
    rng: random.Random,
    forced_error: str | None = None,
    streaming: bool = False,
) -> CallPlan:
    """Decide one call. Precedence: forced (runtime) > outage > burst > random > success.

    The rng is consumed in a fixed order (error draw, TTFT, token count, stream failure,
    text seed) whatever the outcome, so one seed gives one sequence of plans.
    """
    random_error = _random_error(script, service.throttle_error, rng)
    ttft_ms = script.latency.sample_ttft_ms(rng)
    tokens = rng.randint(*script.token_range)
    if script.text is not None:
        tokens = len(split_pieces(script.text))
    breaks = script.stream_failure is not None and rng.random() < script.stream_failure.probability
    text_seed = rng.getrandbits(64)
    error = forced_error or _scripted_error(script, call_index, elapsed_s) or random_error
    if error is not None:
        return CallPlan(error=error, error_latency_ms=script.error_latency_ms)
    failure = script.stream_failure if streaming and breaks else None
    return CallPlan(
        ttft_ms=ttft_ms,
        per_token_ms=script.latency.per_token_ms,
        output_tokens=tokens,
        text=script.text,
        tokens_per_chunk=script.tokens_per_chunk,
        stream_failure=None if failure is None else failure.error,
        stream_failure_after=0 if failure is None else failure.after_chunks,
        text_seed=text_seed,
        cache_read_tokens=script.cache_read_tokens,
        cache_write_tokens=script.cache_write_tokens,
        tool_use=script.tool_use,
    )
