"""``WatchEvents``: switches, breaker moves, operators' actions and config reloads on one
stream, against a real server; and a served sidecar's reloads as events and as a metric."""

from __future__ import annotations

import queue
import re
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import grpc

from mangaroute import FakeClock, Router, load_default_config
from mangaroute.sidecar._generated.mangaroute_api.v1 import router_pb2 as pb
from mangaroute.sidecar._generated.mangaroute_api.v1 import router_pb2_grpc as pb_grpc

from .conftest import ServeFactory, ServeProcess, connect, wait_for
from .test_metrics import _scrape, _total

SHIPPED = resources.files("mangaroute").joinpath("data", "mangaassist.toml").read_text("utf-8")
KEPT = f"{len(load_default_config().targets)} targets kept"


@contextmanager
def watching(stub: pb_grpc.RouterStub) -> Iterator[queue.Queue[pb.WatchEventsResponse]]:
    """A ``WatchEvents`` stream read on a thread into a queue; subscribed on entry."""
    call = stub.WatchEvents(pb.WatchEventsRequest(), timeout=60)
    call.initial_metadata()  # the server subscribed before it sent these
    events: queue.Queue[pb.WatchEventsResponse] = queue.Queue()

    def read() -> None:
        try:
            for event in call:
                events.put(event)
        except grpc.RpcError:
            pass  # cancelled at exit

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield events
    finally:
        call.cancel()
        reader.join(10)


def _next(events: queue.Queue[pb.WatchEventsResponse]) -> pb.WatchEventsResponse:
    return events.get(timeout=20)


def test_one_stream_carries_admin_actions_breaker_moves_switches_and_reloads(
    serve: ServeFactory, router: Router, clock: FakeClock
) -> None:
    with serve(router, "unix") as sidecar, connect(sidecar.address) as (_, stub):
        with watching(stub) as events:
            stub.Eject(
                pb.EjectRequest(target_name="provisioned-sonnet", reason="drain", duration_s=60),
                timeout=10,
            )
            admin = _next(events)
            assert admin.WhichOneof("event") == "admin"
            assert (admin.admin.action, admin.admin.target) == ("eject", "provisioned-sonnet")
            breaker = _next(events)
            assert breaker.WhichOneof("event") == "breaker"
            assert (breaker.breaker.from_state, breaker.breaker.to_state) == (
                pb.BREAKER_STATE_CLOSED,
                pb.BREAKER_STATE_OPEN,
            )
            assert breaker.breaker.reason.startswith("operator(unix socket, uid ")
            switch = _next(events)
            assert switch.WhichOneof("event") == "primary_switch"
            assert switch.primary_switch.from_target == "provisioned-sonnet"
            assert switch.primary_switch.reason == "unavailable"

            router.reconfigure(load_default_config())
            reload = _next(events)
            assert reload.WhichOneof("event") == "reload"
            assert reload.reload.accepted and reload.reload.detail == KEPT
            router.reject_reload("/etc/router.toml", "[router] window_s: must be > 0")
            rejected = _next(events).reload
            assert (rejected.source, rejected.accepted, rejected.detail) == (
                "/etc/router.toml",
                False,
                "[router] window_s: must be > 0",
            )
        wait_for(lambda: sidecar.streams.in_use == 0)  # the slot is given back


def test_a_served_sidecars_reloads_are_events_and_a_metric(
    spawn: type[ServeProcess], tmp_path: Path
) -> None:
    path = tmp_path / "router.toml"
    path.write_text(SHIPPED)
    server = spawn(
        [sys.executable, "-m", "mangaroute", "serve", "--config", str(path), "--listen",
         "127.0.0.1:0", "--metrics", "prometheus", "--prometheus-port", "0"]
    )  # fmt: skip
    address = server.address()
    found = re.search(r"Prometheus scrape endpoint at (\S+/metrics)", "".join(server.log))
    assert found, "".join(server.log)
    with connect(address) as (_, stub), watching(stub) as events:
        path.write_text(SHIPPED + "\n[targets.broken\n")
        server.process.send_signal(signal.SIGHUP)
        rejected = _next(events).reload
        assert not rejected.accepted and rejected.source == str(path)
        assert str(path) in rejected.detail
        path.write_text(
            SHIPPED.replace("input_per_million_usd = 0.25", "input_per_million_usd = 0.3")
        )
        server.process.send_signal(signal.SIGHUP)
        accepted = _next(events).reload
        assert accepted.accepted and accepted.detail == KEPT
    url = found.group(1)
    wait_for(lambda: _total(_scrape(url).get("mangaroute_config_reloads_total", [])) == 2)
    reloads = _scrape(url)["mangaroute_config_reloads_total"]
    assert _total(reloads, mangaroute_reload_result="accepted") == 1
    assert _total(reloads, mangaroute_reload_result="rejected") == 1
    server.process.send_signal(signal.SIGTERM)
    assert server.finish() == 0
