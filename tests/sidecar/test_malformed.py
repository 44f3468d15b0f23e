"""Requests that are not valid protobuf (issue 13, items 1 and 2): ``INVALID_ARGUMENT`` with a
precise message, one log line per interval, no memory kept, and a drain that always ends."""

from __future__ import annotations

import collections
import logging
import queue
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf.message import DecodeError
from hypothesis import given, settings
from hypothesis import strategies as st

from mangaroute import FakeClock, Router
from mangaroute.sidecar import Sidecar, SidecarSettings, convert, parse_listen
from mangaroute.sidecar._generated.mangaroute_api.v1 import router_pb2 as pb
from mangaroute.sidecar._generated.mangaroute_api.v1 import router_pb2_grpc as pb_grpc
from mangaroute.sidecar.malformed import MalformedLog
from mangaroute.sidecar.servicer import method_handlers

from .conftest import ServeFactory, ServeProcess, connect, counts, report, wait_for

CORRUPT = b"\xff\xff\xff\xff"  # a field tag whose varint never ends
BAD_UTF8 = b"\x0a\x01\xff"  # field 1 (a string in these requests) = the byte 0xff
VALID = report("ondemand-haiku").SerializeToString()
SERVICE = "/mangaroute.v1.Router/"
SERVE = [sys.executable, "-m", "mangaroute", "serve", "--demo"]


def _malformed(name: str, size: int, reason: str) -> str:
    return f"malformed request: not a valid mangaroute.v1.{name} ({size} bytes): {reason}"


def _runtime_says_why() -> bool:
    """Whether this protobuf runtime says why bytes do not parse (7.x does; 5.x, which the
    sidecar extra accepts from 5.26.1, only says that they do not)."""
    with pytest.raises(DecodeError) as failure:
        pb.ChooseRequest.FromString(CORRUPT)
    return "': " in str(failure.value)


WHY = _runtime_says_why()
CORRUPT_WIRE = "Wire format was corrupt" if WHY else "not valid protobuf"
NOT_UTF8 = "String field had bad UTF-8" if WHY else "not valid protobuf"

UNARY_METHODS = ("Choose", "Report", "Release", "GetSnapshot")
UNARY_CASES = [
    ("Choose", BAD_UTF8, _malformed("ChooseRequest", 3, NOT_UTF8)),
    ("Choose", CORRUPT, _malformed("ChooseRequest", 4, CORRUPT_WIRE)),
    ("Report", BAD_UTF8, _malformed("ReportRequest", 3, NOT_UTF8)),
    ("Report", CORRUPT, _malformed("ReportRequest", 4, CORRUPT_WIRE)),
    ("Release", BAD_UTF8, _malformed("ReleaseRequest", 3, NOT_UTF8)),
    ("GetSnapshot", CORRUPT, _malformed("GetSnapshotRequest", 4, CORRUPT_WIRE)),
]


def _report_stream(channel: grpc.Channel) -> Any:
    return channel.stream_unary(
        SERVICE + "ReportStream", response_deserializer=pb.ReportStreamResponse.FromString
    )


def _raw_status(channel: grpc.Channel, method: str, data: bytes) -> tuple[grpc.StatusCode, str]:
    call = channel.unary_unary(SERVICE + method)  # bytes in, bytes out
    with pytest.raises(grpc.RpcError) as failure:
        call(data, timeout=10)
    error: Any = failure.value
    return error.code(), error.details()


@pytest.mark.parametrize(("method", "data", "message"), UNARY_CASES)
def test_a_malformed_request_is_invalid_argument(
    serve: ServeFactory, router: Router, method: str, data: bytes, message: str
) -> None:
    with serve(router) as sidecar, connect(sidecar.address) as (channel, stub):
        status = _raw_status(channel, method, data)
        assert status == (grpc.StatusCode.INVALID_ARGUMENT, message)
        assert stub.Choose(pb.ChooseRequest(), timeout=10).target.name  # still serving
        assert sidecar.servicer.malformed.total == 1


def test_a_malformed_watch_request_is_refused_before_it_takes_a_stream(
    serve: ServeFactory, router: Router
) -> None:
    with serve(router, max_streams=1) as sidecar, connect(sidecar.address) as (channel, _):
        watch = channel.unary_stream(SERVICE + "WatchSwitches")(CORRUPT, timeout=10)
        with pytest.raises(grpc.RpcError):
            list(watch)
        assert watch.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert watch.details() == _malformed("WatchSwitchesRequest", 4, CORRUPT_WIRE)
        assert sidecar.streams.in_use == 0


def test_malformed_stream_messages_are_rejections_and_the_rest_is_recorded(
    serve: ServeFactory, router: Router
) -> None:
    with serve(router) as sidecar, connect(sidecar.address) as (channel, stub):
        stream = channel.stream_unary(
            SERVICE + "ReportStream", None, pb.ReportStreamResponse.FromString
        )
        result = stream(iter([VALID, BAD_UTF8, CORRUPT, VALID]), timeout=10)
        assert (result.accepted, result.rejected) == (2, 2)
        assert [(r.index, r.message) for r in result.rejections] == [
            (1, _malformed("ReportStreamRequest", 3, NOT_UTF8)),
            (2, _malformed("ReportStreamRequest", 4, CORRUPT_WIRE)),
        ]
        assert counts(stub)["ondemand-haiku"] == (2, 0, 0, 0)
        assert sidecar.servicer.malformed.total == 2


def test_malformed_requests_are_logged_once_per_interval(
    serve: ServeFactory, router: Router, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(0)
    with serve(router) as sidecar, connect(sidecar.address) as (channel, _):
        sidecar.servicer.malformed = MalformedLog(10.0, clock)
        with caplog.at_level(logging.WARNING, logger="mangaroute.sidecar"):
            for _ in range(20):
                _raw_status(channel, "Choose", CORRUPT)
            clock.advance(seconds=9.9)
            _raw_status(channel, "Report", BAD_UTF8)
            clock.advance(seconds=0.1)
            _raw_status(channel, "Report", BAD_UTF8)
    lines = [r.getMessage() for r in caplog.records if "malformed request" in r.getMessage()]
    assert len(lines) == 2
    assert lines[0].startswith(_malformed("ChooseRequest", 4, CORRUPT_WIRE) + " (peer ")
    assert lines[0].endswith(
        "; 1 malformed requests since the start, 0 not logged since the last such line: at "
        "most one per 10 s)"
    )
    assert lines[1].startswith(_malformed("ReportRequest", 3, NOT_UTF8))
    assert "; 22 malformed requests since the start, 20 not logged since" in lines[1]


REQUEST_TYPES = [pb.ChooseRequest, pb.ReportRequest, pb.ReleaseRequest, pb.WatchSwitchesRequest]


def test_the_malformed_count_is_exact_across_threads(caplog: pytest.LogCaptureFixture) -> None:
    log = MalformedLog(10.0, FakeClock(0))  # the clock stands still: one line in all
    start = threading.Barrier(8)

    def peer() -> None:
        start.wait()
        for _ in range(1_000):
            log.note("malformed request", "unix:peer")

    threads = [threading.Thread(target=peer) for _ in range(8)]
    with caplog.at_level(logging.WARNING, logger="mangaroute.sidecar"):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert log.total == 8_000
    lines = [r.getMessage() for r in caplog.records if "malformed request" in r.getMessage()]
    assert len(lines) == 1
    assert "1 malformed requests since the start, 0 not logged" in lines[0]


@given(data=st.binary(max_size=64), index=st.integers(0, len(REQUEST_TYPES) - 1))
def test_parse_takes_any_bytes(data: bytes, index: int) -> None:
    """Any bytes give a message that serializes back to an equal one, or MalformedMessage
    with the type and size named; nothing else escapes."""
    message_type = REQUEST_TYPES[index]
    try:
        message = convert.parse(message_type, data)
    except convert.MalformedMessage as exc:
        name = message_type.DESCRIPTOR.full_name
        assert str(exc).startswith(f"malformed request: not a valid {name} ({len(data)} bytes): ")
    else:
        assert convert.parse(message_type, message.SerializeToString()) == message


@given(
    request_class=st.text(max_size=20),
    session_id=st.text(max_size=20),
    tokens=st.integers(-(2**31), 2**31 - 1),
)
def test_parse_reads_back_what_a_client_sends(
    request_class: str, session_id: str, tokens: int
) -> None:
    sent = pb.ChooseRequest(request_class=request_class, session_id=session_id, input_tokens=tokens)
    assert convert.parse(pb.ChooseRequest, sent.SerializeToString()) == sent


def test_random_bytes_never_get_internal_or_unknown(serve: ServeFactory, router: Router) -> None:
    """Whatever a peer sends, the answer is OK or INVALID_ARGUMENT (hypothesis drives the bytes
    through one real server)."""
    seen: collections.Counter[str] = collections.Counter()
    with serve(router) as sidecar, connect(sidecar.address) as (channel, _):
        calls = {name: channel.unary_unary(SERVICE + name) for name in UNARY_METHODS}

        @settings(max_examples=150, deadline=None)
        @given(method=st.sampled_from(UNARY_METHODS), data=st.binary(max_size=48))
        def answer(method: str, data: bytes) -> None:
            try:
                calls[method](data, timeout=10)
                seen["OK"] += 1
            except grpc.RpcError as error:
                code = error.code()  # type: ignore[attr-defined]
                assert code == grpc.StatusCode.INVALID_ARGUMENT, (method, data, error)
                seen[code.name] += 1

        answer()
    assert seen["INVALID_ARGUMENT"] > 0


def test_the_handlers_cover_the_service_and_take_raw_bytes(router: Router) -> None:
    sidecar = Sidecar(router, SidecarSettings(listen=parse_listen("127.0.0.1:0")))
    handlers = method_handlers(sidecar.servicer)
    service = pb.DESCRIPTOR.services_by_name["Router"]
    assert set(handlers) == {method.name for method in service.methods}
    assert all(handler.request_deserializer is None for handler in handlers.values())


def test_stop_returns_when_a_call_never_does(router: Router) -> None:
    """gRPC cancels a call at the end of the grace period but cannot end its thread; before
    the fix ``stop()`` then waited on the thread pool for ever."""
    entered, release = threading.Event(), threading.Event()

    def stuck(data: bytes, context: grpc.ServicerContext) -> bytes:
        entered.set()
        release.wait(60)  # ignores the cancellation, as a wedged call would
        return data

    handler = grpc.method_handlers_generic_handler(
        "test.Stuck", {"Call": grpc.unary_unary_rpc_method_handler(stuck)}
    )
    settings = SidecarSettings(listen=parse_listen("127.0.0.1:0"), grace_s=0.2)
    sidecar = Sidecar(router, settings, handlers=[handler])
    sidecar.start()
    outcome: list[bool] = []
    try:
        with grpc.insecure_channel(sidecar.address) as channel:
            call = channel.unary_unary("/test.Stuck/Call").future(b"x", timeout=60)
            assert entered.wait(10)
            stopper = threading.Thread(target=lambda: outcome.append(sidecar.stop()))
            stopper.start()
            stopper.join(20)  # grace + 0.5 s, with room for a loaded machine
            assert not stopper.is_alive(), "stop() did not return"
            assert outcome == [False]
            call.cancel()
    finally:
        release.set()


# -- a real `mangaroute serve` process --------------------------------------------------


def _hold_open(first: list[bytes]) -> tuple[Iterator[bytes], queue.Queue[bytes | None]]:
    """A request stream that sends ``first`` and then whatever is queued until ``None``."""
    more: queue.Queue[bytes | None] = queue.Queue()

    def messages() -> Iterator[bytes]:
        yield from first
        while (item := more.get()) is not None:
            yield item

    return messages(), more


def _start_streams(channel: grpc.Channel, open_streams: int) -> tuple[list[Any], list[Any]]:
    """Four finished ``ReportStream`` calls with malformed messages (their answers or errors),
    and ``open_streams`` left open after a valid and a malformed message."""
    stream = _report_stream(channel)
    finished: list[Any] = []
    for _ in range(4):
        try:
            finished.append(stream(iter([VALID, BAD_UTF8, CORRUPT]), timeout=10))
        except grpc.RpcError as error:
            finished.append(error)
    held = []
    for _ in range(open_streams):
        messages, more = _hold_open([VALID, CORRUPT])
        held.append((stream.future(messages, timeout=120), more))
    stub = pb_grpc.RouterStub(channel)
    wait_for(lambda: counts(stub)["ondemand-haiku"][0] == 4 + open_streams, timeout_s=20)
    time.sleep(0.3)  # the malformed message after each valid one is read too
    return finished, held


def _all_rejected_twice(finished: list[Any]) -> bool:
    return all(
        isinstance(r, pb.ReportStreamResponse) and (r.accepted, r.rejected) == (1, 2)
        for r in finished
    )


def _release(held: list[Any]) -> None:
    for call, more in held:
        more.put(None)
        call.cancel()


def test_malformed_requests_do_not_grow_the_process(
    spawn: type[ServeProcess], socket_dir: str
) -> None:
    """Before the fix grpcio kept ~18 KB per request it failed to deserialize: +50 MB here."""
    server = spawn([*SERVE, "--listen", f"unix:{socket_dir}/s.sock"])
    with connect(server.address()) as (channel, _):
        calls = [channel.unary_unary(SERVICE + name) for name in ("Choose", "Report", "Release")]

        codes: collections.Counter[grpc.StatusCode] = collections.Counter()

        def flood(count: int) -> None:
            for index in range(count):
                with pytest.raises(grpc.RpcError) as failure:
                    calls[index % 3](BAD_UTF8 if index % 2 else CORRUPT, timeout=10)
                error: Any = failure.value
                codes[error.code()] += 1

        started = time.monotonic()
        flood(500)  # warm-up: threads, allocator arenas
        before = server.rss_kb()
        flood(3000)
        growth_kb = server.rss_kb() - before
        intervals = (time.monotonic() - started) / 10
    assert growth_kb < 4096, f"RSS grew by {growth_kb} KB over 3,000 malformed requests"
    assert codes == {grpc.StatusCode.INVALID_ARGUMENT: 3500}
    server.process.send_signal(signal.SIGTERM)
    assert server.finish() == 0
    log = "".join(server.log)
    assert "Traceback" not in log
    assert 1 <= log.count("malformed request") <= 2 + intervals  # one line per 10 s


def test_sigterm_after_malformed_stream_messages_ends_within_the_grace(
    spawn: type[ServeProcess], socket_dir: str
) -> None:
    """Before the fix one in two such streams left gRPC unable to stop: SIGKILL only."""
    server = spawn([*SERVE, "--listen", f"unix:{socket_dir}/s.sock", "--grace-s", "2"])
    with connect(server.address()) as (channel, _):
        finished, held = _start_streams(channel, open_streams=4)
        server.process.send_signal(signal.SIGTERM)
        try:
            assert server.finish(timeout_s=2 + 10) == 0  # the grace, then 0.5 s at most
        finally:
            _release(held)
    assert _all_rejected_twice(finished)
    log = "".join(server.log)
    assert "stopped" in log and "Traceback" not in log
    assert "did not finish" not in log


def test_a_second_sigterm_stops_at_once(spawn: type[ServeProcess], socket_dir: str) -> None:
    server = spawn([*SERVE, "--listen", f"unix:{socket_dir}/s.sock", "--grace-s", "300"])
    with connect(server.address()) as (channel, _):
        finished, held = _start_streams(channel, open_streams=4)
        server.process.send_signal(signal.SIGTERM)
        wait_for(lambda: "draining" in "".join(server.log))
        server.process.send_signal(signal.SIGTERM)
        try:
            assert server.finish(timeout_s=15) == 0  # not the 300 s grace
        finally:
            _release(held)
    assert _all_rejected_twice(finished)
    log = "".join(server.log)
    assert "SIGTERM received: stopping now" in log
    assert "Traceback" not in log
