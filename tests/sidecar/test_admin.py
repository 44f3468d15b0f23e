"""The admin RPCs (Eject, Restore, PinPrimary, UnpinPrimary) against a real gRPC server, who
may call them, and ``mangaroute admin`` against a served sidecar."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st

from mangaroute import FakeClock, Router, parse_config
from mangaroute.cli import main
from mangaroute.sidecar import SidecarError, SidecarSettings, TlsFiles, parse_listen
from mangaroute.sidecar._generated.mangaroute_api.v1 import router_pb2 as pb
from mangaroute.sidecar.cli.admin import parse_duration

from ..conftest import SMALL_CONFIG
from .conftest import ROOT, ServeFactory, ServeProcess, connect
from .test_tls import Pki, _cert, _key, _write, pki  # noqa: F401 - the fixture

SAGEMAKER = "sagemaker-manga"
UID = os.getuid()


def _denied(call: object) -> str:
    with pytest.raises(grpc.RpcError) as caught:
        call()  # type: ignore[operator]
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
    return caught.value.details()  # type: ignore[attr-defined,no-any-return]


def _invalid(call: object) -> str:
    with pytest.raises(grpc.RpcError) as caught:
        call()  # type: ignore[operator]
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    return caught.value.details()  # type: ignore[attr-defined,no-any-return]


def test_an_operator_on_the_owner_only_socket_ejects_restores_pins_and_unpins(
    serve: ServeFactory, router: Router, clock: FakeClock
) -> None:
    with serve(router, "unix") as sidecar, connect(sidecar.address) as (_, stub):
        ejected = stub.Eject(
            pb.EjectRequest(
                target_name=SAGEMAKER, reason="redeploy", duration_s=900, operator="alice"
            ),
            timeout=10,
        ).action
        assert (ejected.action, ejected.target, ejected.reason) == ("eject", SAGEMAKER, "redeploy")
        assert ejected.by == f"alice (unix socket, uid {UID})"
        assert ejected.until.seconds - ejected.time.seconds == 900
        snapshot = stub.GetSnapshot(pb.GetSnapshotRequest(), timeout=10)
        (view,) = [t for t in snapshot.targets if t.target.name == SAGEMAKER]
        assert view.breaker.state == pb.BREAKER_STATE_OPEN
        assert view.breaker.reason == f"operator(alice (unix socket, uid {UID})): redeploy"
        assert view.breaker.until == ejected.until
        choices = {
            stub.Choose(pb.ChooseRequest(request_class="manga")).target.name for _ in "x" * 20
        }
        assert SAGEMAKER not in choices

        restored = stub.Restore(
            pb.RestoreRequest(target_name=SAGEMAKER, reason="done"), timeout=10
        ).action
        assert restored.changed and restored.by == f"unix socket, uid {UID}"
        snapshot = stub.GetSnapshot(pb.GetSnapshotRequest(), timeout=10)
        (view,) = [t for t in snapshot.targets if t.target.name == SAGEMAKER]
        assert view.breaker.state == pb.BREAKER_STATE_CLOSED
        assert not view.breaker.HasField("until")

        pinned = stub.PinPrimary(
            pb.PinPrimaryRequest(
                target_name="ondemand-sonnet", reason="PT resize", duration_s=60, operator="bob"
            ),
            timeout=10,
        ).action
        assert pinned.action == "pin" and pinned.until.seconds - pinned.time.seconds == 60
        snapshot = stub.GetSnapshot(pb.GetSnapshotRequest(), timeout=10)
        assert snapshot.primary == "ondemand-sonnet"
        assert (snapshot.pin.target, snapshot.pin.reason) == ("ondemand-sonnet", "PT resize")
        assert snapshot.pin.by == f"bob (unix socket, uid {UID})"

        clock.advance(seconds=60)  # the pin lapses on the router's clock
        assert not stub.GetSnapshot(pb.GetSnapshotRequest(), timeout=10).HasField("pin")
        unpinned = stub.UnpinPrimary(pb.UnpinPrimaryRequest(reason="x"), timeout=10).action
        assert not unpinned.changed  # it had lapsed


def test_bad_admin_requests_name_the_field_and_change_nothing(
    serve: ServeFactory, router: Router
) -> None:
    with serve(router, "unix") as sidecar, connect(sidecar.address) as (_, stub):
        message = _invalid(
            lambda: stub.Eject(
                pb.EjectRequest(target_name="nope", reason="r", duration_s=1), timeout=10
            )
        )
        assert message.startswith("target_name: unknown target 'nope'; known targets:")
        no_duration = pb.EjectRequest(target_name=SAGEMAKER, reason="r")
        assert _invalid(lambda: stub.Eject(no_duration, timeout=10)) == (
            "duration_s expected a number >= 0.001, got 0.0: must be between 0.001 and "
            "604,800 seconds"
        )
        assert _invalid(
            lambda: stub.PinPrimary(
                pb.PinPrimaryRequest(target_name=SAGEMAKER, duration_s=5), timeout=10
            )
        ) == ("reason must be a non-empty string, got ''")
        assert "operator must be at most 64 characters, got 65" in _invalid(
            lambda: stub.Restore(
                pb.RestoreRequest(target_name=SAGEMAKER, reason="r", operator="o" * 65),
                timeout=10,
            )
        )
        snapshot = stub.GetSnapshot(pb.GetSnapshotRequest(), timeout=10)
        assert all(t.breaker.state == pb.BREAKER_STATE_CLOSED for t in snapshot.targets)
        assert not snapshot.HasField("pin") and snapshot.primary == "provisioned-sonnet"


def test_pin_without_a_switcher_is_a_failed_precondition(
    serve: ServeFactory, clock: FakeClock
) -> None:
    router = Router(parse_config(SMALL_CONFIG), clock=clock)
    with serve(router, "unix") as sidecar, connect(sidecar.address) as (_, stub):
        with pytest.raises(grpc.RpcError) as caught:
            stub.PinPrimary(
                pb.PinPrimaryRequest(target_name="fast", reason="r", duration_s=5), timeout=10
            )
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION  # type: ignore[attr-defined]
        assert "has no [switcher]" in caught.value.details()  # type: ignore[attr-defined]


def test_plaintext_tcp_even_on_loopback_is_refused_and_told_how(
    serve: ServeFactory, router: Router
) -> None:
    with serve(router, "tcp") as sidecar, connect(sidecar.address) as (_, stub):
        eject = pb.EjectRequest(target_name=SAGEMAKER, reason="r", duration_s=5)
        message = _denied(lambda: stub.Eject(eject, timeout=10))
        assert "allowed only over the sidecar's owner-only Unix socket" in message
        assert "plaintext TCP" in message and "--admin-subject" in message
        for call in (
            lambda: stub.Restore(pb.RestoreRequest(target_name=SAGEMAKER, reason="r")),
            lambda: stub.PinPrimary(pb.PinPrimaryRequest(target_name=SAGEMAKER, reason="r")),
            lambda: stub.UnpinPrimary(pb.UnpinPrimaryRequest(reason="r")),
        ):
            _denied(call)
        assert stub.GetSnapshot(pb.GetSnapshotRequest(), timeout=10).targets[-1].breaker.state == (
            pb.BREAKER_STATE_CLOSED
        )


def test_a_socket_open_to_the_group_does_not_prove_who_connects(
    serve: ServeFactory, router: Router
) -> None:
    with (
        serve(router, "unix", socket_mode=0o660) as sidecar,
        connect(sidecar.address) as (
            _,
            stub,
        ),
    ):
        message = _denied(lambda: stub.UnpinPrimary(pb.UnpinPrimaryRequest(reason="r")))
        assert "open to its group (--socket-mode)" in message


@pytest.fixture(scope="module")
def admin_client(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:  # noqa: F811
    """A second client certificate from the test CA (whose key the pki fixture wrote beside
    its certificate), for ``CN=ops-admin``."""
    ca_key = serialization.load_pem_private_key((pki.ca.parent / "ca.key").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = _key()
    directory = tmp_path_factory.mktemp("admin-pki")
    return _write(directory, "ops", _cert("ops-admin", key, ("mangaroute test CA", ca_key)), key)


def _mtls(pki: Pki, cert: Path, key: Path) -> grpc.ChannelCredentials:  # noqa: F811
    ca, cert_pem, key_pem = pki.read(pki.ca, cert, key)
    return grpc.ssl_channel_credentials(ca, private_key=key_pem, certificate_chain=cert_pem)


def test_mutual_tls_clients_on_the_allow_list_may_act_and_others_are_told_their_subject(
    serve: ServeFactory,
    router: Router,
    pki: Pki,  # noqa: F811
    admin_client: tuple[Path, Path],
) -> None:
    tls = TlsFiles(pki.server_cert, pki.server_key, client_ca=pki.ca)
    with serve(router, "tcp", tls=tls, admin_subjects=("CN=ops-admin",)) as sidecar:
        with connect(sidecar.address, _mtls(pki, *admin_client)) as (_, stub):
            action = stub.Eject(
                pb.EjectRequest(target_name=SAGEMAKER, reason="quota", duration_s=30),
                timeout=10,
            ).action
            assert action.by == "mTLS CN=ops-admin"
        with connect(sidecar.address, _mtls(pki, pki.client_cert, pki.client_key)) as (_, stub):
            assert stub.Choose(pb.ChooseRequest(), timeout=10).target.name  # routing: fine
            message = _denied(
                lambda: stub.Restore(
                    pb.RestoreRequest(target_name=SAGEMAKER, reason="r"), timeout=10
                )
            )
            assert "subject 'CN=orchestrator' is not allowed" in message
            assert "--admin-subject 'CN=orchestrator'" in message
    view = router.snapshot().target(SAGEMAKER)
    assert view.breaker_reason == "operator(mTLS CN=ops-admin): quota"


def test_an_allow_list_without_mutual_tls_is_refused_at_start(pki: Pki) -> None:  # noqa: F811
    with pytest.raises(SidecarError, match="--admin-subject names mutual-TLS clients"):
        SidecarSettings(
            listen=parse_listen("127.0.0.1:0"),
            tls=TlsFiles(pki.server_cert, pki.server_key),
            admin_subjects=("CN=ops",),
        )


# -- mangaroute admin ---------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["", "s", "m", "h", "d", "M"]))
def test_parse_duration(number: int, unit: str) -> None:
    scale = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "M": 60}[unit]
    assert parse_duration(f"{number}{unit}") == number * scale
    assert parse_duration(f" {number}.5{unit} ") == (number + 0.5) * scale


@pytest.mark.parametrize("text", ["", "m", "5 minutes", "-5", "1e3", "5w", "nan"])
def test_parse_duration_rejects(text: str) -> None:
    import argparse  # noqa: PLC0415

    with pytest.raises(argparse.ArgumentTypeError, match="expected a duration like 90, 90s"):
        parse_duration(text)


def _admin(*words: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(["admin", *words], out=out)
    return code, out.getvalue()


def test_the_admin_command_against_a_served_sidecar(
    spawn: type[ServeProcess], socket_dir: str
) -> None:
    listen = f"unix:{socket_dir}/s.sock"
    server = spawn([sys.executable, "-m", "mangaroute", "serve", "--demo", "--listen", listen])
    address = server.address()
    code, out = _admin(
        "eject", SAGEMAKER, "--reason", "redeploy", "--duration", "15m", "--address", address,
        "--operator", "alice", "--json",
    )  # fmt: skip
    assert code == 0
    data = json.loads(out)
    assert (data["action"], data["target"], data["reason"], data["changed"]) == (
        "eject",
        SAGEMAKER,
        "redeploy",
        True,
    )
    assert data["by"] == f"alice (unix socket, uid {UID})"
    assert data["until"].endswith("Z")
    code, out = _admin("pin", "ondemand-haiku", "--reason", "PT resize", "--duration", "2h",
                       "--address", address, "--operator", "bob")  # fmt: skip
    assert code == 0
    assert out.startswith("pinned primary ondemand-haiku until ")
    assert out.rstrip().endswith(f"(by bob (unix socket, uid {UID}))")
    code, out = _admin("restore", SAGEMAKER, "--reason", "done", "--address", address)
    assert code == 0 and out.startswith(f"restored {SAGEMAKER} (by ")
    code, out = _admin("unpin", "--reason", "done", "--address", address)
    assert code == 0 and out.startswith("unpinned primary ondemand-haiku")
    code, out = _admin("unpin", "--reason", "again", "--address", address)
    assert (code, out) == (0, "unpin ondemand-haiku: nothing to do (no pin was set)\n")
    log = "".join(server.log)
    assert "admin: eject sagemaker-manga by alice (unix socket, uid" in log
    assert "admin: pin ondemand-haiku by bob" in log

    result = subprocess.run(
        [sys.executable, "-m", "mangaroute", "admin", "eject", "nope", "--reason", "r",
         "--duration", "5", "--address", address, "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    error = json.loads(result.stdout)
    assert error["type"] == "AdminCallFailed"
    assert "refused (INVALID_ARGUMENT): target_name: unknown target 'nope'" in error["error"]


def test_the_admin_command_says_when_it_is_refused_or_cannot_reach(
    spawn: type[ServeProcess], socket_dir: str, capsys: pytest.CaptureFixture[str]
) -> None:
    server = spawn([sys.executable, "-m", "mangaroute", "serve", "--demo", "--listen", "0"])
    address = server.address()
    code, _ = _admin("unpin", "--reason", "r", "--address", address)
    assert code == 2
    err = capsys.readouterr().err
    assert f"the sidecar at {address} refused (PERMISSION_DENIED): admin RPCs are allowed" in err
    code, _ = _admin(
        "unpin", "--reason", "r", "--address", f"unix:{socket_dir}/none.sock", "--timeout-s", "2"
    )
    assert code == 2
    err = capsys.readouterr().err
    assert f"cannot reach the sidecar at unix:{socket_dir}/none.sock" in err
    assert "is `mangaroute serve` running there?" in err
