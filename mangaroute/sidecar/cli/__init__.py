"""``mangaroute serve``: run the gRPC sidecar until SIGTERM or SIGINT, then drain and exit 0.

:func:`register` adds ``serve`` (and ``admin``, :mod:`mangaroute.sidecar.cli.admin`) to the
main CLI's sub-parsers (handler ``(args, out) -> int``, the main CLI's convention); :func:`main`
is the same command behind its own parser, for ``python -m mangaroute.sidecar``. Both fail
through the shared helpers (:mod:`mangaroute.cli.output`). gRPC is imported only when the
command runs, so the rest of the CLI starts as fast as before.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO

from mangaroute.cli.options import (
    PLACEHOLDER_ACCOUNT,
    add_config_option,
    laid_out_help,
    serving_config_path,
    settings_from_flags,
)
from mangaroute.cli.output import run_parsed
from mangaroute.core.errors import MangarouteError
from mangaroute.sidecar.address import default_socket_path
from mangaroute.sidecar.cli.admin import register as register_admin
from mangaroute.sidecar.metrics import DEFAULT_PROMETHEUS_PORT

if TYPE_CHECKING:
    from mangaroute.core.settings import RouterConfig
    from mangaroute.sidecar.metrics import SidecarMetrics
    from mangaroute.sidecar.server import Sidecar, SidecarSettings

__all__ = ["add_arguments", "cmd_serve", "main", "register"]

DESCRIPTION = """\
Serve the router over gRPC (service mangaroute.v1.Router, plus grpc.health.v1.Health and
server reflection) for applications that are not written in Python. Listens on an
owner-only Unix socket by default; SIGTERM or SIGINT drains in-flight calls for --grace-s
seconds and exits 0 (a second signal stops at once). A TCP address beyond loopback needs TLS
or --allow-insecure-remote.
"""

EPILOG = """\
examples:
  mangaroute serve --demo                             # try it on the shipped example config
  mangaroute serve --config my.toml                   # default Unix socket
  export MANGAROUTE_CONFIG=my.toml                    # or once for what follows:
  mangaroute serve --listen unix:/run/mangaroute/sidecar.sock
  mangaroute serve --listen 127.0.0.1:50051           # loopback TCP
  mangaroute serve --metrics prometheus,emf           # scrape :9464/metrics, EMF on stdout
  mangaroute serve --listen 0.0.0.0:50051 --tls-cert srv.pem --tls-key srv.key \\
      --tls-client-ca clients-ca.pem                  # mutual TLS on every interface
  mangaroute serve --listen 10.0.3.7:50051 --allow-insecure-remote   # trusted network only
  mangaroute serve --listen 0.0.0.0:50051 --tls-cert srv.pem --tls-key srv.key \
      --tls-client-ca ca.pem --admin-subject 'CN=ops-admin'   # who may use `mangaroute admin`
  grpcurl -plaintext -unix /tmp/mangaroute-$UID/sidecar.sock list

With a [shared] table in the config, the sidecar shares usage, ejections, spend and the
primary with the other replicas of its deployment through Redis (docs/shared.md).

API: proto/mangaroute_api/v1/router.proto; guide: docs/sidecar.md
"""


def _octal(text: str) -> int:
    try:
        return int(text, 8)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an octal mode like 600, got {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_option(parser, fallback="none: refused unless --demo")
    parser.add_argument(
        "--demo",
        action="store_true",
        help="serve the shipped MangaAssist example config (its ARNs name the placeholder "
        "account 123456789012: for trying the sidecar out, not for production)",
    )
    parser.add_argument(
        "--listen",
        metavar="ADDR",
        help=f"unix:/path, host:port or a port (TCP on 127.0.0.1); default: "
        f"unix:{default_socket_path()}",
    )
    tls = parser.add_argument_group("TLS (optional; PEM files)")
    tls.add_argument("--tls-cert", type=Path, metavar="PEM", help="server certificate chain")
    tls.add_argument("--tls-key", type=Path, metavar="PEM", help="server private key")
    tls.add_argument(
        "--tls-client-ca",
        type=Path,
        metavar="PEM",
        help="require client certificates signed by this CA (mutual TLS)",
    )
    tls.add_argument(
        "--admin-subject",
        action="append",
        default=[],
        metavar="SUBJECT",
        help="a client certificate subject (e.g. 'CN=ops-admin', as the refusal message "
        "quotes it) allowed to call the admin RPCs over mutual TLS; repeat for more. The "
        "owner-only Unix socket is always allowed",
    )
    tls.add_argument(
        "--allow-insecure-remote",
        action="store_true",
        help="listen on a non-loopback TCP address without TLS (refused otherwise: anyone "
        "who can reach it could steer routing)",
    )
    tuning = parser.add_argument_group("serving")
    tuning.add_argument(
        "--grace-s",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="seconds in-flight calls get to finish on SIGTERM/SIGINT (default 10, at most "
        "3600); the process exits at most 0.5 s after that",
    )
    tuning.add_argument(
        "--workers", type=int, default=16, metavar="N", help="threads for unary calls (default 16)"
    )
    tuning.add_argument(
        "--max-streams",
        type=int,
        default=32,
        metavar="N",
        help="open ReportStream/WatchSwitches/WatchEvents calls at once; more get "
        "RESOURCE_EXHAUSTED (default 32)",
    )
    tuning.add_argument(
        "--max-message-bytes",
        type=int,
        default=64 * 1024,
        metavar="BYTES",
        help="larger requests get RESOURCE_EXHAUSTED (default 65536, at most 2147483647)",
    )
    tuning.add_argument(
        "--socket-mode",
        type=_octal,
        default=0o600,
        metavar="OCTAL",
        help="permissions of the Unix socket (default 600: owner only; 660 lets the group in)",
    )
    tuning.add_argument(
        "--refresh-ms",
        type=float,
        default=None,
        metavar="MS",
        help="rebuild the router's snapshot in the background when it is due, at most this "
        "often, so no call pays for it; health follows each rebuild (default: the config's "
        "refresh_ms; 0: at most once a second, leaving the rest to the calls)",
    )
    observed = parser.add_argument_group(
        "metrics (default: none; the same metric set as the library, docs/observability.md)"
    )
    observed.add_argument(
        "--metrics",
        action="append",
        default=[],
        metavar="EXPORTER",
        help="emf (CloudWatch EMF lines on stdout), otlp (OpenTelemetry OTLP, configured by "
        "the OTEL_EXPORTER_OTLP_* variables) or prometheus (a scrape endpoint); repeat the "
        "flag or separate with commas",
    )
    observed.add_argument(
        "--prometheus-host",
        default="127.0.0.1",
        metavar="HOST",
        help="address the Prometheus endpoint listens on (default 127.0.0.1: this machine "
        "only; the endpoint has no authentication)",
    )
    observed.add_argument(
        "--prometheus-port",
        type=int,
        default=DEFAULT_PROMETHEUS_PORT,
        metavar="PORT",
        help=f"port of the Prometheus endpoint (default {DEFAULT_PROMETHEUS_PORT}; 0: any free "
        "port, logged at start)",
    )
    observed.add_argument(
        "--emf-namespace",
        default=None,
        metavar="NAMESPACE",
        help="CloudWatch namespace of the EMF lines (default MangaAssist/Deployment, the "
        "dashboard's and alarms' default)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="default INFO",
    )


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``serve`` (and ``admin``, its operator's counterpart,
    :mod:`mangaroute.sidecar.cli.admin`) to the ``mangaroute`` command's sub-parsers."""
    parser = _serve_parser(
        subparsers.add_parser(
            "serve",
            help="run the gRPC sidecar (mangaroute.v1.Router, health, reflection)",
            **laid_out_help(DESCRIPTION, EPILOG),
        )
    )
    register_admin(subparsers)
    return parser


def _serve_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``parser`` (``mangaroute serve``'s or ``python -m mangaroute.sidecar``'s) with the
    serve flags and :func:`cmd_serve` as its handler."""
    add_arguments(parser)
    parser.set_defaults(handler=cmd_serve)
    return parser


def cmd_serve(args: argparse.Namespace, out: TextIO) -> int:
    from mangaroute.sidecar import require_grpc  # noqa: PLC0415

    require_grpc()
    from mangaroute.config import load_config, load_default_config  # noqa: PLC0415
    from mangaroute.sidecar.address import SidecarError, parse_listen  # noqa: PLC0415
    from mangaroute.sidecar.metrics import (  # noqa: PLC0415
        MetricsSettings,
        SidecarMetrics,
        parse_metrics,
    )
    from mangaroute.sidecar.server import SidecarSettings, TlsFiles  # noqa: PLC0415

    _configure_logging(args.log_level)
    if (args.tls_cert is None) != (args.tls_key is None):
        raise SidecarError("--tls-cert and --tls-key go together")
    if args.tls_client_ca is not None and args.tls_cert is None:
        raise SidecarError("--tls-client-ca needs --tls-cert and --tls-key")
    tls = TlsFiles(args.tls_cert, args.tls_key, args.tls_client_ca) if args.tls_cert else None
    settings = settings_from_flags(
        SidecarSettings,
        args,
        listen=parse_listen(args.listen),
        tls=tls,
        admin_subjects=tuple(args.admin_subject),
    )
    metrics_settings = settings_from_flags(
        MetricsSettings, args, exporters=parse_metrics(args.metrics)
    )
    path = serving_config_path(args.config, demo=args.demo)
    config = load_config(path) if path else load_default_config()
    if path is None:
        logging.getLogger("mangaroute.sidecar").warning(
            "--demo: serving the shipped MangaAssist example; its ARNs name the placeholder "
            "account %s, so calls routed to them fail outside a test",
            PLACEHOLDER_ACCOUNT,
        )
    metrics = SidecarMetrics(metrics_settings, config.targets)
    try:
        clean = _serve(config, settings, metrics, Path(path) if path else None)
    finally:
        metrics.close()
    if not clean:  # gRPC left call threads running; the interpreter would wait for them
        logging.shutdown()
        os._exit(0)
    return 0


def _serve(
    config: RouterConfig,
    settings: SidecarSettings,
    metrics: SidecarMetrics,
    path: Path | None = None,
) -> bool:
    """Serve until a signal, drain; whether everything stopped cleanly. With a config
    ``path``, SIGHUP or a change of the file reloads it (:class:`_Reloader`)."""
    from mangaroute.core.router import Router  # noqa: PLC0415
    from mangaroute.sidecar.server import Sidecar  # noqa: PLC0415

    router = Router(config, observer=metrics.observer)
    shared = None
    if config.shared is not None:
        from mangaroute.shared import SharedState  # noqa: PLC0415
        from mangaroute.shared.cli import redact  # noqa: PLC0415

        shared = SharedState(router, meter_provider=metrics.meter_provider)
        logging.getLogger("mangaroute.sidecar").info(
            "sharing routing state as replica %s of deployment %r at %s (sync every %g ms)",
            shared.replica,
            config.shared.deployment,
            redact(config.shared.url),
            config.shared.sync_interval_ms,
        )
    sidecar = Sidecar(router, settings)
    reloader = _Reloader(router, path) if path is not None else None
    signals = _Signals(reloader)
    clean = True
    try:
        with signals:
            sidecar.start()
            signals.wait()
            clean = _drain(sidecar, signals)
    finally:
        if shared is not None:
            shared.close()
    return clean


def _drain(sidecar: Sidecar, signals: _Signals) -> bool:
    """Stop on a thread so that a second signal can cut the drain short. Whether everything
    stopped cleanly; ``False`` also when the stop overran the grace period + 1 s (after a
    second signal: 1 s), which :meth:`Sidecar.stop` should never do."""
    result: list[bool] = []
    stopper = threading.Thread(
        target=lambda: result.append(sidecar.stop()), name="mangaroute-sidecar-drain", daemon=True
    )
    stopper.start()
    deadline = time.monotonic() + sidecar.settings.grace_s + 1.0
    cut = False
    while stopper.is_alive():
        if signals.count > 1 and not cut:
            sidecar.cut_short()
            cut = True
            deadline = min(deadline, time.monotonic() + 1.0)
        if time.monotonic() > deadline:
            logging.getLogger("mangaroute.sidecar").error("the drain overran; exiting")
            return False
        stopper.join(0.05)
    return all(result)


class _Reloader:
    """Reload the served config in place (:meth:`Router.reconfigure`) on SIGHUP or when the
    file changes (its modification time or size, looked at every :attr:`POLL_S`). A config
    that does not load is logged with its reason and the running one keeps serving. Either
    way the router publishes a :class:`~mangaroute.core.snapshot.ReloadEvent`, which the
    ``--metrics`` observers count (``mangaroute.config.reloads``, ``ConfigReload``) and
    ``WatchEvents`` streams."""

    POLL_S = 2.0

    def __init__(self, router: Any, path: Path) -> None:
        self.router = router
        self.path = Path(path)
        self.requested = False
        self.reloads = 0
        self.failures = 0
        self._seen = self._stamp()
        self._next_poll = time.monotonic() + self.POLL_S

    def _stamp(self) -> tuple[float, int] | None:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return (stat.st_mtime, stat.st_size)

    def check(self) -> None:
        """On the main thread: reload if asked to, or if the file changed."""
        now = time.monotonic()
        if not self.requested and now < self._next_poll:
            return
        self._next_poll = now + self.POLL_S
        stamp = self._stamp()
        if not self.requested and (stamp == self._seen or stamp is None):
            return
        why = "SIGHUP" if self.requested else "the file changed"
        self.requested = False
        self._seen = stamp
        from mangaroute.config import load_config  # noqa: PLC0415

        log = logging.getLogger("mangaroute.sidecar")
        try:
            config = load_config(self.path)
        except (MangarouteError, OSError, ValueError) as exc:
            self.failures += 1
            log.error("config reload (%s) rejected, the running config keeps serving: %s", why, exc)
            self.router.reject_reload(str(self.path), str(exc))
            return
        change = self.router.reconfigure(config)
        self.reloads += 1
        log.warning("config reloaded (%s) from %s: %s", why, self.path, change.describe())


class _Signals:
    """SIGTERM and SIGINT set a flag the main thread waits on; counts repeats. SIGHUP asks
    the reloader, if any, to reload the config (the reload runs on the main thread)."""

    def __init__(self, reloader: _Reloader | None = None) -> None:
        self.count = 0
        self._event = threading.Event()
        self._previous: dict[int, Any] = {}
        self._reloader = reloader

    def _hangup(self, signum: int, frame: FrameType | None) -> None:
        if self._reloader is None:
            logging.getLogger("mangaroute.sidecar").warning(
                "SIGHUP received: nothing to reload (serving --demo)"
            )
            return
        self._reloader.requested = True

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        logging.getLogger("mangaroute.sidecar").info(
            "%s received%s",
            signal.Signals(signum).name,
            "" if self.count == 1 else ": stopping now",
        )
        self._event.set()

    def wait(self) -> None:
        while not self._event.wait(0.25):
            if self._reloader is not None:
                self._reloader.check()

    def __enter__(self) -> _Signals:
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._previous[signum] = signal.signal(signum, self._handle)
        self._previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._hangup)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def _configure_logging(level: str) -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(
            level=level,
            stream=sys.stderr,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
    logging.getLogger("mangaroute").setLevel(level)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """``python -m mangaroute.sidecar [serve flags]``: a failure is one line,
    ``mangaroute serve: error: <why>``, and exit 2 (:func:`mangaroute.cli.output.guarded`)."""

    def build(parser_class: type[argparse.ArgumentParser]) -> argparse.ArgumentParser:
        prog = "python -m mangaroute.sidecar"
        return _serve_parser(parser_class(prog=prog, **laid_out_help(DESCRIPTION, EPILOG)))

    return run_parsed(build, argv, out, prog="mangaroute serve")
