"""Bad input gets INVALID_ARGUMENT (or RESOURCE_EXHAUSTED) naming the field, changes nothing,
and the sidecar keeps serving."""

from __future__ import annotations

import math
from typing import Any

import grpc
import pytest

from mangaroute import FakeClock, Router
from mangaroute.sidecar._generated.mangaroute_api.v1 import router_pb2 as pb
from mangaroute.sidecar._generated.mangaroute_api.v1 import router_pb2_grpc as pb_grpc

from .conftest import TARGETS, ServeFactory, connect, counts, report, stream_report, wait_for

INVALID = grpc.StatusCode.INVALID_ARGUMENT


def _status(call: Any, request: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as failure:
        call(request, timeout=10)
    error: Any = failure.value
    return error.code(), error.details()


CHOOSE_CASES = [
    (
        pb.ChooseRequest(request_class="poetry"),
        "request_class: unknown request class 'poetry'; configured classes: simple, complex, manga",
    ),
    (
        pb.ChooseRequest(input_tokens=-5),
        "estimated tokens must be integers >= 0, got input_tokens=-5, output_tokens=0",
    ),
    (
        pb.ChooseRequest(output_tokens=-1),
        "estimated tokens must be integers >= 0, got input_tokens=0, output_tokens=-1",
    ),
    (pb.ChooseRequest(budget_ms=math.nan), "budget_ms must be a finite number >= 0, got nan"),
    (pb.ChooseRequest(budget_ms=-1.0), "budget_ms must be a finite number >= 0, got -1.0"),
    (pb.ChooseRequest(budget_ms=math.inf), "budget_ms must be a finite number >= 0, got inf"),
]


@pytest.mark.parametrize(("request_", "message"), CHOOSE_CASES)
def test_invalid_choose(
    serve: ServeFactory, router: Router, request_: pb.ChooseRequest, message: str
) -> None:
    with serve(router) as sidecar, connect(sidecar.address) as (_, stub):
        assert _status(stub.Choose, request_) == (INVALID, message)
        assert stub.Choose(pb.ChooseRequest(), timeout=10).target.name  # still serving
    assert sum(v.in_flight for v in router.snapshot().targets) == 1


REPORT_CASES = [
    (
        report("ondemand-haiku", latency_ms=math.nan),
        "latency_ms must be a finite number >= 0, got nan",
    ),
    (
        report("ondemand-haiku", latency_ms=-3.0),
        "latency_ms must be a finite number >= 0, got -3.0",
    ),
    (
        report("ondemand-haiku", latency_ms=math.inf),
        "latency_ms must be a finite number >= 0, got inf",
    ),
    (
        pb.ReportRequest(target_name="ondemand-haiku", outcome=pb.OUTCOME_OK),
        "latency_ms is required",
    ),
    (
        report("ondemand-haiku", ttft_ms=900.0, latency_ms=500.0),
        "ttft_ms must be a finite number in [0, latency_ms=500.0], got 900.0",
    ),
    (
        report("ondemand-haiku", outcome=pb.OUTCOME_UNSPECIFIED),
        "outcome must be one of OUTCOME_OK, OUTCOME_THROTTLED, OUTCOME_ERROR, OUTCOME_TIMEOUT, "
        "got OUTCOME_UNSPECIFIED (0)",
    ),
    (
        report("ondemand-haiku", outcome=99),
        "outcome must be one of OUTCOME_OK, OUTCOME_THROTTLED, OUTCOME_ERROR, OUTCOME_TIMEOUT, "
        "got unknown value 99",
    ),
    (
        report("ondemand-haiku", input_tokens=-1),
        "token counts must be integers >= 0, got input_tokens=-1, output_tokens=0",
    ),
    (
        report("claude-on-a-toaster"),
        "target_name: unknown target 'claude-on-a-toaster'; known targets: " + ", ".join(TARGETS),
    ),
    (
        pb.ReportRequest(outcome=pb.OUTCOME_OK, latency_ms=10.0),
        "subject: one of decision_id or target_name is required",
    ),
    (
        report(decision_id="17"),
        "decision_id '17' is malformed: pass ChooseResponse.decision_id unchanged",
    ),
    (
        report(decision_id="{instance}.1\u00b2"),
        "decision_id '{instance}.1\u00b2' is malformed: pass ChooseResponse.decision_id unchanged",
    ),
    (
        report(decision_id="0badc0de.17"),
        "decision_id '0badc0de.17' was issued by another sidecar instance (this one, "
        "'{instance}', started since); report the call by target_name",
    ),
    (
        report(decision_id="{instance}.999"),
        "decision_id '{instance}.999' is not in flight: already reported or released, or older "
        "than decision_ttl_s=300 s; report the call by target_name",
    ),
]


@pytest.mark.parametrize(("request_", "message"), REPORT_CASES)
def test_invalid_report_changes_nothing(
    serve: ServeFactory, router: Router, request_: pb.ReportRequest, message: str
) -> None:
    with serve(router) as sidecar, connect(sidecar.address) as (_, stub):
        instance = sidecar.servicer.wire.ids.instance
        if request_.decision_id:  # a copy: the case table is shared with test_error_details
            request_ = pb.ReportRequest.FromString(request_.SerializeToString())
            request_.decision_id = request_.decision_id.format(instance=instance)
        stub.Report(report("ondemand-haiku"), timeout=10)
        before = counts(stub)
        assert _status(stub.Report, request_) == (INVALID, message.format(instance=instance))
        assert counts(stub) == before
        stub.Report(report("ondemand-haiku"), timeout=10)  # still serving
        assert counts(stub)["ondemand-haiku"] == (2, 0, 0, 0)


def _choose_and_report(stub: pb_grpc.RouterStub) -> str:
    decision = stub.Choose(pb.ChooseRequest(request_class="simple"), timeout=10)
    stub.Report(report(decision_id=decision.decision_id), timeout=10)
    return str(decision.decision_id)


def test_a_decision_reported_twice_is_rejected_the_second_time(
    serve: ServeFactory, router: Router
) -> None:
    with serve(router) as sidecar, connect(sidecar.address) as (_, stub):
        decision_id = _choose_and_report(stub)
        code, details = _status(stub.Report, report(decision_id=decision_id))
        assert code == INVALID
        assert details.startswith(f"decision_id {decision_id!r} is not in flight")
        assert counts(stub)["provisioned-sonnet"] == (1, 0, 0, 0)


def test_an_expired_decision_is_rejected(
    serve: ServeFactory, router: Router, clock: FakeClock
) -> None:
    with serve(router) as sidecar, connect(sidecar.address) as (_, stub):
        decision = stub.Choose(pb.ChooseRequest(request_class="simple"), timeout=10)
        clock.advance(seconds=301)
        router.snapshot()  # the sweep drops decisions older than decision_ttl_s
        code, details = _status(stub.Report, report(decision_id=decision.decision_id))
        assert code == INVALID
        assert "older than decision_ttl_s=300 s" in details
        stub.Report(report(decision.target.name), timeout=10)  # the advice works


def test_release_with_a_malformed_id(serve: ServeFactory, router: Router) -> None:
    with serve(router) as sidecar, connect(sidecar.address) as (_, stub):
        assert _status(stub.Release, pb.ReleaseRequest()) == (INVALID, "decision_id is empty")


def test_oversized_messages_get_resource_exhausted(serve: ServeFactory, router: Router) -> None:
    with serve(router, max_message_bytes=4096) as sidecar, connect(sidecar.address) as (_, stub):
        code, details = _status(stub.Choose, pb.ChooseRequest(session_id="x" * 5000))
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "4096" in details
        big = iter(
            [
                stream_report("ondemand-haiku"),
                stream_report("ondemand-haiku", error_code="E" * 5000),
            ]
        )
        with pytest.raises(grpc.RpcError) as failure:
            stub.ReportStream(big, timeout=10)
        assert failure.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
        assert stub.Choose(pb.ChooseRequest(session_id="x" * 3000), timeout=10).decision_id


def test_streams_beyond_the_limit_get_resource_exhausted(
    serve: ServeFactory, router: Router
) -> None:
    with serve(router, max_streams=2) as sidecar, connect(sidecar.address) as (_, stub):
        open_calls = [stub.WatchSwitches(pb.WatchSwitchesRequest(), timeout=20) for _ in range(2)]
        for call in open_calls:
            call.initial_metadata()
        extra = stub.WatchSwitches(pb.WatchSwitchesRequest(), timeout=20)
        with pytest.raises(grpc.RpcError) as failure:
            next(extra)
        error: Any = failure.value
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "too many open streams (the limit is 2" in error.details()
        code, _ = _status(stub.ReportStream, iter([stream_report("ondemand-haiku")]))
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert stub.Choose(pb.ChooseRequest(), timeout=10).decision_id  # unary calls unaffected
        open_calls[0].cancel()
        wait_for(lambda: sidecar.streams.feeds == 1)  # the server has seen the cancel
        reply = stub.ReportStream(iter([stream_report("ondemand-haiku")]), timeout=10)
        assert reply.accepted == 1
        open_calls[1].cancel()
