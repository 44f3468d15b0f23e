"""The sidecar: one router behind a gRPC server, with health, reflection and an orderly drain.

The server is gRPC's synchronous server on a thread pool, chosen by measurement
(``benchmarks/bench_sidecar.py``, docs/sidecar.md): on a 2-core machine it answered a unary
call in ~0.48 ms at p50 against ~0.55-0.62 ms for ``grpc.aio`` and carried ~30 % more calls
per second with 8 clients. The router's methods never block for more than microseconds, so a
worker thread per call costs nothing that an event loop would save. Streams each hold a
worker; :class:`~mangaroute.sidecar.watch.StreamSlots` caps them, and the pool is sized
``workers + max_streams`` so unary calls always find a thread.

The router's snapshot is rebuilt on a background thread (:mod:`mangaroute.runtime.refresher`)
rather than inside a ``Choose``; health is published from each rebuild.

Drain (``stop``): health goes NOT_SERVING, the server refuses new calls, watch streams end
with OK, in-flight calls get ``grace_s`` to finish and are cancelled after that; then the
worker threads exit and the Unix socket file is removed. gRPC's own "stopped" event has been
seen never to fire (issue 13: a rejected message in a client stream), so ``stop`` waits for
it at most ``grace_s`` + :data:`STOP_MARGIN_S` and then leaves without it, saying so.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
import time
from collections.abc import Sequence
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import grpc
from grpc_health.v1 import health
from grpc_health.v1 import health_pb2_grpc as health_pb_grpc
from grpc_reflection.v1alpha import reflection

from mangaroute._closing import ClosesOnExit
from mangaroute.core.router import Router
from mangaroute.runtime.refresher import SnapshotRefresher
from mangaroute.sidecar._generated.mangaroute_api.v1 import router_pb2 as pb
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
from mangaroute.sidecar.admin import AdminGate
from mangaroute.sidecar.health import HealthPublisher
from mangaroute.sidecar.servicer import RouterServicer, method_handlers
from mangaroute.sidecar.watch import StreamSlots

logger = logging.getLogger("mangaroute.sidecar")
_THREADS = "mangaroute-sidecar"

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["Router"].full_name
"""``mangaroute.v1.Router``."""

STOP_MARGIN_S = 0.5
"""How long past the grace period :meth:`Sidecar.stop` waits for gRPC to finish stopping (and
how long after :meth:`Sidecar.cut_short`)."""

MAX_MESSAGE_BYTES = 2**31 - 1
"""gRPC keeps message limits in a C ``int``; a larger value cannot be configured."""

MAX_GRACE_S = 3600.0
MAX_REFRESH_MS = 60_000.0


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
        self.check()
        return grpc.ssl_server_credentials(
            [(key, cert)], root_certificates=ca, require_client_auth=ca is not None
        )

    @property
    def mode(self) -> str:
        return "mutual TLS" if self.client_ca else "TLS"

    def check(self) -> None:
        """Load the files the way OpenSSL will, so that a key that does not belong to the
        certificate (or an encrypted key, or a broken CA file) is named here: gRPC only
        reports "Failed to bind to address" for them."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(self.cert, self.key, password=_no_password)
        except ssl.SSLError as exc:
            if exc.reason == "KEY_VALUES_MISMATCH":
                raise SidecarError(
                    f"--tls-key {self.key} does not belong to the certificate in --tls-cert "
                    f"{self.cert} (their public keys differ); pass the key the certificate "
                    "was issued for"
                ) from None
            raise SidecarError(
                f"--tls-cert {self.cert} / --tls-key {self.key}: OpenSSL cannot load them "
                f"({exc.reason or exc}); gRPC needs a PEM certificate chain and an "
                "unencrypted PEM key"
            ) from None
        if self.client_ca is not None:
            try:
                context.load_verify_locations(cafile=self.client_ca)
            except ssl.SSLError as exc:
                raise SidecarError(
                    f"--tls-client-ca {self.client_ca}: OpenSSL cannot load it as PEM "
                    f"certificates ({exc.reason or exc})"
                ) from None


def _no_password() -> bytes:
    """An encrypted key fails to load instead of OpenSSL prompting on the terminal."""
    return b""


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
    """Open ``ReportStream``, ``WatchSwitches`` and ``WatchEvents`` calls at once; each holds
    a thread."""
    max_message_bytes: int = 64 * 1024
    """Larger requests are refused with ``RESOURCE_EXHAUSTED``."""
    grace_s: float = 10.0
    refresh_ms: float | None = None
    """Rebuild the router's snapshot in the background when it is due, at most this often
    (health follows each rebuild); ``None``: the config's ``refresh_ms``; ``0``: at most once
    a second, leaving the rest to the calls."""
    socket_mode: int = 0o600
    watch_capacity: int = 256
    """Switch events a watcher may fall behind before it is cut off."""
    allow_insecure_remote: bool = False
    """Allow a non-loopback TCP address without TLS (anyone who reaches it can steer
    routing); refused otherwise."""
    admin_subjects: tuple[str, ...] = ()
    """Client certificate subjects (``CN=ops,O=Example``, as gRPC reports them) allowed to
    call the admin RPCs over mutual TLS; the owner-only Unix socket is always allowed
    (:mod:`mangaroute.sidecar.admin`)."""

    def admin_gate(self) -> AdminGate:
        """Who may call the admin RPCs on a sidecar served with these settings."""
        unix = self.listen.unix_path
        owner_only = unix is not None and not self.socket_mode & 0o077
        return AdminGate(
            unix_socket=unix if owner_only else None,
            group_socket=unix is not None and not owner_only,
            subjects=frozenset(self.admin_subjects),
            mutual_tls=self.tls is not None and self.tls.client_ca is not None,
        )

    def __post_init__(self) -> None:
        if not (self.listen.is_loopback or self.tls or self.allow_insecure_remote):
            raise SidecarError(
                f"--listen {self.listen.target} reaches beyond this machine and there is no "
                "TLS: anyone who can connect could steer routing. Serve TLS (--tls-cert and "
                "--tls-key; --tls-client-ca to require client certificates), listen on "
                "loopback or a Unix socket, or pass --allow-insecure-remote if the network "
                "itself is trusted"
            )
        if self.max_message_bytes > MAX_MESSAGE_BYTES:
            raise SidecarError(
                f"max_message_bytes (--max-message-bytes) must be at most {MAX_MESSAGE_BYTES} "
                f"(gRPC's limit), got {self.max_message_bytes}"
            )
        for name in ("workers", "max_streams", "max_message_bytes", "watch_capacity"):
            if getattr(self, name) < 1:
                raise SidecarError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name, most in (("grace_s", MAX_GRACE_S), ("refresh_ms", MAX_REFRESH_MS)):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= most:
                raise SidecarError(f"{name} must be a number within 0-{most:g}, got {value}")
        if self.admin_subjects and (self.tls is None or self.tls.client_ca is None):
            raise SidecarError(
                "--admin-subject names mutual-TLS clients: it needs --tls-cert, --tls-key and "
                "--tls-client-ca (the owner-only Unix socket needs no allow-list)"
            )
        if not 0 <= self.socket_mode <= 0o777:
            raise SidecarError(f"socket_mode must be within 0o000-0o777, got {self.socket_mode:o}")


def server_options(settings: SidecarSettings) -> list[tuple[str, int]]:
    """The gRPC server options (the benchmark's echo service is served with the same)."""
    return [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        # Without this a second server on the same TCP port would silently share it.
        ("grpc.so_reuseport", 0),
    ]


class Sidecar(ClosesOnExit):
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
            router,
            streams=self.streams,
            watch_capacity=self.settings.watch_capacity,
            admin=self.settings.admin_gate(),
        )
        self.health_servicer = health.HealthServicer()
        self.health = HealthPublisher(self.health_servicer, (health.OVERALL_HEALTH, SERVICE_NAME))
        refresh_ms = self.settings.refresh_ms
        if refresh_ms is None:
            refresh_ms = router.config.window.refresh_ms
        self.refresher = SnapshotRefresher(
            router,
            min_interval_s=refresh_ms / 1000 if refresh_ms else 1.0,
            on_snapshot=self.health.publish,
            name="mangaroute-sidecar-refresh",
        )
        self._server: grpc.Server | None = None
        self._draining: grpc.Server | None = None
        self._executor: futures.ThreadPoolExecutor | None = None
        self._socket_inode: int | None = None
        self._stop_lock = threading.Lock()
        self._deadline = 0.0
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
            thread_name_prefix=_THREADS,
        )
        server = grpc.server(self._executor, options=server_options(settings))
        api = method_handlers(self.servicer)
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, api),))
        # as the generated code does: gRPC then finds the handler without a lookup per call
        server.add_registered_method_handlers(SERVICE_NAME, api)  # type: ignore[attr-defined]
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
                "listening on %s without TLS (--allow-insecure-remote): anyone who can reach "
                "it can steer routing",
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

    def stop(self, grace_s: float | None = None) -> bool:
        """Drain and stop (idempotent); ``grace_s`` defaults to the settings'.

        Returns within ``grace_s`` + :data:`STOP_MARGIN_S` (sooner after :meth:`cut_short`),
        ``True`` when gRPC finished stopping; ``False`` when it did not, and call threads it
        never ended may be left behind (``mangaroute serve`` then exits without them).
        """
        with self._stop_lock:
            server, self._server = self._server, None
            if server is None:
                return True
            grace = self.settings.grace_s if grace_s is None else grace_s
            logger.info("draining: up to %g s for in-flight calls", grace)
            self._deadline = time.monotonic() + grace + STOP_MARGIN_S
            self.refresher.stop(timeout_s=STOP_MARGIN_S)
            self.health.shutdown()
            self._draining = server
            stopped = server.stop(grace)
            self.streams.close_feeds()
            while not stopped.wait(0.05) and time.monotonic() < self._deadline:
                pass
            clean = stopped.is_set()
            if self._executor is not None:
                clean = _shut_down(self._executor, self._deadline) and clean
                self._executor = None
            if self.listen.unix_path is not None:
                remove_socket(self.listen.unix_path, self._socket_inode)
            self._draining = None
            if clean:
                logger.info("stopped")
            else:
                logger.error(
                    "stopped, but gRPC or a call did not finish within the grace period + "
                    "%g s; %d call threads left behind",
                    STOP_MARGIN_S,
                    sum(1 for t in threading.enumerate() if t.name.startswith(_THREADS + "_")),
                )
            return clean

    def cut_short(self) -> None:
        """During :meth:`stop` (from another thread): cancel the calls still running now
        instead of waiting out the grace period; :meth:`stop` returns within
        :data:`STOP_MARGIN_S`."""
        server = self._draining
        if server is not None:
            self._deadline = min(self._deadline, time.monotonic() + STOP_MARGIN_S)
            server.stop(0)

    def close(self) -> None:
        """:meth:`stop` with the settings' grace period (what leaving a ``with`` block does)."""
        self.stop()

    def __enter__(self) -> Self:
        """Start serving; leaving the block stops (:class:`~mangaroute._closing.ClosesOnExit`)."""
        self.start()
        return self


def _shut_down(executor: futures.ThreadPoolExecutor, deadline: float) -> bool:
    """Let the call threads exit, waiting until ``deadline`` (``time.monotonic``) at most;
    whether they all did. gRPC cancels calls but cannot stop a thread, and
    ``ThreadPoolExecutor.shutdown(wait=True)`` waits without a limit."""
    executor.shutdown(wait=False, cancel_futures=True)
    waiter = threading.Thread(target=executor.shutdown, name=f"{_THREADS}-reaper", daemon=True)
    waiter.start()
    waiter.join(max(0.0, deadline - time.monotonic()))
    return not waiter.is_alive()
