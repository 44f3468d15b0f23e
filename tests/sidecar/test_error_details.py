"""INVALID_ARGUMENT carries a google.rpc.BadRequest naming the field, read by a real gRPC
client through grpcio-status, as a program would (no parsing of the message text)."""

from __future__ import annotations

import math
from typing import Any

import grpc
import pytest
from google.rpc.error_details_pb2 import BadRequest
from grpc_status import rpc_status
from hypothesis import given
from hypothesis import strategies as st

from mangaroute import Router
from mangaroute.sidecar import convert
from mangaroute.sidecar._generated.mangaroute_api.v1 import router_pb2 as pb

from .conftest import TRANSPORTS, ServeFactory, connect, counts, report, stream_report
from .test_bad_input import CHOOSE_CASES, REPORT_CASES

CHOOSE_FIELDS = ["request_class", "input_tokens", "output_tokens", *["budget_ms"] * 3]
REPORT_FIELDS = [
    *["latency_ms"] * 4,
    "ttft_ms",
    "outcome",
    "outcome",
    "input_tokens",
    "target_name",
    "subject",
    *["decision_id"] * 4,
]


def _details(call: Any, request: Any) -> tuple[str, list[tuple[str, str]]]:
    """The status message and the BadRequest's (field, description) pairs."""
    with pytest.raises(grpc.RpcError) as failure:
        call(request, timeout=10)
    status = rpc_status.from_call(failure.value)
    assert status is not None, "no google.rpc.Status in the trailers"
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    [detail] = status.details
    found = BadRequest()
    assert detail.Unpack(found)
    return status.message, [(v.field, v.description) for v in found.field_violations]


def _fill(request: Any, instance: str) -> Any:
    if isinstance(request, pb.ReportRequest) and request.decision_id:
        request = pb.ReportRequest.FromString(request.SerializeToString())
        request.decision_id = request.decision_id.format(instance=instance)
    return request


def test_the_case_tables_have_a_field_each() -> None:
    assert (len(CHOOSE_FIELDS), len(REPORT_FIELDS)) == (len(CHOOSE_CASES), len(REPORT_CASES))


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_every_invalid_choose_and_report_names_its_field(
    serve: ServeFactory, router: Router, transport: str
) -> None:
    with serve(router, transport) as sidecar, connect(sidecar.address) as (_, stub):
        instance = sidecar.servicer.wire.ids.instance
        calls = [(stub.Choose, request, message) for request, message in CHOOSE_CASES] + [
            (stub.Report, _fill(request, instance), message.format(instance=instance))
            for request, message in REPORT_CASES
        ]
        for (call, request, message), field in zip(
            calls, CHOOSE_FIELDS + REPORT_FIELDS, strict=True
        ):
            assert _details(call, request) == (message, [(field, message)])
        assert stub.Choose(pb.ChooseRequest(), timeout=10).target.name  # still serving


def test_release_and_the_admin_rpcs_name_their_fields(serve: ServeFactory, router: Router) -> None:
    with serve(router, "unix") as sidecar, connect(sidecar.address) as (_, stub):
        assert _details(stub.Release, pb.ReleaseRequest()) == (
            "decision_id is empty",
            [("decision_id", "decision_id is empty")],
        )
        eject = pb.EjectRequest(target_name="sagemaker-manga", reason="redeploy", duration_s=-1)
        message, violations = _details(stub.Eject, eject)
        assert message.startswith("duration_s ")
        assert violations == [("duration_s", message)]
        eject = pb.EjectRequest(target_name="nope", reason="redeploy", duration_s=60)
        assert _details(stub.Eject, eject)[1][0][0] == "target_name"
        eject = pb.EjectRequest(target_name="sagemaker-manga", reason=" ", duration_s=60)
        assert _details(stub.Eject, eject)[1][0][0] == "reason"
        pin = pb.PinPrimaryRequest(
            target_name="ondemand-haiku", reason="resize", duration_s=60, operator="x" * 65
        )
        message, violations = _details(stub.PinPrimary, pin)
        assert violations == [("operator", "operator must be at most 64 characters, got 65")]
        assert router.snapshot().target("sagemaker-manga").ejections == 0  # nothing changed


def test_both_negative_token_counts_are_named(serve: ServeFactory, router: Router) -> None:
    with serve(router) as sidecar, connect(sidecar.address) as (_, stub):
        bad = report("ondemand-haiku", cache_read_input_tokens=-1, cache_write_input_tokens=-2)
        _, violations = _details(stub.Report, bad)
        assert [field for field, _ in violations] == [
            "cache_read_input_tokens",
            "cache_write_input_tokens",
        ]


def test_a_malformed_request_names_no_field(serve: ServeFactory, router: Router) -> None:
    with serve(router) as sidecar, connect(sidecar.address) as (channel, _):
        call = channel.unary_unary("/mangaroute.v1.Router/Choose")
        with pytest.raises(grpc.RpcError) as failure:
            call(b"\xff\xff\xff\xff", timeout=10)
        error: Any = failure.value
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert rpc_status.from_call(error) is None  # the message says it; no field to name


def test_report_stream_rejections_name_the_field(serve: ServeFactory, router: Router) -> None:
    with serve(router) as sidecar, connect(sidecar.address) as (_, stub):
        requests = [
            stream_report("ondemand-haiku", latency_ms=math.nan),
            stream_report("ondemand-haiku"),
            stream_report("nope"),
            stream_report("ondemand-haiku", output_tokens=-4),
        ]
        reply = stub.ReportStream(iter(requests), timeout=10)
        assert [(r.index, r.field) for r in reply.rejections] == [
            (0, "latency_ms"),
            (2, "target_name"),
            (3, "output_tokens"),
        ]
        assert counts(stub)["ondemand-haiku"] == (1, 0, 0, 0)


@pytest.mark.parametrize(
    ("message_type", "text", "fields"),
    [
        (pb.ReportRequest, "latency_ms is required", ["latency_ms"]),
        (
            pb.ChooseRequest,
            "estimated tokens must be integers >= 0, got input_tokens=-5, output_tokens=-1",
            ["input_tokens", "output_tokens"],
        ),
        (
            pb.EjectRequest,
            "an operator's eject needs a time limit: cooldown_s must be in [0.001, 604800]",
            ["duration_s"],
        ),
        (pb.ReportRequest, "by must be a non-empty string, got ''", []),
        (pb.UnpinPrimaryRequest, "reason must be a non-empty string, got ''", ["reason"]),
    ],
)
def test_invalid_fields_reads_the_field_from_the_message(
    message_type: Any, text: str, fields: list[str]
) -> None:
    assert convert.invalid_fields(message_type, text) == fields


REPORT_NAMES = sorted(pb.ReportRequest.DESCRIPTOR.fields_by_name)


@given(st.sampled_from(REPORT_NAMES), st.text(max_size=80))
def test_a_message_starting_with_a_field_names_that_field(field: str, rest: str) -> None:
    assert convert.invalid_fields(pb.ReportRequest, f"{field} must be valid, {rest}") == [field]


@given(st.text(max_size=200))
def test_only_fields_of_the_request_are_ever_named(text: str) -> None:
    assert set(convert.invalid_fields(pb.ReportRequest, text)) <= {*REPORT_NAMES, "subject"}
