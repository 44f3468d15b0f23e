"""Bedrock runtime ``Converse`` and ``ConverseStream``, rendered from a ``CallPlan``.

Shapes follow botocore's ``bedrock-runtime/2023-09-30/service-2.json``: ``ConverseResponse``
(``output.message``, ``stopReason``, ``usage``, ``metrics.latencyMs``) and the
``ConverseStreamOutput`` event-stream union (``messageStart``, ``contentBlockDelta``,
``contentBlockStop``, ``messageStop``, ``metadata``, and the in-stream exception members).
``metrics.latencyMs`` reports the scripted (virtual) latency, not the scaled wall time.
The prompt and the answer are never logged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from mangaroute.testing.content import chunk_pieces, estimate_tokens
from mangaroute.testing.errors import DISCONNECT
from mangaroute.testing.eventstream import encode_message
from mangaroute.testing.script import CallPlan
from mangaroute.testing.wire import Exchange, json_bytes, send_json

__all__ = [
    "ConverseRequest",
    "event_frame",
    "exception_frame",
    "parse_converse_request",
    "serve_converse",
    "serve_converse_stream",
]

EVENTSTREAM_CONTENT_TYPE = "application/vnd.amazon.eventstream"


@dataclass(frozen=True, slots=True)
class ConverseRequest:
    """What the stand-in reads from a request: its size and its output cap."""

    input_tokens: int
    max_tokens: int | None = None


def _texts(blocks: object) -> list[str]:
    if not isinstance(blocks, list):
        return []
    return [b["text"] for b in blocks if isinstance(b, dict) and isinstance(b.get("text"), str)]


def parse_converse_request(body: bytes) -> ConverseRequest:
    """Read a ``ConverseRequest`` body; ``ValueError`` says why it is not one."""
    try:
        request = json.loads(body or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError("request body is not JSON") from exc
    messages = request.get("messages") if isinstance(request, dict) else None
    if not isinstance(messages, list) or not messages:
        raise ValueError("messages must be a non-empty list")
    texts = _texts(request.get("system"))
    for message in messages:
        texts.extend(_texts(message.get("content") if isinstance(message, dict) else None))
    config = request.get("inferenceConfig")
    max_tokens = config.get("maxTokens") if isinstance(config, dict) else None
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
        raise ValueError("inferenceConfig.maxTokens must be a positive integer")
    return ConverseRequest(estimate_tokens(texts), max_tokens)


def event_frame(event_type: str, body: Mapping[str, object]) -> bytes:
    """One ``:message-type: event`` frame with a JSON payload."""
    headers = {
        ":event-type": event_type,
        ":content-type": "application/json",
        ":message-type": "event",
    }
    return encode_message(headers, json_bytes(body))


def exception_frame(exception_type: str, message: str) -> bytes:
    """One ``:message-type: exception`` frame; botocore raises ``EventStreamError`` on it."""
    headers = {
        ":exception-type": exception_type,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return encode_message(headers, json_bytes({"message": message}))


def _answer(plan: CallPlan, request: ConverseRequest) -> tuple[list[str], str]:
    pieces = plan.pieces()
    if request.max_tokens is not None and len(pieces) > request.max_tokens:
        return pieces[: request.max_tokens], "max_tokens"
    return pieces, "end_turn"


def _usage(request: ConverseRequest, plan: CallPlan, output_tokens: int) -> dict[str, int]:
    """``TokenUsage``: the cache members only when the script caches, as Bedrock omits them."""
    cached = plan.cache_read_tokens + plan.cache_write_tokens
    usage = {
        "inputTokens": request.input_tokens,
        "outputTokens": output_tokens,
        "totalTokens": request.input_tokens + output_tokens + cached,
    }
    if cached:
        usage["cacheReadInputTokens"] = plan.cache_read_tokens
        usage["cacheWriteInputTokens"] = plan.cache_write_tokens
    return usage


def serve_converse(exchange: Exchange, plan: CallPlan, request: ConverseRequest) -> None:
    """Wait the whole generation time, then answer one ``ConverseResponse``."""
    pieces, stop_reason = _answer(plan, request)
    latency_ms = plan.generation_ms(len(pieces))
    exchange.pause_ms(latency_ms)
    message = {"role": "assistant", "content": [{"text": "".join(pieces)}]}
    response = {
        "output": {"message": message},
        "stopReason": stop_reason,
        "usage": _usage(request, plan, len(pieces)),
        "metrics": {"latencyMs": round(latency_ms)},
    }
    send_json(exchange, 200, response)


def _break_stream(exchange: Exchange, failure: str) -> None:
    if failure == DISCONNECT:
        exchange.abort()
        return
    exchange.write_chunk(exception_frame(failure, f"{failure} scripted by the stand-in"))
    exchange.end_stream()


def serve_converse_stream(exchange: Exchange, plan: CallPlan, request: ConverseRequest) -> None:
    """Stream the answer: TTFT, then one ``contentBlockDelta`` per chunk, then the trailer.

    A scripted stream failure replaces the ``after_chunks``-th delta (0-based) and everything
    after it with one exception frame — or with a dropped connection.
    """
    pieces, stop_reason = _answer(plan, request)
    chunks = chunk_pieces(pieces, plan.tokens_per_chunk)
    exchange.pause_ms(plan.generation_ms(len(chunks[0]) if chunks else 0))
    exchange.start_stream({"Content-Type": EVENTSTREAM_CONTENT_TYPE})
    exchange.write_chunk(event_frame("messageStart", {"role": "assistant"}))
    for index, chunk in enumerate(chunks):
        if plan.stream_failure is not None and index == plan.stream_failure_after:
            _break_stream(exchange, plan.stream_failure)
            return
        if index > 0:
            exchange.pause_ms(plan.per_token_ms * len(chunk))
        delta = {"contentBlockIndex": 0, "delta": {"text": "".join(chunk)}}
        exchange.write_chunk(event_frame("contentBlockDelta", delta))
    if plan.stream_failure is not None:
        _break_stream(exchange, plan.stream_failure)
        return
    metadata = {
        "usage": _usage(request, plan, len(pieces)),
        "metrics": {"latencyMs": round(plan.generation_ms(len(pieces)))},
    }
    exchange.write_chunk(event_frame("contentBlockStop", {"contentBlockIndex": 0}))
    exchange.write_chunk(event_frame("messageStop", {"stopReason": stop_reason}))
    exchange.write_chunk(event_frame("metadata", metadata))
    exchange.end_stream()
