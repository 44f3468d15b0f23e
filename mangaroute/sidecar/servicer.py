"""The ``mangaroute.v1.Router`` servicer: convert, call the core, convert back.

Every method is a few lines around one router call. Bad input - anything the core or
:mod:`mangaroute.sidecar.convert` rejects - ends the call with ``INVALID_ARGUMENT`` and the
core's message (which names the field), with a ``google.rpc.BadRequest`` in the status
details naming it for programs; the router's state is untouched, as the core guarantees.
Anything else is a bug, which gRPC logs with its traceback and answers ``UNKNOWN``.

Requests arrive as bytes: :func:`method_handlers` registers no request deserializer, and each
method parses its own (:func:`mangaroute.sidecar.convert.parse`). grpcio keeps memory for every
request its deserializer rejects, and a rejected message inside a client stream could leave
the call impossible to drain (issue 13); parsed here, a malformed request is answered
``INVALID_ARGUMENT`` (in ``ReportStream``: one more rejection) and costs nothing after.
Malformed requests are logged through :class:`~mangaroute.sidecar.malformed.MalformedLog`,
at most one line per 10 s.

The admin RPCs (``Eject``, ``Restore``, ``PinPrimary``, ``UnpinPrimary``) first ask the
:class:`~mangaroute.sidecar.admin.AdminGate` who the caller is; a caller it does not trust
gets ``PERMISSION_DENIED`` before its request is even parsed.

Long-lived streams (``ReportStream``, ``WatchSwitches``) hold a server worker thread each; at
most ``StreamSlots.limit`` run at once so they can never starve the unary calls, and the next
one is refused with ``RESOURCE_EXHAUSTED``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn, TypeVar

import grpc
from google.protobuf.message import Message
from grpc_status import rpc_status

from mangaroute.core.errors import (
    InvalidObservation,
    InvalidRequest,
    NoSwitcher,
    UnknownRequestClass,
    UnknownTarget,
)
from mangaroute.core.router import Router
from mangaroute.core.snapshot import AdminEvent, RouterEvent, SwitchEvent
from mangaroute.sidecar import convert
from mangaroute.sidecar._generated.mangaroute_api.v1 import router_pb2 as pb
from mangaroute.sidecar.admin import AdminGate, AdminRefused
from mangaroute.sidecar.malformed import MalformedLog
from mangaroute.sidecar.watch import ALL_EVENTS, FeedOverflow, StreamSlots, SwitchFeed

logger = logging.getLogger("mangaroute.sidecar")

BAD_INPUT = (InvalidObservation, InvalidRequest, UnknownRequestClass, UnknownTarget)
MAX_REJECTIONS = 16
MAX_OPERATOR_CHARS = 64
"""The longest ``operator`` an admin request may name."""
_REPORTED = pb.ReportResponse()
_M = TypeVar("_M", bound=Message)
_R = TypeVar("_R", bound=Message)
ADMIN_ARGUMENTS: dict[type[Message], tuple[str, ...]] = {
    pb.EjectRequest: ("target_name", "reason", "duration_s"),
    pb.RestoreRequest: ("target_name", "reason"),
    pb.PinPrimaryRequest: ("target_name", "reason", "duration_s"),
    pb.UnpinPrimaryRequest: ("reason",),
}
"""Each admin request's fields, in the order of the router method's arguments (``Eject``'s
``duration_s`` is ``eject``'s ``cooldown_s``); its ``operator`` becomes ``by=``."""


def bad_input_message(exc: Exception) -> str:
    """The core's message, with the wire field named where the core names a concept."""
    if isinstance(exc, UnknownRequestClass):
        return f"request_class: {exc}"
    if isinstance(exc, UnknownTarget):
        return f"target_name: {exc}"
    return str(exc)


def _reject(
    context: grpc.ServicerContext,
    exc: Exception,
    message_type: type[Message],
    text: str | None = None,
) -> NoReturn:
    """End the call with ``INVALID_ARGUMENT``: ``text`` (default: :func:`bad_input_message`)
    and, when it names fields of ``message_type``, a ``BadRequest`` detail naming them."""
    text = bad_input_message(exc) if text is None else text
    fields = _invalid_fields(exc, message_type, text)
    if not fields:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, text)
    context.abort_with_status(rpc_status.to_status(convert.bad_request(text, fields)))


def _invalid_fields(exc: Exception, message_type: type[Message], text: str) -> list[str]:
    """The fields ``exc`` (described by ``text``) is about; none for bytes that did not parse."""
    if isinstance(exc, convert.MalformedMessage):
        return []
    return convert.invalid_fields(message_type, text)


def _admin_message(exc: Exception) -> str:
    """:func:`bad_input_message` in the admin requests' words (``duration_s``)."""
    return bad_input_message(exc).replace("cooldown_s ", "duration_s ", 1)


def _rejection(index: int, exc: Exception) -> pb.ReportRejection:
    """One skipped report of ``ReportStream``: its message and the field it is about."""
    text = bad_input_message(exc)
    fields = _invalid_fields(exc, pb.ReportStreamRequest, text)
    return pb.ReportRejection(index=index, message=text, field=fields[0] if fields else "")


def _admin_rpc(
    request_type: type[Message],
    response_type: Callable[..., _R],
    act: Callable[..., AdminEvent | None],
) -> Callable[[RouterServicer, bytes, grpc.ServicerContext], _R]:
    """An admin RPC of :class:`RouterServicer`: :meth:`~RouterServicer._act` with ``act`` (the
    ``Router`` method), its action in a ``response_type``."""

    def rpc(servicer: RouterServicer, data: bytes, context: grpc.ServicerContext) -> _R:
        return response_type(action=servicer._act(request_type, data, context, act))

    return rpc


class RouterServicer:
    """Serves one :class:`~mangaroute.core.router.Router`; each method takes the request's
    bytes."""

    def __init__(
        self,
        router: Router,
        *,
        streams: StreamSlots,
        ids: convert.DecisionIds | None = None,
        watch_capacity: int = 256,
        malformed: MalformedLog | None = None,
        admin: AdminGate | None = None,
    ) -> None:
        self._router = router
        self._admin = admin or AdminGate()
        self.malformed = malformed or MalformedLog()
        self._wire = convert.Wire(
            router.targets, ids or convert.DecisionIds(), router.config.window.decision_ttl_s
        )
        self._streams = streams
        self._watch_capacity = watch_capacity

    @property
    def wire(self) -> convert.Wire:
        return self._wire

    def Choose(  # noqa: N802 - the proto's method name
        self, data: bytes, context: grpc.ServicerContext
    ) -> pb.ChooseResponse:
        try:
            request = self._parse(pb.ChooseRequest, data, context)
            decision = self._router.choose(
                request.request_class or None,
                session_id=request.session_id or None,
                budget_ms=request.budget_ms if request.HasField("budget_ms") else None,
                input_tokens=request.input_tokens,
                output_tokens=request.output_tokens,
            )
        except BAD_INPUT as exc:
            _reject(context, exc, pb.ChooseRequest)
        return self._wire.choose_response(decision)

    def Report(  # noqa: N802 - the proto's method name
        self, data: bytes, context: grpc.ServicerContext
    ) -> pb.ReportResponse:
        try:
            self._record(self._parse(pb.ReportRequest, data, context))
        except BAD_INPUT as exc:
            _reject(context, exc, pb.ReportRequest)
        return _REPORTED

    def ReportStream(  # noqa: N802 - the proto's method name
        self, request_iterator: Iterator[bytes], context: grpc.ServicerContext
    ) -> pb.ReportStreamResponse:
        self._open_stream(context)
        try:
            accepted = 0
            rejections: list[pb.ReportRejection] = []
            rejected = 0
            for index, data in enumerate(request_iterator):
                try:
                    self._record(self._parse(pb.ReportStreamRequest, data, context))
                except BAD_INPUT as exc:
                    rejected += 1
                    if len(rejections) < MAX_REJECTIONS:
                        rejections.append(_rejection(index, exc))
                else:
                    accepted += 1
            return pb.ReportStreamResponse(
                accepted=accepted, rejected=rejected, rejections=rejections
            )
        finally:
            self._streams.release()

    def Release(  # noqa: N802 - the proto's method name
        self, data: bytes, context: grpc.ServicerContext
    ) -> pb.ReleaseResponse:
        try:
            request = self._parse(pb.ReleaseRequest, data, context)
            decision = self._router.pending(self._wire.decision_id(request.decision_id))
        except BAD_INPUT as exc:
            _reject(context, exc, pb.ReleaseRequest)
        if decision is not None:
            self._router.release(decision)
        return pb.ReleaseResponse(released=decision is not None)

    def GetSnapshot(  # noqa: N802 - the proto's method name
        self, data: bytes, context: grpc.ServicerContext
    ) -> pb.GetSnapshotResponse:
        try:
            self._parse(pb.GetSnapshotRequest, data, context)
        except BAD_INPUT as exc:
            _reject(context, exc, pb.GetSnapshotRequest)
        return self._wire.snapshot_response(self._router.snapshot())

    def WatchSwitches(  # noqa: N802 - the proto's method name
        self, data: bytes, context: grpc.ServicerContext
    ) -> Iterator[pb.WatchSwitchesResponse]:
        try:
            request = self._parse(pb.WatchSwitchesRequest, data, context)
        except BAD_INPUT as exc:
            _reject(context, exc, pb.WatchSwitchesRequest)
        history = self._router.switch_history if request.include_history else tuple
        for event in self._watch(context, SwitchFeed(self._watch_capacity), history):
            assert isinstance(event, SwitchEvent)
            yield convert.switch_event(event, pb.WatchSwitchesResponse)

    def WatchEvents(  # noqa: N802 - the proto's method name
        self, data: bytes, context: grpc.ServicerContext
    ) -> Iterator[pb.WatchEventsResponse]:
        try:
            self._parse(pb.WatchEventsRequest, data, context)
        except BAD_INPUT as exc:
            _reject(context, exc, pb.WatchEventsRequest)
        for event in self._watch(context, SwitchFeed(self._watch_capacity, ALL_EVENTS), tuple):
            yield convert.watch_event(event)

    def _watch(
        self,
        context: grpc.ServicerContext,
        feed: SwitchFeed,
        history: Callable[[], Sequence[RouterEvent]],
    ) -> Iterator[RouterEvent]:
        """Stream ``history()`` then what ``feed`` takes in, until the call or the sidecar
        ends; holds a stream slot meanwhile."""
        self._open_stream(context)
        unsubscribe = self._router.subscribe(feed.offer)
        self._streams.add_feed(feed)
        try:
            if not context.add_callback(feed.close):  # wakes us on cancel, deadline, drop
                return  # the call has already ended
            context.send_initial_metadata(())  # the client knows it is subscribed
            replay = history()
            yield from replay
            replayed = {id(event) for event in replay}  # `replay` keeps the ids alive
            while (fresh := feed.take()) is not None:
                if id(fresh) not in replayed:  # queued while the history was replayed
                    yield fresh
        except FeedOverflow as exc:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, f"{exc}; reconnect")
        finally:
            unsubscribe()
            self._streams.release()
            self._streams.discard_feed(feed)

    # -- admin ----------------------------------------------------------------------------

    Eject = _admin_rpc(pb.EjectRequest, pb.EjectResponse, Router.eject)
    Restore = _admin_rpc(pb.RestoreRequest, pb.RestoreResponse, Router.restore)
    PinPrimary = _admin_rpc(pb.PinPrimaryRequest, pb.PinPrimaryResponse, Router.pin_primary)
    UnpinPrimary = _admin_rpc(pb.UnpinPrimaryRequest, pb.UnpinPrimaryResponse, Router.unpin_primary)

    def _act(
        self,
        message_type: type[Message],
        data: bytes,
        context: grpc.ServicerContext,
        act: Callable[..., AdminEvent | None],
    ) -> pb.AdminAction:
        """Check the caller, parse, ``act(router, *arguments, by=...)`` with the request's
        :data:`ADMIN_ARGUMENTS`; the action as the router published it (pinning without a
        ``[switcher]`` is a ``FAILED_PRECONDITION``, other bad input ``INVALID_ARGUMENT``)."""
        try:
            identity = self._admin.identity(context)
        except AdminRefused as exc:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, str(exc))
        try:
            request = self._parse(message_type, data, context)
            operator = getattr(request, "operator", "").strip()
            if len(operator) > MAX_OPERATOR_CHARS:
                raise InvalidRequest(
                    f"operator must be at most {MAX_OPERATOR_CHARS} characters, got {len(operator)}"
                )
            by = f"{operator} ({identity})" if operator else identity
            arguments = [getattr(request, name) for name in ADMIN_ARGUMENTS[message_type]]
            event = act(self._router, *arguments, by=by)
        except NoSwitcher as exc:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        except BAD_INPUT as exc:
            _reject(context, exc, message_type, _admin_message(exc))
        assert event is not None  # an operator's eject always returns its event
        return convert.admin_action(event)

    # -- helpers --------------------------------------------------------------------------

    def _parse(self, message_type: type[_M], data: bytes, context: grpc.ServicerContext) -> _M:
        try:
            return convert.parse(message_type, data)
        except convert.MalformedMessage as exc:
            self.malformed.note(str(exc), context.peer())
            raise

    def _record(self, request: convert.Report) -> None:
        decision = None
        if request.HasField("decision_id"):
            text = request.decision_id
            decision_id = self._wire.decision_id(text)
            decision = self._router.pending(decision_id)
            if decision is None:
                raise self._wire.not_in_flight(text, self._router.dropped(decision_id))
        args = self._wire.report_args(request, decision)
        self._router.record(
            args.subject,
            args.outcome,
            latency_ms=args.latency_ms,
            ttft_ms=args.ttft_ms,
            input_tokens=args.input_tokens,
            output_tokens=args.output_tokens,
            error_code=args.error_code,
            cache_read_tokens=args.cache_read_tokens,
            cache_write_tokens=args.cache_write_tokens,
        )

    def _open_stream(self, context: grpc.ServicerContext) -> None:
        if not self._streams.acquire():
            context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"too many open streams (the limit is {self._streams.limit}, see "
                "--max-streams); use Report, or retry later",
            )


_METHODS = (
    ("Choose", grpc.unary_unary_rpc_method_handler, pb.ChooseResponse),
    ("Report", grpc.unary_unary_rpc_method_handler, pb.ReportResponse),
    ("ReportStream", grpc.stream_unary_rpc_method_handler, pb.ReportStreamResponse),
    ("Release", grpc.unary_unary_rpc_method_handler, pb.ReleaseResponse),
    ("GetSnapshot", grpc.unary_unary_rpc_method_handler, pb.GetSnapshotResponse),
    ("WatchSwitches", grpc.unary_stream_rpc_method_handler, pb.WatchSwitchesResponse),
    ("WatchEvents", grpc.unary_stream_rpc_method_handler, pb.WatchEventsResponse),
    ("Eject", grpc.unary_unary_rpc_method_handler, pb.EjectResponse),
    ("Restore", grpc.unary_unary_rpc_method_handler, pb.RestoreResponse),
    ("PinPrimary", grpc.unary_unary_rpc_method_handler, pb.PinPrimaryResponse),
    ("UnpinPrimary", grpc.unary_unary_rpc_method_handler, pb.UnpinPrimaryResponse),
)


def method_handlers(servicer: RouterServicer) -> dict[str, grpc.RpcMethodHandler[Any, Any]]:
    """``mangaroute.v1.Router``'s methods with raw request bytes (no request deserializer:
    the servicer parses) and the responses' serializers."""
    return {
        name: kind(getattr(servicer, name), response_serializer=response.SerializeToString)
        for name, kind, response in _METHODS
    }
