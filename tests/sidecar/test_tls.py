"""TLS and mutual TLS from PEM files, with certificates made here (``cryptography``)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from mangaroute import Router
from mangaroute.sidecar import Sidecar, SidecarError, SidecarSettings, TlsFiles, parse_listen
from mangaroute.sidecar._generated.mangaroute_api.v1 import router_pb2 as pb

from .conftest import ROOT, TRANSPORTS, ServeFactory, connect

x509 = pytest.importorskip("cryptography.x509", reason="TLS tests need `cryptography`")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402


@dataclass
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    stranger_cert: Path  # signed by another CA
    stranger_key: Path

    def read(self, *paths: Path) -> list[bytes]:
        return [path.read_bytes() for path in paths]


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[str, ec.EllipticCurvePrivateKey] | None,
    *,
    server: bool = False,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, signer = (
        (x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer[0])]), issuer[1])
        if issuer
        else (name, key)
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(signer, hashes.SHA256())


def _write(
    directory: Path, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> tuple[Path, Path]:
    cert_path = directory / f"{name}.pem"
    key_path = directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca_key, other_ca_key = _key(), _key()
    ca_cert = _cert("mangaroute test CA", ca_key, None)
    ca, _ = _write(directory, "ca", ca_cert, ca_key)
    server_key, client_key, stranger_key = _key(), _key(), _key()
    server = _write(
        directory,
        "server",
        _cert("localhost", server_key, ("mangaroute test CA", ca_key), server=True),
        server_key,
    )
    client = _write(
        directory,
        "client",
        _cert("orchestrator", client_key, ("mangaroute test CA", ca_key)),
        client_key,
    )
    stranger = _write(
        directory,
        "stranger",
        _cert("stranger", stranger_key, ("other CA", other_ca_key)),
        stranger_key,
    )
    return Pki(ca, *server, *client, *stranger)


def _choose_works(address: str, credentials: grpc.ChannelCredentials, **options: object) -> bool:
    with connect(address, credentials, **options) as (_, stub):
        try:
            stub.Choose(pb.ChooseRequest(), timeout=5)
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
            return False
    return True


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_tls(serve: ServeFactory, router: Router, pki: Pki, transport: str) -> None:
    tls = TlsFiles(pki.server_cert, pki.server_key)
    with serve(router, transport, tls=tls) as sidecar:
        (ca,) = pki.read(pki.ca)
        name = {"grpc.ssl_target_name_override": "localhost"} if transport == "unix" else {}
        assert _choose_works(sidecar.address, grpc.ssl_channel_credentials(ca), **name)
        with connect(sidecar.address) as (_, stub), pytest.raises(grpc.RpcError):
            stub.Choose(pb.ChooseRequest(), timeout=5)  # plaintext is refused


def test_mutual_tls_requires_a_client_certificate_from_the_ca(
    serve: ServeFactory, router: Router, pki: Pki
) -> None:
    tls = TlsFiles(pki.server_cert, pki.server_key, client_ca=pki.ca)
    with serve(router, "tcp", tls=tls) as sidecar:
        ca, cert, key = pki.read(pki.ca, pki.client_cert, pki.client_key)
        client = grpc.ssl_channel_credentials(ca, private_key=key, certificate_chain=cert)
        assert _choose_works(sidecar.address, client)
        assert not _choose_works(sidecar.address, grpc.ssl_channel_credentials(ca))
        _, cert, key = pki.read(pki.ca, pki.stranger_cert, pki.stranger_key)
        stranger = grpc.ssl_channel_credentials(ca, private_key=key, certificate_chain=cert)
        assert not _choose_works(sidecar.address, stranger)


def _sidecar(router: Router, tls: TlsFiles) -> Sidecar:
    return Sidecar(router, SidecarSettings(listen=parse_listen("127.0.0.1:0"), tls=tls))


def test_tls_files_are_checked_at_start(router: Router, pki: Pki, tmp_path: Path) -> None:
    missing = TlsFiles(tmp_path / "nope.pem", pki.server_key)
    with pytest.raises(SidecarError, match=r"--tls-cert .*nope\.pem: No such file"):
        _sidecar(router, missing).start()
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("hello")
    bad_ca = TlsFiles(pki.server_cert, pki.server_key, garbage)
    with pytest.raises(SidecarError, match=r"--tls-client-ca .*garbage\.pem: not a PEM file"):
        _sidecar(router, bad_ca).start()


def test_a_key_that_is_not_the_certificates_is_named(
    router: Router, pki: Pki, tmp_path: Path
) -> None:
    """gRPC itself says only "Failed to bind to address" (issue 13, item 9)."""
    mismatch = TlsFiles(pki.server_cert, pki.client_key)
    with pytest.raises(SidecarError, match=r"--tls-key .*client\.key does not belong to the"):
        _sidecar(router, mismatch).start()
    encrypted = tmp_path / "encrypted.key"
    key = serialization.load_pem_private_key(pki.server_key.read_bytes(), None)
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    with pytest.raises(SidecarError, match=r"--tls-key .*encrypted\.key: OpenSSL cannot load"):
        _sidecar(router, TlsFiles(pki.server_cert, encrypted)).start()


def test_serve_names_the_mismatched_key_and_exits_2(pki: Pki) -> None:
    tls = ["--tls-cert", str(pki.server_cert), "--tls-key", str(pki.client_key)]
    result = subprocess.run(
        [sys.executable, "-m", "mangaroute", "serve", "--demo", "--listen", "0", *tls],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert f"--tls-key {pki.client_key} does not belong to the certificate in --tls-cert" in (
        result.stderr
    )
    assert "Failed to bind" not in result.stderr and "Traceback" not in result.stderr
