"""The AWS event-stream binary framing (``application/vnd.amazon.eventstream``).

Bedrock's ``ConverseStream`` answers with a body of self-delimiting frames. Each frame is::

    total length  u32 BE   (the whole frame, these 4 bytes and the final CRC included)
    headers length u32 BE
    prelude CRC   u32 BE   CRC-32 of the 8 bytes above
    headers       name length u8, name (UTF-8), value type u8, value
    payload       bytes (JSON for Bedrock)
    message CRC   u32 BE   CRC-32 of every byte before it

CRC-32 is the gzip/zlib polynomial. Header value types: 0 true, 1 false, 2 byte, 3 short,
4 int, 5 long, 6 byte array (u16 length), 7 string (u16 length), 8 timestamp (ms, int64),
9 UUID (16 bytes).

Sources: the AWS "Event stream encoding" pages of the Amazon Transcribe and Amazon Lex V2
developer guides, and botocore's ``eventstream.py`` (``EventStreamBuffer``), whose limits
(headers ≤ 128 KiB, payload ≤ 24 MiB) this module also enforces so that nothing encoded here
is something boto3 would refuse.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

__all__ = [
    "MAX_HEADERS_BYTES",
    "MAX_PAYLOAD_BYTES",
    "ChecksumMismatchError",
    "EventStreamError",
    "HeaderValue",
    "Message",
    "decode_message",
    "decode_messages",
    "encode_message",
    "iter_messages",
]

HeaderValue = str | bytes | bool | int
"""A header value. ``int`` is written as a 64-bit signed integer (type 5)."""

MAX_HEADERS_BYTES = 128 * 1024
MAX_PAYLOAD_BYTES = 24 * 1024 * 1024

_PRELUDE = struct.Struct("!II")
_U32 = struct.Struct("!I")
_U16 = struct.Struct("!H")
_PRELUDE_BYTES = _PRELUDE.size + _U32.size
_OVERHEAD_BYTES = _PRELUDE_BYTES + _U32.size

_TRUE, _FALSE, _BYTE, _SHORT, _INT, _LONG, _BYTES, _STRING, _TIMESTAMP, _UUID = range(10)
_FIXED = {_BYTE: struct.Struct("!b"), _SHORT: struct.Struct("!h"), _INT: struct.Struct("!i")}
_INT64 = struct.Struct("!q")


class EventStreamError(ValueError):
    """A frame that is truncated, oversized or otherwise not valid event-stream framing."""


class ChecksumMismatchError(EventStreamError):
    """A prelude or message CRC-32 does not match the bytes it covers."""


@dataclass(frozen=True, slots=True)
class Message:
    """One decoded frame: its headers (in wire order) and its payload."""

    headers: Mapping[str, HeaderValue] = field(default_factory=dict)
    payload: bytes = b""


def _crc(data: bytes | memoryview) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def _sized(data: bytes, limit: int, what: str) -> bytes:
    if len(data) > limit:
        raise EventStreamError(f"{what} is {len(data)} bytes; at most {limit} fit")
    return data


def _encode_value(value: HeaderValue) -> bytes:
    if isinstance(value, bool):
        return bytes([_TRUE if value else _FALSE])
    if isinstance(value, int):
        try:
            return bytes([_LONG]) + _INT64.pack(value)
        except struct.error as exc:
            raise EventStreamError(f"header integer {value} does not fit in int64") from exc
    if isinstance(value, str):
        kind, raw = _STRING, value.encode("utf-8")
    else:
        kind, raw = _BYTES, bytes(value)
    return bytes([kind]) + _U16.pack(len(_sized(raw, 0xFFFF, "a header value"))) + raw


def _encode_headers(headers: Mapping[str, HeaderValue]) -> bytes:
    parts = []
    for name, value in headers.items():
        raw_name = _sized(name.encode("utf-8"), 0xFF, "a header name")
        parts.append(bytes([len(raw_name)]) + raw_name + _encode_value(value))
    return _sized(b"".join(parts), MAX_HEADERS_BYTES, "the headers section")


def encode_message(headers: Mapping[str, HeaderValue], payload: bytes = b"") -> bytes:
    """Frame ``payload`` with ``headers`` into one event-stream message."""
    raw_headers = _encode_headers(headers)
    _sized(payload, MAX_PAYLOAD_BYTES, "the payload")
    prelude = _PRELUDE.pack(len(raw_headers) + len(payload) + _OVERHEAD_BYTES, len(raw_headers))
    body = prelude + _U32.pack(_crc(prelude)) + raw_headers + payload
    return body + _U32.pack(_crc(body))


class _Reader:
    """A cursor over a bytes object that fails with ``EventStreamError`` when it runs out."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    def take(self, size: int) -> bytes:
        if self._at + size > len(self._data):
            raise EventStreamError("a header runs past the end of the headers section")
        chunk = self._data[self._at : self._at + size]
        self._at += size
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]

    def done(self) -> bool:
        return self._at >= len(self._data)


def _decode_value(reader: _Reader) -> HeaderValue:
    kind = reader.byte()
    if kind in (_TRUE, _FALSE):
        return kind == _TRUE
    if kind in _FIXED:
        fixed = _FIXED[kind]
        return int(fixed.unpack(reader.take(fixed.size))[0])
    if kind in (_LONG, _TIMESTAMP):
        return int(_INT64.unpack(reader.take(_INT64.size))[0])
    if kind == _UUID:
        return reader.take(16)
    if kind in (_BYTES, _STRING):
        raw = reader.take(_U16.unpack(reader.take(_U16.size))[0])
        try:
            return raw.decode("utf-8") if kind == _STRING else raw
        except UnicodeDecodeError as exc:
            raise EventStreamError("a string header value is not UTF-8") from exc
    raise EventStreamError(f"unknown header value type {kind}")


def _decode_headers(data: bytes) -> dict[str, HeaderValue]:
    reader = _Reader(data)
    headers: dict[str, HeaderValue] = {}
    while not reader.done():
        try:
            name = reader.take(reader.byte()).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EventStreamError("a header name is not UTF-8") from exc
        if name in headers:
            raise EventStreamError(f"header {name!r} appears twice")
        headers[name] = _decode_value(reader)
    return headers


def decode_message(data: bytes, offset: int = 0) -> tuple[Message, int]:
    """Decode the frame that starts at ``data[offset]``; return it and the bytes it took.

    Raises ``ChecksumMismatchError`` when either CRC is wrong and ``EventStreamError`` when the
    frame is truncated or malformed.
    """
    view = memoryview(data)[offset:]
    if len(view) < _PRELUDE_BYTES:
        raise EventStreamError("truncated prelude")
    total, headers_len = _PRELUDE.unpack_from(view)
    (prelude_crc,) = _U32.unpack_from(view, _PRELUDE.size)
    if prelude_crc != _crc(view[: _PRELUDE.size]):
        raise ChecksumMismatchError("prelude CRC-32 does not match")
    payload_len = total - headers_len - _OVERHEAD_BYTES
    if headers_len > MAX_HEADERS_BYTES or payload_len < 0 or payload_len > MAX_PAYLOAD_BYTES:
        raise EventStreamError(f"impossible lengths: total {total}, headers {headers_len}")
    if len(view) < total:
        raise EventStreamError(f"truncated frame: {len(view)} of {total} bytes")
    (message_crc,) = _U32.unpack_from(view, total - _U32.size)
    if message_crc != _crc(view[: total - _U32.size]):
        raise ChecksumMismatchError("message CRC-32 does not match")
    headers_end = _PRELUDE_BYTES + headers_len
    headers = _decode_headers(bytes(view[_PRELUDE_BYTES:headers_end]))
    return Message(headers, bytes(view[headers_end : total - _U32.size])), total


def iter_messages(data: bytes) -> Iterator[Message]:
    """Yield every frame in ``data``, which must end exactly on a frame boundary."""
    at = 0
    while at < len(data):
        message, used = decode_message(data, at)
        at += used
        yield message


def decode_messages(data: bytes) -> list[Message]:
    """Decode a whole event-stream body into its frames."""
    return list(iter_messages(data))
