"""The seam between the protocols (Bedrock, SageMaker) and the HTTP server.

A protocol module renders a planned call onto an ``Exchange`` — send a whole body, or start a
chunked stream and write frames — and pauses through it, so the server alone owns sockets,
time scaling and shutdown (the shape of httpx's transport interface and its mock transport).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Protocol

from mangaroute.testing.errors import Service

__all__ = ["Exchange", "StandInStoppedError", "json_bytes", "send_error", "send_json"]


class StandInStoppedError(Exception):
    """Raised out of ``Exchange.pause_ms`` when the server is shutting down."""


class Exchange(Protocol):
    """One HTTP request/response as the protocol modules see it."""

    def pause_ms(self, ms: float) -> None:
        """Wait ``ms`` of virtual time (scaled); raise ``StandInStoppedError`` on shutdown."""

    def send(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        """Send a complete response with a ``Content-Length``."""

    def start_stream(self, headers: Mapping[str, str]) -> None:
        """Send a 200 status and headers for a chunked (``Transfer-Encoding``) body."""

    def write_chunk(self, data: bytes) -> None:
        """Send one chunk of the streamed body at once."""

    def end_stream(self) -> None:
        """Send the terminating zero-length chunk."""

    def abort(self) -> None:
        """Drop the connection without finishing the response."""


def json_bytes(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def send_json(
    exchange: Exchange, status: int, value: object, headers: Mapping[str, str] | None = None
) -> None:
    exchange.send(
        status, json_bytes(value), {"Content-Type": "application/json", **(headers or {})}
    )


def send_error(
    exchange: Exchange,
    service: Service,
    code: str,
    message: str,
    extra: Mapping[str, object] | None = None,
) -> None:
    """An AWS rest-json error: status from the catalogue, code in ``x-amzn-errortype``.

    botocore's ``RestJSONParser`` reads ``Error.Code`` from that header (cutting anything
    after a ``:``) and ``Error.Message`` from the body's ``message`` or ``Message``; Bedrock's
    shapes spell the member ``message``, SageMaker's ``Message``.
    """
    key = "message" if service is Service.BEDROCK else "Message"
    send_json(
        exchange,
        service.errors[code],
        {key: message, **(extra or {})},
        {"x-amzn-errortype": code},
    )
