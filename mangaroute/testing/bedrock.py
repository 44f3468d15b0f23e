"""Bedrock runtime ``Converse`` and ``ConverseStream``, rendered from a ``CallPlan``.

Shapes follow botocore's ``bedrock-runtime/2023-09-30/service-2.json``: ``ConverseResponse``
(``output.message``, ``stopReason``, ``usage``, ``metrics.latencyMs``) and the
``ConverseStreamOutput`` event-stream union (``messageStart``, ``contentBlockDelta``,
``contentBlockStop``, ``messageStop``, ``metadata``, and the in-stream exception members).
``metrics.latencyMs`` reports the scripted (virtual) latency, not the scaled wall time.
A script's ``tool_use`` answers with a ``toolUse`` content block (streamed as
``contentBlockStart`` with the tool's id and name, then one ``contentBlockDelta`` holding the
input as a JSON string, as Bedrock streams tool input).
The prompt and the answer are never logged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from mangaroute.testing.content import chunk_pieces, estimate_tokens
from mangaroute.testing.errors import DISCONNECT
from mangaroute.testing.eventstream import encode_message
from mangaroute.testing.script import CallPlan, ToolUse
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
    """What the stand-in reads from a request: its size, its output cap, the tools it
    offers and whether it answers a tool call (its last message carries a ``toolResult``)."""

    input_tokens: int
    max_tokens: int | None = None
    tools: frozenset[str] = frozenset()
    after_tool_result: bool = False


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
    last = messages[-1].get("content") if isinstance(messages[-1], dict) else None
    after_tool_result = isinstance(last, list) and any(
        isinstance(b, dict) and "toolResult" in b for b in last
    )
    return ConverseRequest(
        estimate_tokens(texts), max_tokens, _tool_names(request), after_tool_result
    )


def _tool_names(request: Mapping[str, object]) -> frozenset[str]:
    config = request.get("toolConfig")
    tools = config.get("tools") if isinstance(config, dict) else None
    if not isinstance(tools, list):
        return frozenset()
    specs = [t.get("toolSpec") for t in tools if isinstance(t, dict)]
    return frozenset(s["name"] for s in specs if isinstance(s, dict) and "name" in s)


def _tool_call(plan: CallPlan, request: ConverseRequest) -> ToolUse | None:
    """The scripted tool call, if this request offers that tool and is not its answer."""
    tool = plan.tool_use
    if tool is None or tool.name not in request.tools or request.after_tool_result:
        return None
    return tool


def _tool_use_id(plan: CallPlan) -> str:
    return f"tooluse_{plan.text_seed:016x}"


def _tool_pieces(tool: ToolUse) -> list[str]:
    """The tool input's "tokens" (its JSON, about four characters each), for usage and time."""
    return ["x"] * max(1, estimate_tokens([json.dumps(dict(tool.input))]))


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
    tool = _tool_call(plan, request)
    if tool is None:
        pieces, stop_reason = _answer(plan, request)
        block: dict[str, object] = {"text": "".join(pieces)}
    else:
        pieces, stop_reason = _tool_pieces(tool), "tool_use"
        use = {"toolUseId": _tool_use_id(plan), "name": tool.name, "input": dict(tool.input)}
        block = {"toolUse": use}
    latency_ms = plan.generation_ms(len(pieces))
    exchange.pause_ms(latency_ms)
    message = {"role": "assistant", "content": [block]}
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
    tool = _tool_call(plan, request)
    if tool is None:
        pieces, stop_reason = _answer(plan, request)
        chunks = chunk_pieces(pieces, plan.tokens_per_chunk)
        deltas: list[dict[str, object]] = [{"text": "".join(chunk)} for chunk in chunks]
    else:
        pieces, stop_reason = _tool_pieces(tool), "tool_use"
        chunks = [pieces]
        deltas = [{"toolUse": {"input": json.dumps(dict(tool.input))}}]
    exchange.pause_ms(plan.generation_ms(len(chunks[0]) if chunks else 0))
    exchange.start_stream({"Content-Type": EVENTSTREAM_CONTENT_TYPE})
    exchange.write_chunk(event_frame("messageStart", {"role": "assistant"}))
    if tool is not None:
        start = {"toolUse": {"toolUseId": _tool_use_id(plan), "name": tool.name}}
        exchange.write_chunk(
            event_frame("contentBlockStart", {"contentBlockIndex": 0, "start": start})
        )
    for index, (chunk, body) in enumerate(zip(chunks, deltas, strict=True)):
        if plan.stream_failure is not None and index == plan.stream_failure_after:
            _break_stream(exchange, plan.stream_failure)
            return
        if index > 0:
            exchange.pause_ms(plan.per_token_ms * len(chunk))
        delta = {"contentBlockIndex": 0, "delta": body}
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
