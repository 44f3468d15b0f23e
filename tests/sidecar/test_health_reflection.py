"""grpc.health.v1 follows the router's breakers; server reflection describes the API."""

from __future__ import annotations

import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from mangaroute import FakeClock, Router
from mangaroute.core.breaker import BreakerState
from mangaroute.core.snapshot import Snapshot
from mangaroute.runtime import SnapshotRefresher
from mangaroute.sidecar import SERVICE_NAME, Sidecar, probe
from mangaroute.sidecar._generated.mangaroute_api.v1 import router_pb2 as pb

from .conftest import TARGETS, TRANSPORTS, ServeFactory, connect, wait_for

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _status(channel: grpc.Channel, service: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
    return int(reply.status)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_health_flips_when_every_target_is_ejected_and_back_after_the_cooldown(
    serve: ServeFactory, router: Router, clock: FakeClock, transport: str
) -> None:
    with (
        serve(router, transport) as sidecar,
        connect(sidecar.address) as (channel, stub),
    ):
        assert _status(channel) == _status(channel, SERVICE_NAME) == SERVING
        watch = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=20
        )
        assert next(watch).status == SERVING

        for name in TARGETS[:-1]:
            router.eject(name, "outage")
        assert _status(channel) == SERVING  # one target left is enough
        router.eject(TARGETS[-1], "outage")
        assert next(watch).status == NOT_SERVING
        wait_for(lambda: _status(channel) == NOT_SERVING)
        assert _status(channel, SERVICE_NAME) == NOT_SERVING
        snapshot = stub.GetSnapshot(pb.GetSnapshotRequest(), timeout=10)
        assert snapshot.serving is False
        decision = stub.Choose(pb.ChooseRequest(request_class="simple"), timeout=10)
        assert decision.reason.startswith("panic")  # still answers: the healthiest target

        clock.advance(seconds=31)  # cool-down over: breakers go half-open on the next check
        assert next(watch).status == SERVING
        assert _status(channel) == SERVING
        watch.cancel()


def test_unknown_health_service_is_not_found(serve: ServeFactory, router: Router) -> None:
    with serve(router) as sidecar, connect(sidecar.address) as (channel, _):
        with pytest.raises(grpc.RpcError) as failure:
            _status(channel, "no.such.Service")
        assert failure.value.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]


def test_health_is_not_serving_while_draining(serve: ServeFactory, router: Router) -> None:
    with serve(router, grace_s=0.2) as sidecar, connect(sidecar.address) as (channel, _):
        watch = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service=""), timeout=20
        )
        assert next(watch).status == SERVING
        sidecar.stop()
        assert next(watch).status == NOT_SERVING


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_reflection_lists_and_describes_the_services(
    serve: ServeFactory, router: Router, transport: str
) -> None:
    with serve(router, transport) as sidecar, connect(sidecar.address) as (channel, _):
        database = ProtoReflectionDescriptorDatabase(channel)
        assert set(database.get_services()) == {
            "mangaroute.v1.Router",
            "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection",
        }
        router_file = database.FindFileContainingSymbol("mangaroute.v1.Router")
        assert router_file.name == "mangaroute_api/v1/router.proto"
        assert router_file.package == "mangaroute.v1"
        methods = [m.name for m in router_file.service[0].method]
        assert methods == [
            "Choose",
            "Report",
            "ReportStream",
            "Release",
            "GetSnapshot",
            "WatchSwitches",
            "WatchEvents",
            "Eject",
            "Restore",
            "PinPrimary",
            "UnpinPrimary",
        ]
        assert "google/protobuf/timestamp.proto" in router_file.dependency
        database.FindFileByName("google/protobuf/timestamp.proto")  # served too


def test_probe_exit_codes(
    serve: ServeFactory,
    router: Router,
    socket_dir: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with serve(router) as sidecar:
        assert probe.main([sidecar.address]) == 0
        assert capsys.readouterr().out == f"{sidecar.address}: SERVING\n"
        for name in TARGETS:
            router.eject(name, "outage")
        wait_for(lambda: probe.main([sidecar.address]) == 1)
    assert probe.main([f"unix:{socket_dir}/gone.sock", "--timeout-s", "0.2"]) == 2
    assert "UNAVAILABLE" in capsys.readouterr().err


def test_refresher_rebuilds_when_the_router_changes_until_stopped(
    router: Router, clock: FakeClock
) -> None:
    seen: list[dict[str, BreakerState]] = []

    def publish(snapshot: Snapshot) -> None:
        seen.append({view.name: view.breaker for view in snapshot.targets})

    assert isinstance(Sidecar(router).refresher, SnapshotRefresher)  # RoutedClient's class
    refresher = SnapshotRefresher(router, on_snapshot=publish)
    refresher.start()  # one snapshot at once, handed to the publisher
    try:
        assert len(seen) == 1
        assert seen[0]["ondemand-haiku"] is BreakerState.CLOSED
        router.eject("ondemand-haiku", "outage")  # due at once: built and published
        wait_for(lambda: len(seen) >= 2)
        assert seen[-1]["ondemand-haiku"] is BreakerState.OPEN
        time.sleep(0.05)  # the fake clock stands still: nothing else is due
        assert len(seen) == 2
    finally:
        assert refresher.stop(5)
    router.eject("ondemand-sonnet", "no listener left behind")
    time.sleep(0.05)
    assert len(seen) == 2
