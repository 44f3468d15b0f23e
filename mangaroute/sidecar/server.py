"""The sidecar: one router behind a gRPC server, with health, reflection and an orderly drain.

The server is gRPC's synchronous server on a thread pool, chosen by measurement
(``benchmarks/bench_sidecar.py``, docs/sidecar.md): on a 2-core machine it answered a unary
call in ~0.48 ms at p50 against ~0.55-0.62 ms for ``grpc.aio`` and carried ~30 % more calls
per second with 8 clients. The router's methods never block for more than microseconds, so a
worker thread per call costs nothing that an event loop would save. Streams each hold a
worker; :class:`~mangaroute.sidecar.watch.StreamSlots` caps them, and the pool is sized
``workers + max_streams`` so unary calls always find a thread.

The router's snapshot is rebuilt on a background thread (:mod:`mangaroute.sidecar.refresh`)
rather than inside a ``Choose``; health is published from each rebuild.

Drain (``stop``): health goes NOT_SERVING, the server refuses new calls, watch streams end
with OK, in-flight calls get ``grace_s`` to finish and are cancelled after that; then the
worker threads exit and the Unix socket file is removed.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc
from grpc_health.v1 import health
from grpc_health.v1 import health_pb2_grpc as health_pb_grpc
from grpc_reflection.v1alpha import reflection

from mangaroute.core.router import Router
from mangaroute.sidecar._generated.mangaroute_api.v1 import router_pb2 as pb
from mangaroute.sidecar._generated.mangaroute_api.v1 import router_pb2_grpc as pb_grpc
from mangaroute.sidecar.address import (
    ListenAddress,
    SidecarError,
    default_socket_path,
    owner_only_umask,
    parse_listen,
    prepare_unix_socket,
    remove_socket,
    socket_inode,
)
from mangaroute.sidecar.health import HealthPublisher
from mangaroute.sidecar.refresh import Refresher
from mangaroute.sidecar.servicer import RouterServicer
from mangaroute.sidecar.watch import StreamSlots

logger = logging.getLogger("mangaroute.sidecar")

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["Router"].full_name
"""``mangaroute.v1.Router``."""


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """PEM files for TLS; with ``client_ca``, clients must present a certificate it signed
    (mutual TLS)."""

    cert: Path
    key: Path
    client_ca: Path | None = None

    def credentials(self) -> grpc.ServerCredentials:
        key = _read("--tls-key", self.key)
        cert = _read("--tls-cert", self.cert)
        ca = _read("--tls-client-ca", self.client_ca) if self.client_ca else None
        return grpc.ssl_server_credentials(
            [(key, cert)], root_certificates=ca, require_client_auth=ca is not None
        )

    @property
    def mode(self) -> str:
        return "mutual TLS" if self.client_ca else "TLS"


def _read(flag: str, path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SidecarError(f"{flag} {path}: {exc.strerror or exc}") from exc
    if b"-----BEGIN " not in data:
        raise SidecarError(f"{flag} {path}: not a PEM file (no -----BEGIN line)")
    return data


@dataclass(frozen=True, slots=True)
class SidecarSettings:
    """How the sidecar serves; the ``mangaroute serve`` flags of the same names."""

    listen: ListenAddress = field(default_factory=lambda: parse_listen(None))
    tls: TlsFiles | None = None
    workers: int = 16
    """Threads for unary calls."""
    max_streams: int = 32
    """Open ``ReportStream`` + ``WatchSwitches`` calls at once; each holds a thread."""
    max_message_bytes: int = 64 * 1024
    """Larger requests are refused with ``RESOURCE_EXHAUSTED``."""
    grace_s: float = 10.0
    refresh_ms: float | None = None
    """Rebuild the router's snapshot in the background this often (health follows each
    rebuild); ``None``: the config's ``refresh_ms``; ``0``: leave rebuilds to the calls
    (health is then checked every second)."""
    socket_mode: int = 0o600
    watch_capacity: int = 256
    """Switch events a watcher may fall behind before it is cut off."""

    def __post_init__(self) -> None:
        for name in ("workers", "max_streams", "max_message_bytes", "watch_capacity"):
            if getattr(self, name) < 1:
                raise SidecarError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("grace_s", "refresh_ms"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < float("inf"):
                raise SidecarError(f"{name} must be a finite number >= 0, got {value}")
        if not 0 <= self.socket_mode <= 0o777:
            raise SidecarError(f"socket_mode must be within 0o000-0o777, got {self.socket_mode:o}")


def server_options(settings: SidecarSettings) -> list[tuple[str, int]]:
    """The gRPC server options (the benchmark's echo service is served with the same)."""
    return [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        # Without this a second server on the same TCP port would silently share it.
        ("grpc.so_reuseport", 0),
    ]


class Sidecar:
    """A running gRPC front door to one router::

        with Sidecar(router, SidecarSettings(listen=parse_listen("127.0.0.1:0"))) as sidecar:
            channel = grpc.insecure_channel(sidecar.address)

    ``handlers`` adds generic handlers served beside the API with the same server (the
    benchmark's echo floor uses it).
    """

    def __init__(
        self,
        router: Router,
        settings: SidecarSettings | None = None,
        *,
        handlers: Sequence[grpc.GenericRpcHandler[Any, Any]] = (),
    ) -> None:
        self.router = router
        self.settings = settings or SidecarSettings()
        self._handlers = tuple(handlers)
        self.streams = StreamSlots(self.settings.max_streams)
        self.servicer = RouterServicer(
            router, streams=self.streams, watch_capacity=self.settings.watch_capacity
        )
        self.health_servicer = health.HealthServicer()
        self.health = HealthPublisher(self.health_servicer, (health.OVERALL_HEALTH, SERVICE_NAME))
        refresh_ms = self.settings.refresh_ms
        if refresh_ms is None:
            refresh_ms = router.config.window.refresh_ms
        self.refresher = Refresher(
            router, refresh_ms / 1000 if refresh_ms else 1.0, self.health.publish
        )
        self._server: grpc.Server | None = None
        self._draining: grpc.Server | None = None
        self._executor: futures.ThreadPoolExecutor | None = None
        self._socket_inode: int | None = None
        self._stop_lock = threading.Lock()
        self.address = ""
        """Where it listens, in gRPC syntax (``unix:/path`` or ``127.0.0.1:50051``; the real
        port when 0 was asked)."""

    @property
    def listen(self) -> ListenAddress:
        return self.settings.listen

    def start(self) -> str:
        """Bind, start serving and return :attr:`address`."""
        if self._server is not None:
            raise SidecarError("the sidecar is already started")
        settings = self.settings
        listen = settings.listen
        self._executor = futures.ThreadPoolExecutor(
            max_workers=settings.workers + settings.max_streams,
            thread_name_prefix="mangaroute-sidecar",
        )
        server = grpc.server(self._executor, options=server_options(settings))
        pb_grpc.add_RouterServicer_to_server(self.servicer, server)  # type: ignore[no-untyped-call]
        health_pb_grpc.add_HealthServicer_to_server(self.health_servicer, server)
        if self._handlers:
            server.add_generic_rpc_handlers(self._handlers)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        try:
            port = self._bind(server, listen)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise
        self.refresher.start()
        server.start()
        self._server = server
        self.address = listen.target if listen.is_unix else listen.with_port(port).target
        tls = settings.tls.mode if settings.tls else "plaintext"
        logger.info(
            "mangaroute sidecar listening on %s (%s; %d targets from %s; pid %d)",
            self.address,
            tls,
            len(self.router.targets),
            self.router.config.source,
            os.getpid(),
        )
        if not listen.is_loopback and settings.tls is None:
            logger.warning(
                "listening on %s without TLS: anyone who can reach it can steer routing",
                self.address,
            )
        return self.address

    def _bind(self, server: grpc.Server, listen: ListenAddress) -> int:
        settings = self.settings
        credentials = settings.tls.credentials() if settings.tls else None
        target = listen.target
        if listen.unix_path is not None:
            default_dir = Path(listen.unix_path) == default_socket_path()
            prepare_unix_socket(listen.unix_path, default_dir=default_dir)
        try:
            with owner_only_umask():
                if credentials is None:
                    port = server.add_insecure_port(target)
                else:
                    port = server.add_secure_port(target, credentials)
        except RuntimeError as exc:
            raise SidecarError(f"cannot listen on {target}: {exc}") from exc
        if listen.unix_path is not None:
            os.chmod(listen.unix_path, settings.socket_mode)
            self._socket_inode = socket_inode(listen.unix_path)
        return port

    def stop(self, grace_s: float | None = None) -> None:
        """Drain and stop (idempotent); ``grace_s`` defaults to the settings'."""
        with self._stop_lock:
            server, self._server = self._server, None
            if server is None:
                return
            grace = self.settings.grace_s if grace_s is None else grace_s
            logger.info("draining: up to %g s for in-flight calls", grace)
            self.refresher.stop()
            self.health.shutdown()
            self._draining = server
            stopped = server.stop(grace)
            self.streams.close_feeds()
            stopped.wait()
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None
            if self.listen.unix_path is not None:
                remove_socket(self.listen.unix_path, self._socket_inode)
            self._draining = None
            logger.info("stopped")

    def cut_short(self) -> None:
        """During :meth:`stop` (from another thread): cancel the calls still running now
        instead of waiting out the grace period."""
        server = self._draining
        if server is not None:
            server.stop(0)

    def __enter__(self) -> Sidecar:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
