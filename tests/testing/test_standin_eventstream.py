"""The event-stream codec: round trips, corruption, and agreement with botocore's decoder."""

from __future__ import annotations

import pytest
from botocore.eventstream import EventStreamBuffer
from hypothesis import given
from hypothesis import strategies as st

from mangaroute.testing.bedrock import event_frame, exception_frame
from mangaroute.testing.content import chunk_pieces, split_pieces
from mangaroute.testing.eventstream import (
    MAX_PAYLOAD_BYTES,
    ChecksumMismatchError,
    EventStreamError,
    Message,
    decode_message,
    decode_messages,
    encode_message,
)

names = st.text(min_size=1, max_size=40).filter(lambda n: len(n.encode()) <= 255)
values = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=200),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
)
headers = st.dictionaries(names, values, max_size=8)
payloads = st.binary(max_size=4096)


def _same(left: object, right: object) -> bool:
    """Equal, and bool stays bool (``True == 1`` would hide a type mix-up)."""
    return left == right and type(left) is type(right)


@given(headers, payloads)
def test_encode_decode_round_trip(hs: dict[str, object], payload: bytes) -> None:
    frame = encode_message(hs, payload)  # type: ignore[arg-type]
    message, used = decode_message(frame)
    assert used == len(frame)
    assert message.payload == payload
    assert list(message.headers) == list(hs)
    assert all(_same(message.headers[k], v) for k, v in hs.items())


@given(headers, payloads)
def test_botocore_decodes_our_frames_identically(hs: dict[str, object], payload: bytes) -> None:
    buffer = EventStreamBuffer()
    buffer.add_data(encode_message(hs, payload))  # type: ignore[arg-type]
    (parsed,) = list(buffer)
    assert parsed.payload == payload
    assert parsed.headers == hs


@given(st.lists(st.tuples(headers, payloads), max_size=5))
def test_concatenated_frames_decode_in_order(frames: list[tuple[dict[str, object], bytes]]) -> None:
    body = b"".join(encode_message(h, p) for h, p in frames)  # type: ignore[arg-type]
    assert decode_messages(body) == [Message(h, p) for h, p in frames]  # type: ignore[arg-type]


@given(headers, payloads, st.data())
def test_any_corrupted_byte_fails_a_crc(
    hs: dict[str, object], payload: bytes, data: st.DataObject
) -> None:
    frame = bytearray(encode_message(hs, payload))  # type: ignore[arg-type]
    at = data.draw(st.integers(0, len(frame) - 1), label="byte")
    frame[at] ^= data.draw(st.integers(1, 255), label="xor")
    with pytest.raises(ChecksumMismatchError):
        decode_message(bytes(frame))


@given(headers, payloads, st.data())
def test_truncated_frame_is_an_error(
    hs: dict[str, object], payload: bytes, data: st.DataObject
) -> None:
    frame = encode_message(hs, payload)  # type: ignore[arg-type]
    cut = data.draw(st.integers(1, len(frame) - 1), label="cut")
    with pytest.raises(EventStreamError):
        decode_messages(frame[:cut])


def test_known_vector_matches_botocore_layout() -> None:
    frame = encode_message({}, b'{"foo": "bar"}')
    assert frame[:4] == (30).to_bytes(4, "big")  # 16 bytes of overhead + 14 of payload
    assert frame[4:8] == bytes(4)


def test_limits_are_refused() -> None:
    with pytest.raises(EventStreamError):
        encode_message({"x" * 256: "v"})
    with pytest.raises(EventStreamError):
        encode_message({"k": "v" * 70_000})
    with pytest.raises(EventStreamError):
        encode_message({"k": 2**63})
    with pytest.raises(EventStreamError):
        encode_message({}, bytes(MAX_PAYLOAD_BYTES + 1))


def test_bedrock_frames_carry_the_headers_botocore_dispatches_on() -> None:
    (event, exception) = decode_messages(
        event_frame("messageStart", {"role": "assistant"})
        + exception_frame("throttlingException", "slow down")
    )
    assert event.headers == {
        ":event-type": "messageStart",
        ":content-type": "application/json",
        ":message-type": "event",
    }
    assert exception.headers[":message-type"] == "exception"
    assert exception.headers[":exception-type"] == "throttlingException"
    assert exception.payload == b'{"message":"slow down"}'


@given(st.text())
def test_split_pieces_reassemble_exactly(text: str) -> None:
    assert "".join(split_pieces(text)) == text


@given(st.lists(st.text(max_size=5), max_size=30), st.integers(1, 7))
def test_chunks_keep_every_piece_in_order(pieces: list[str], per_chunk: int) -> None:
    chunks = chunk_pieces(pieces, per_chunk)
    assert [p for chunk in chunks for p in chunk] == pieces
    assert all(1 <= len(chunk) <= per_chunk for chunk in chunks)
