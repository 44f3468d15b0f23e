"""The sidecar's GetSnapshot carries the fleet view of a replica that shares state."""

from __future__ import annotations

from pathlib import Path

import grpc

from mangaroute import FakeClock, Router, load_default_config
from mangaroute.sidecar import Sidecar, SidecarSettings, parse_listen
from mangaroute.sidecar._generated.mangaroute_api.v1 import router_pb2 as pb
from mangaroute.sidecar._generated.mangaroute_api.v1 import router_pb2_grpc as pb_grpc
from tests.shared.helpers import START_NS, replica


def _snapshot(router: Router, socket: Path) -> pb.GetSnapshotResponse:
    sidecar = Sidecar(router, SidecarSettings(listen=parse_listen(f"unix:{socket}"), grace_s=1))
    sidecar.start()
    try:
        with grpc.insecure_channel(sidecar.address) as channel:
            stub = pb_grpc.RouterStub(channel)
            return stub.GetSnapshot(pb.GetSnapshotRequest(), timeout=10)
    finally:
        sidecar.stop()


def test_get_snapshot_shows_what_the_other_replicas_contribute(
    redis_url: str, deployment: str, tmp_path: Path
) -> None:
    clock = FakeClock(START_NS)
    config = load_default_config()
    a, sa = replica(clock, redis_url, deployment, "a", config=config)
    b, sb = replica(clock, redis_url, deployment, "b", config=config)
    assert not _snapshot(b, tmp_path / "alone.sock").HasField("fleet")
    for _ in range(12):
        a.record("ondemand-haiku", latency_ms=500, input_tokens=700, output_tokens=300)
    a.eject("sagemaker-manga", "AccessDeniedException")
    clock.advance(seconds=6)
    assert sa.sync_now() and sb.sync_now()
    snapshot = _snapshot(b, tmp_path / "fleet.sock")
    assert snapshot.HasField("fleet")
    fleet = snapshot.fleet
    assert fleet.replicas == 2
    assert [(e.target, e.replica, e.state, e.reason) for e in fleet.ejections] == [
        ("sagemaker-manga", "a", "open", "AccessDeniedException")
    ]
    assert fleet.others_tokens_per_minute["ondemand-haiku"] == 12_000 / 6 * 60
    assert fleet.others_requests_per_second["ondemand-haiku"] == 2.0
    manga = next(t for t in snapshot.targets if t.target.name == "sagemaker-manga")
    assert manga.breaker.state == pb.BREAKER_STATE_OPEN
    assert manga.breaker.reason == "fleet:AccessDeniedException"
    haiku = next(t for t in snapshot.targets if t.target.name == "ondemand-haiku")
    assert haiku.tokens_per_minute == 120_000
