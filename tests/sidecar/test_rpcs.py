"""Every RPC of mangaroute.v1.Router over a real server, on a Unix socket and on 127.0.0.1."""

from __future__ import annotations

import math
import os
import stat

import grpc
import pytest

from mangaroute import FakeClock, Router
from mangaroute.sidecar._generated.mangaroute_api.v1 import router_pb2 as pb

from .conftest import TARGETS, TRANSPORTS, ServeFactory, connect, counts, report, stream_report


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_choose_then_report_by_decision_id(
    serve: ServeFactory, router: Router, transport: str
) -> None:
    with serve(router, transport) as sidecar, connect(sidecar.address) as (_, stub):
        decision = stub.Choose(
            pb.ChooseRequest(
                request_class="simple",
                session_id="user-1",
                budget_ms=1500,
                input_tokens=500,
                output_tokens=300,
                tags={"tenant": "manga-store"},
            ),
            timeout=10,
        )
        assert decision.target.name == "provisioned-sonnet"
        assert decision.target.pattern == pb.PATTERN_BEDROCK_PROVISIONED
        assert decision.target.model_id.startswith("arn:aws:bedrock:ap-northeast-1:")
        assert decision.target.region == "ap-northeast-1"
        assert decision.target.tier == "sonnet"
        assert [t.name for t in decision.fallbacks] == ["ondemand-haiku", "ondemand-sonnet"]
        assert decision.reason.startswith("primary")
        assert (decision.request_class, decision.policy) == ("simple", "switcher")
        assert decision.decision_id.endswith(".1")
        assert router.pending(1) is not None

        stub.Report(
            report(
                decision_id=decision.decision_id,
                latency_ms=640.0,
                ttft_ms=210.0,
                input_tokens=512,
                output_tokens=280,
            ),
            timeout=10,
        )
        assert router.pending(1) is None
        view = router.snapshot().target("provisioned-sonnet")
        assert (view.ok, view.requests, view.in_flight) == (1, 1, 0)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_empty_request_class_means_the_default_class(
    serve: ServeFactory, router: Router, transport: str
) -> None:
    with serve(router, transport) as sidecar, connect(sidecar.address) as (_, stub):
        decision = stub.Choose(pb.ChooseRequest(), timeout=10)
        assert decision.request_class == router.config.default_class


def test_budget_unset_differs_from_budget_zero(serve: ServeFactory, router: Router) -> None:
    with serve(router) as sidecar, connect(sidecar.address) as (_, stub):
        free = stub.Choose(pb.ChooseRequest(request_class="manga"), timeout=10)
        tight = stub.Choose(pb.ChooseRequest(request_class="manga", budget_ms=0), timeout=10)
        assert "budget" not in free.reason
        assert tight.reason.endswith("+over_budget")


def test_report_by_target_name_and_every_outcome(serve: ServeFactory, router: Router) -> None:
    with serve(router) as sidecar, connect(sidecar.address) as (_, stub):
        outcomes = (pb.OUTCOME_OK, pb.OUTCOME_THROTTLED, pb.OUTCOME_ERROR, pb.OUTCOME_TIMEOUT)
        for outcome in outcomes:
            stub.Report(
                report("ondemand-haiku", outcome=outcome, error_code="ValidationException"),
                timeout=10,
            )
        assert counts(stub)["ondemand-haiku"] == (1, 1, 1, 1)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_report_stream_counts_every_report_exactly(
    serve: ServeFactory, router: Router, transport: str
) -> None:
    per_target = 250
    requests = [
        stream_report(name, latency_ms=100.0 + i) for i in range(per_target) for name in TARGETS
    ]
    with serve(router, transport) as sidecar, connect(sidecar.address) as (_, stub):
        reply = stub.ReportStream(iter(requests), timeout=30)
        assert (reply.accepted, reply.rejected, len(reply.rejections)) == (len(requests), 0, 0)
        assert counts(stub) == dict.fromkeys(TARGETS, (per_target, 0, 0, 0))


def test_report_stream_skips_and_counts_bad_reports(serve: ServeFactory, router: Router) -> None:
    with serve(router) as sidecar, connect(sidecar.address) as (_, stub):
        decision = stub.Choose(pb.ChooseRequest(request_class="simple"), timeout=10)
        requests = [
            stream_report("ondemand-haiku"),
            stream_report("ondemand-haiku", latency_ms=math.nan),
            stream_report(decision_id=decision.decision_id),
            stream_report("nope"),
            *[stream_report("ondemand-haiku", input_tokens=-1)] * 20,
            stream_report("ondemand-haiku"),
        ]
        reply = stub.ReportStream(iter(requests), timeout=10)
        assert (reply.accepted, reply.rejected) == (3, 22)
        assert [r.index for r in reply.rejections] == [1, 3, *range(4, 18)]  # the first 16
        first = reply.rejections[0]
        assert (first.index, first.message) == (
            1,
            "latency_ms must be a finite number >= 0, got nan",
        )
        assert reply.rejections[1].message.startswith("target_name: unknown target 'nope'")
        assert reply.rejections[2].message.startswith("token counts must be integers >= 0")
        assert counts(stub)["ondemand-haiku"] == (2, 0, 0, 0)
        assert counts(stub)["provisioned-sonnet"] == (1, 0, 0, 0)


def test_release_forgets_a_decision_once(serve: ServeFactory, router: Router) -> None:
    with serve(router) as sidecar, connect(sidecar.address) as (_, stub):
        decision = stub.Choose(pb.ChooseRequest(request_class="complex"), timeout=10)
        assert router.snapshot().target(decision.target.name).in_flight == 1
        first = stub.Release(pb.ReleaseRequest(decision_id=decision.decision_id), timeout=10)
        again = stub.Release(pb.ReleaseRequest(decision_id=decision.decision_id), timeout=10)
        assert (first.released, again.released) == (True, False)
        assert router.snapshot().target(decision.target.name).in_flight == 0


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_get_snapshot_has_stats_breakers_routes_and_primary(
    serve: ServeFactory, router: Router, transport: str
) -> None:
    for latency in (400.0, 500.0, 600.0):
        router.record("ondemand-haiku", "ok", latency_ms=latency, ttft_ms=100.0)
    router.record("ondemand-haiku", "throttled", latency_ms=50.0)
    router.eject("sagemaker-manga", "operator says so")
    with serve(router, transport) as sidecar, connect(sidecar.address) as (_, stub):
        snapshot = stub.GetSnapshot(pb.GetSnapshotRequest(), timeout=10)
    core = router.snapshot()
    assert snapshot.primary == core.primary == "provisioned-sonnet"
    assert snapshot.serving is True
    assert snapshot.window_s == core.window_s
    assert [t.target.name for t in snapshot.targets] == list(TARGETS)
    haiku = snapshot.targets[1]
    view = core.target("ondemand-haiku")
    assert (haiku.outcomes.ok, haiku.outcomes.throttled, haiku.requests) == (3, 1, 4)
    assert haiku.samples == view.samples
    assert haiku.latency_source == pb.LATENCY_SOURCE_PRIOR
    assert (haiku.latency_ms.p50, haiku.latency_ms.p99) == (view.p50_ms, view.p99_ms)
    assert haiku.ttft_ms.p50 == pytest.approx(view.ttft_p50_ms)
    assert not haiku.ttft_ms.HasField("p90")
    assert haiku.throttle_rate == pytest.approx(0.25)
    assert haiku.breaker.state == pb.BREAKER_STATE_CLOSED
    manga = snapshot.targets[3]
    assert manga.breaker.state == pb.BREAKER_STATE_OPEN
    assert manga.breaker.reason == "operator says so"
    assert manga.breaker.ejections == 1
    assert not manga.ttft_ms.HasField("p50")
    routes = {r.request_class: r for r in snapshot.routes}
    assert list(routes) == ["simple", "complex", "manga"]
    assert routes["manga"].policy == "preference"
    assert "sagemaker-manga" not in routes["manga"].candidates
    assert [e.target for e in routes["manga"].excluded] == ["sagemaker-manga"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_watch_switches_streams_the_switch_after_the_primary_is_ejected(
    serve: ServeFactory, router: Router, transport: str
) -> None:
    with serve(router, transport) as sidecar, connect(sidecar.address) as (_, stub):
        call = stub.WatchSwitches(pb.WatchSwitchesRequest(), timeout=20)
        call.initial_metadata()  # subscribed
        router.eject("provisioned-sonnet", "maintenance")
        event = next(call)
        assert (event.from_target, event.to_target) == ("provisioned-sonnet", "ondemand-haiku")
        assert event.reason == "unavailable"
        history = router.switch_history()
        assert event.router_clock_ns == history[-1].at_ns
        assert event.time.ToNanoseconds() == pytest.approx(history[-1].unix_time * 1e9, abs=2e3)
        call.cancel()


def test_watch_switches_replays_history_first(
    serve: ServeFactory, router: Router, clock: FakeClock
) -> None:
    router.eject("provisioned-sonnet", "maintenance")
    router.snapshot()  # the switch happens on this rebuild
    with serve(router) as sidecar, connect(sidecar.address) as (_, stub):
        call = stub.WatchSwitches(pb.WatchSwitchesRequest(include_history=True), timeout=20)
        first = next(call)
        assert (first.from_target, first.to_target) == ("provisioned-sonnet", "ondemand-haiku")
        router.eject("ondemand-haiku", "maintenance")
        second = next(call)
        assert (second.from_target, second.to_target) == ("ondemand-haiku", "ondemand-sonnet")
        call.cancel()


def test_watch_streams_end_ok_when_the_sidecar_stops(serve: ServeFactory, router: Router) -> None:
    with serve(router) as sidecar, connect(sidecar.address) as (_, stub):
        calls = [stub.WatchSwitches(pb.WatchSwitchesRequest(), timeout=20) for _ in range(3)]
        for call in calls:
            call.initial_metadata()
        assert sidecar.streams.feeds == 3
        sidecar.stop()
        for call in calls:
            assert list(call) == []
            assert call.code() == grpc.StatusCode.OK


def test_unix_socket_is_owner_only_and_removed_on_stop(
    serve: ServeFactory, router: Router, socket_dir: str
) -> None:
    path = os.path.join(socket_dir, "sidecar.sock")
    with serve(router, "unix") as sidecar:
        assert sidecar.address == f"unix:{path}"
        info = os.stat(path)
        assert stat.S_ISSOCK(info.st_mode)
        assert stat.S_IMODE(info.st_mode) == 0o600
    assert not os.path.exists(path)


def test_socket_mode_can_let_the_group_in(
    serve: ServeFactory, router: Router, socket_dir: str
) -> None:
    with serve(router, "unix", socket_mode=0o660):
        mode = stat.S_IMODE(os.stat(os.path.join(socket_dir, "sidecar.sock")).st_mode)
        assert mode == 0o660


def test_a_report_carries_prompt_cache_tokens_into_spend_and_capacity(
    serve: ServeFactory, router: Router
) -> None:
    """Non-Python callers report Converse's cache usage too: cache reads priced at the
    target's cache-read price (its input price when none is set) and left out of capacity,
    cache writes priced and counted."""
    haiku = router.config.target("ondemand-haiku").pricing
    with serve(router) as sidecar, connect(sidecar.address) as (_, stub):
        stub.Report(
            report(
                "ondemand-haiku",
                input_tokens=100,
                output_tokens=50,
                cache_read_input_tokens=900,
                cache_write_input_tokens=200,
            ),
            timeout=10,
        )
    want = haiku.token_cost_usd(100, 50, 900, 200)
    assert want > haiku.token_cost_usd(100, 50)
    sample = router.local_sample()
    assert sample.spend_usd == pytest.approx(want)
    assert sample.tokens["ondemand-haiku"] == 100 + 200 + 50  # cache reads not counted


def test_clients_of_the_older_proto_still_stream_reports_and_read_switches(
    serve: ServeFactory, router: Router
) -> None:
    """Before the per-RPC messages, ReportStream took ReportRequest and WatchSwitches sent
    SwitchEvent: a client generated from that file keeps working on the wire."""
    service = "/mangaroute.v1.Router/"
    with serve(router) as sidecar, connect(sidecar.address) as (channel, stub):
        old_stream = channel.stream_unary(
            service + "ReportStream",
            pb.ReportRequest.SerializeToString,
            pb.ReportStreamResponse.FromString,
        )
        reply = old_stream(iter([report("ondemand-haiku"), report("ondemand-sonnet")]), timeout=10)
        assert (reply.accepted, reply.rejected) == (2, 0)
        assert counts(stub)["ondemand-haiku"] == (1, 0, 0, 0)
        old_watch = channel.unary_stream(
            service + "WatchSwitches",
            pb.WatchSwitchesRequest.SerializeToString,
            pb.SwitchEvent.FromString,
        )
        call = old_watch(pb.WatchSwitchesRequest(), timeout=20)
        call.initial_metadata()  # subscribed
        router.eject("provisioned-sonnet", "maintenance")
        event = next(call)
        assert isinstance(event, pb.SwitchEvent)
        assert (event.from_target, event.to_target, event.reason) == (
            "provisioned-sonnet",
            "ondemand-haiku",
            "unavailable",
        )
        call.cancel()
