"""Translation between ``mangaroute.v1`` messages and the core's values, and nothing else.

No gRPC here: functions take and return protobuf messages and core objects, and raise the
core's input errors (:class:`InvalidObservation`, :class:`InvalidRequest`) with a message that
names the wire field. The servicer maps those to ``INVALID_ARGUMENT``.

Requests arrive as bytes and are parsed here (:func:`parse`), not by gRPC: grpcio 1.85 keeps
~18 KB of memory for every request its own deserializer fails on (measured in issue 13, a
bare grpcio server included), so a peer sending bytes that are not protobuf could grow the
sidecar without bound.

Target messages are built once per target (targets are immutable), so a ``Choose`` reply costs
one message with copies of prebuilt parts.
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Iterable
from typing import NamedTuple, TypeVar

from google.protobuf.any_pb2 import Any
from google.protobuf.message import DecodeError, Message
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc.code_pb2 import INVALID_ARGUMENT
from google.rpc.error_details_pb2 import BadRequest
from google.rpc.status_pb2 import Status

from mangaroute.core.breaker import BreakerState
from mangaroute.core.decision import Decision
from mangaroute.core.errors import InvalidObservation, InvalidRequest, echo
from mangaroute.core.fleet import FleetView
from mangaroute.core.outcome import Outcome
from mangaroute.core.snapshot import (
    AdminEvent,
    Pin,
    ReloadEvent,
    Route,
    RouterEvent,
    Snapshot,
    SwitchEvent,
    TargetView,
)
from mangaroute.core.targets import Pattern, Target
from mangaroute.sidecar._generated.mangaroute_api.v1 import router_pb2 as pb

PATTERNS: dict[Pattern, pb.Pattern] = {
    pattern: getattr(pb, f"PATTERN_{pattern.name}") for pattern in Pattern
}
BREAKER_STATES: dict[BreakerState, pb.BreakerState] = {
    state: getattr(pb, f"BREAKER_STATE_{state.name}") for state in BreakerState
}
OUTCOMES: dict[int, Outcome] = {
    pb.Outcome.Value(f"OUTCOME_{outcome.name}"): outcome for outcome in Outcome
}
LATENCY_SOURCES: dict[str, pb.LatencySource] = {
    "prior": pb.LATENCY_SOURCE_PRIOR,
    "observed": pb.LATENCY_SOURCE_OBSERVED,
}
_OUTCOME_NAMES = ", ".join(pb.Outcome.Name(number) for number in OUTCOMES)
_ID_SHAPE = re.compile(r"[0-9a-f]{8}\.[0-9]{1,19}")
_M = TypeVar("_M", bound=Message)


class MalformedMessage(InvalidRequest):
    """Request bytes that are not a valid protobuf message of the method's type (corrupt wire
    format, or a ``string`` field that is not UTF-8, which proto3 requires)."""


def parse(message_type: type[_M], data: bytes) -> _M:
    """``message_type`` parsed from ``data``; :class:`MalformedMessage` names the type, the
    size and the parser's reason (upb says ``Wire format was corrupt`` or ``String field had
    bad UTF-8``)."""
    try:
        return message_type.FromString(data)
    except DecodeError as exc:
        # newer runtimes add why (7.x: "...ChooseRequest': Wire format was corrupt"); 5.x only
        # says that parsing failed ("Error parsing message"), which adds nothing to ours
        reason = str(exc).rpartition("': ")[2] if "': " in str(exc) else "not valid protobuf"
        name = message_type.DESCRIPTOR.full_name
        raise MalformedMessage(
            f"malformed request: not a valid {name} ({len(data)} bytes): {reason}"
        ) from None


_WIRE_NAMES = {
    "cache_read_tokens": "cache_read_input_tokens",
    "cache_write_tokens": "cache_write_input_tokens",
    "cooldown_s": "duration_s",
}
"""The core's argument names that differ from the request fields they come from."""
_WORD = re.compile(r"\w+")
_NEGATIVE = re.compile(r"\b(\w+)=-")
_SUBJECT = re.compile(r"\b(\w+) must\b")


def invalid_fields(message_type: type[Message], text: str) -> list[str]:
    """The fields of ``message_type`` an input error's ``text`` is about: the field it starts
    with (the core's and this module's messages do: ``latency_ms must be ...``,
    ``request_class: unknown ...``), else those it quotes with a negative value
    (``input_tokens=-1``), else the one it says "must" of; none if it names none."""
    descriptor = message_type.DESCRIPTOR
    names = set(descriptor.fields_by_name) | set(descriptor.oneofs_by_name)
    words = [_WIRE_NAMES.get(word, word) for word in _WORD.findall(text)]
    if words and words[0] in names:
        return words[:1]
    negative = [_WIRE_NAMES.get(w, w) for w in _NEGATIVE.findall(text)]
    found = [name for name in negative if name in names]
    must = [_WIRE_NAMES.get(w, w) for w in _SUBJECT.findall(text)]
    return list(dict.fromkeys(found)) or [name for name in must if name in names][:1]


def bad_request(text: str, fields: Iterable[str]) -> Status:
    """An ``INVALID_ARGUMENT`` status with a ``google.rpc.BadRequest`` naming ``fields``, each
    described by ``text`` (the status message), for clients that read the error details
    (AIP-193; ``grpc_status.rpc_status.from_call`` in Python)."""
    violations = [BadRequest.FieldViolation(field=name, description=text) for name in fields]
    detail = Any()
    detail.Pack(BadRequest(field_violations=violations))
    return Status(code=INVALID_ARGUMENT, message=text, details=[detail])


def is_serving(snapshot: Snapshot) -> bool:
    """Whether any target can take traffic: its breaker is closed or half-open (probing)."""
    return any(view.breaker is not BreakerState.OPEN for view in snapshot.targets)


def target_message(target: Target) -> pb.Target:
    return pb.Target(
        name=target.name,
        pattern=PATTERNS[target.pattern],
        model_id=target.model_id,
        region=target.region,
        tier=target.tier,
    )


Report = pb.ReportRequest | pb.ReportStreamRequest
"""A report, from ``Report`` or ``ReportStream`` (the same fields)."""


class ReportArgs(NamedTuple):
    """A ``ReportRequest`` (or ``ReportStreamRequest``) as ``Router.record()`` arguments."""

    subject: Decision | str
    outcome: Outcome
    latency_ms: float
    ttft_ms: float | None
    input_tokens: int
    output_tokens: int
    error_code: str | None
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


class DecisionIds:
    """Decision ids on the wire: ``"<instance>.<n>"``.

    The router's ids are integers that restart at 1 with every process; the random 8-hex-digit
    instance prefix (new at every start) keeps an id issued before a restart from naming a
    different, newer decision.
    """

    def __init__(self, instance: str | None = None) -> None:
        self.instance = instance or secrets.token_hex(4)
        self._prefix = self.instance + "."

    def encode(self, decision_id: int) -> str:
        return self._prefix + str(decision_id)

    def decode(self, text: str) -> int:
        prefix = self._prefix
        if text.startswith(prefix):
            number = text[len(prefix) :]
            if number.isascii() and number.isdigit() and len(number) <= 19:
                return int(number)
        if _ID_SHAPE.fullmatch(text):
            raise InvalidObservation(
                f"decision_id {echo(text)} was issued by another sidecar instance (this one, "
                f"{self.instance!r}, started since); report the call by target_name"
            )
        raise InvalidObservation(
            f"decision_id {echo(text)} is malformed: pass ChooseResponse.decision_id unchanged"
        )


class Wire:
    """Builds and reads ``mangaroute.v1`` messages for one router's targets."""

    def __init__(self, targets: Iterable[Target], ids: DecisionIds, decision_ttl_s: float) -> None:
        self._targets = {target.name: (target, target_message(target)) for target in targets}
        self.ids = ids
        self._ttl_s = decision_ttl_s

    def _target(self, target: Target) -> pb.Target:
        """The message of ``target``, built once per target object (a config reload brings
        new ones; the table is replaced, never changed in place, for concurrent readers)."""
        cached = self._targets.get(target.name)
        if cached is not None and cached[0] is target:
            return cached[1]
        message = target_message(target)
        self._targets = {**self._targets, target.name: (target, message)}
        return message

    # -- Choose --------------------------------------------------------------------------

    def choose_response(self, decision: Decision) -> pb.ChooseResponse:
        target = self._target
        return pb.ChooseResponse(
            decision_id=self.ids.encode(decision.decision_id),
            target=target(decision.target),
            fallbacks=[target(t) for t in decision.fallbacks],
            reason=decision.reason,
            request_class=decision.request_class,
            policy=decision.policy,
        )

    # -- Report --------------------------------------------------------------------------

    def decision_id(self, text: str) -> int:
        if not text:
            raise InvalidObservation("decision_id is empty")
        return self.ids.decode(text)

    def not_in_flight(self, text: str, dropped: str | None = None) -> InvalidObservation:
        """``dropped``: the router's reason when it dropped the decision unreported
        (:meth:`~mangaroute.core.router.Router.dropped`)."""
        why = dropped or (
            f"already reported or released, or older than decision_ttl_s={self._ttl_s:g} s"
        )
        return InvalidObservation(
            f"decision_id {echo(text)} is not in flight: {why}; report the call by target_name"
        )

    def report_args(self, request: Report, decision: Decision | None) -> ReportArgs:
        """Read a report whose subject is ``decision`` (already looked up) or the
        ``target_name`` of the request; the router validates numbers and names."""
        subject: Decision | str
        if decision is not None:
            subject = decision
        elif request.HasField("target_name"):
            subject = request.target_name
        else:
            raise InvalidObservation("subject: one of decision_id or target_name is required")
        outcome = OUTCOMES.get(request.outcome)
        if outcome is None:
            raise InvalidObservation(
                f"outcome must be one of {_OUTCOME_NAMES}, got {_enum_name(request.outcome)}"
            )
        if not request.HasField("latency_ms"):
            raise InvalidObservation("latency_ms is required")
        return ReportArgs(
            subject,
            outcome,
            request.latency_ms,
            request.ttft_ms if request.HasField("ttft_ms") else None,
            request.input_tokens,
            request.output_tokens,
            request.error_code or None,
            request.cache_read_input_tokens,
            request.cache_write_input_tokens,
        )

    # -- GetSnapshot ---------------------------------------------------------------------

    def snapshot_response(self, snapshot: Snapshot) -> pb.GetSnapshotResponse:
        return pb.GetSnapshotResponse(
            primary=snapshot.primary or "",
            targets=[self._target_stats(view) for view in snapshot.targets],
            routes=[_route(name, route) for name, route in snapshot.routes.items()],
            window_s=snapshot.window_s,
            serving=is_serving(snapshot),
            fleet=_fleet(snapshot.fleet) if snapshot.fleet is not None else None,
            pin=_pin(snapshot.pin) if snapshot.pin is not None else None,
        )

    def _target_stats(self, view: TargetView) -> pb.TargetStats:
        return pb.TargetStats(
            target=self._target(view.target),
            latency_ms=_percentiles(view.p50_ms, view.p90_ms, view.p99_ms),
            latency_source=LATENCY_SOURCES.get(view.latency_source, pb.LATENCY_SOURCE_UNSPECIFIED),
            ttft_ms=_percentiles(view.ttft_p50_ms, math.nan, view.ttft_p99_ms),
            samples=view.samples,
            requests=view.requests,
            outcomes=pb.OutcomeCounts(
                ok=view.ok, throttled=view.throttled, error=view.errors, timeout=view.timeouts
            ),
            error_rate=view.error_rate,
            throttle_rate=view.throttle_rate,
            tokens_per_minute=view.tokens_per_minute,
            requests_per_second=view.requests_per_second,
            utilization=view.utilization,
            in_flight=view.in_flight,
            breaker=pb.Breaker(
                state=BREAKER_STATES[view.breaker],
                reason=view.breaker_reason,
                ejections=view.ejections,
                until=timestamp(view.breaker_until) if view.breaker_until is not None else None,
            ),
        )


def timestamp(unix_time: float) -> Timestamp:
    """Epoch seconds as a protobuf ``Timestamp``."""
    time = Timestamp()
    seconds = math.floor(unix_time)
    time.seconds = seconds
    time.nanos = min(999_999_999, round((unix_time - seconds) * 1e9))
    return time


_S = TypeVar("_S", pb.SwitchEvent, pb.WatchSwitchesResponse)


def switch_event(event: SwitchEvent, message: type[_S]) -> _S:
    """A switch as ``message``: ``SwitchEvent`` (in ``WatchEvents``) or
    ``WatchSwitchesResponse`` (the same fields)."""
    return message(
        from_target=event.from_target,
        to_target=event.to_target,
        reason=event.reason,
        time=timestamp(event.unix_time),
        router_clock_ns=event.at_ns,
    )


def watch_event(event: RouterEvent) -> pb.WatchEventsResponse:
    """One ``WatchEvents`` message."""
    if isinstance(event, SwitchEvent):
        return pb.WatchEventsResponse(primary_switch=switch_event(event, pb.SwitchEvent))
    if isinstance(event, AdminEvent):
        return pb.WatchEventsResponse(admin=admin_action(event))
    if isinstance(event, ReloadEvent):
        reload = pb.ConfigReload(
            source=event.source,
            accepted=event.accepted,
            detail=event.detail,
            time=timestamp(event.unix_time),
            router_clock_ns=event.at_ns,
        )
        return pb.WatchEventsResponse(reload=reload)
    breaker = pb.BreakerEvent(
        target=event.target,
        from_state=BREAKER_STATES[event.from_state],
        to_state=BREAKER_STATES[event.to_state],
        reason=event.reason,
        time=timestamp(event.unix_time),
        router_clock_ns=event.at_ns,
    )
    return pb.WatchEventsResponse(breaker=breaker)


def admin_action(event: AdminEvent) -> pb.AdminAction:
    return pb.AdminAction(
        action=event.action,
        target=event.target,
        reason=event.reason,
        by=event.by,
        until=timestamp(event.until_unix) if event.until_unix is not None else None,
        changed=event.changed,
        time=timestamp(event.unix_time),
    )


def _pin(pin: Pin) -> pb.PrimaryPin:
    return pb.PrimaryPin(
        target=pin.target, reason=pin.reason, by=pin.by, until=timestamp(pin.until_unix)
    )


def _route(name: str, route: Route) -> pb.Route:
    return pb.Route(
        request_class=name,
        policy=route.policy,
        candidates=[view.name for view in route.candidates],
        excluded=[pb.Exclusion(target=target, reason=why) for target, why in route.excluded],
        probes=list(route.probes),
    )


def _percentiles(p50: float, p90: float, p99: float) -> pb.Percentiles:
    message = pb.Percentiles()
    if not math.isnan(p50):
        message.p50 = p50
    if not math.isnan(p90):
        message.p90 = p90
    if not math.isnan(p99):
        message.p99 = p99
    return message


def _enum_name(number: int) -> str:
    try:
        return f"{pb.Outcome.Name(number)} ({number})"
    except ValueError:
        return f"unknown value {number}"


def _fleet(view: FleetView) -> pb.FleetView:
    return pb.FleetView(
        unix_time=view.unix_s,
        replicas=view.replicas,
        primary=view.primary or "",
        primary_epoch=view.primary_epoch,
        ejections=[
            pb.FleetEjection(target=e.target, replica=e.replica, state=e.state, reason=e.reason)
            for e in view.ejections
        ],
        others_tokens_per_minute=dict(view.tokens_per_minute),
        others_requests_per_second=dict(view.requests_per_second),
        others_spend_usd=sum(view.spend_by_quarter.values()),
    )
