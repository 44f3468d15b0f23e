"""``mangaroute admin eject|restore|pin|unpin``: act on a running sidecar.

Each subcommand is one admin RPC (docs/sidecar.md, "Admin"). The sidecar allows them only
over its owner-only Unix socket (the default ``--address``, run as the sidecar's user) or to
mutual-TLS clients whose certificate subject it lists (``serve --admin-subject``): pass
``--tls-ca``, ``--tls-cert`` and ``--tls-key`` for those. A refusal or an unreachable sidecar
is an error naming the address and what to do (exit 2; a JSON object under ``--json``).
gRPC is imported only when a subcommand runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from mangaroute.cli.options import laid_out_help
from mangaroute.cli.output import emit
from mangaroute.core.errors import MangarouteError
from mangaroute.sidecar.address import default_socket_path

if TYPE_CHECKING:
    import grpc

    from mangaroute.sidecar._generated.mangaroute_api.v1 import router_pb2 as pb

__all__ = ["AdminCallFailed", "parse_duration", "register"]

DESCRIPTION = """\
Act on a running sidecar: eject a target, restore it, pin the primary to a target or unpin
it. Every action needs a reason; eject and pin a --duration after which they lapse. The
sidecar allows these only over its owner-only Unix socket (run this as the sidecar's user) or
to mutual-TLS clients whose certificate subject is in its --admin-subject list.
"""

EPILOG = """\
examples:
  mangaroute admin eject sagemaker-manga --reason "endpoint redeploy" --duration 15m
  mangaroute admin restore sagemaker-manga --reason "redeploy done"
  mangaroute admin pin ondemand-sonnet --reason "PT resize" --duration 2h
  mangaroute admin unpin --reason "PT resize done"
  mangaroute admin eject ondemand-haiku --reason "quota cut" --duration 1h \\
      --address sidecar.internal:50051 --tls-ca ca.pem --tls-cert me.pem --tls-key me.key
"""

_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([smhd]?)\s*", re.IGNORECASE)


_ACTIONS = {
    # subcommand: (RPC, whether it names a target, whether it takes a duration, help)
    "eject": ("Eject", True, True, "send no calls to a target for --duration"),
    "restore": ("Restore", True, False, "close a target's breaker now: it takes calls again"),
    "pin": (
        "PinPrimary",
        True,
        True,
        "make a target the primary, with no automatic switch, for --duration",
    ),
    "unpin": ("UnpinPrimary", False, False, "end the pin; the switcher judges again"),
}


class AdminCallFailed(MangarouteError):
    """The sidecar could not be reached, or refused the action; the message says why."""


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``2h``, ``1d`` (a number of seconds, minutes, hours or days)
    in seconds. The sidecar checks the range (0.001 s to a week)."""
    found = _DURATION.fullmatch(text)
    if found is None:
        raise argparse.ArgumentTypeError(
            f"expected a duration like 90, 90s, 15m, 2h or 1d, got {text!r}"
        )
    return float(found.group(1)) * _UNITS[found.group(2).lower()]


def register(commands: Any) -> argparse.ArgumentParser:
    """Add ``admin`` and its subcommands to the ``mangaroute`` command's sub-parsers."""
    admin: argparse.ArgumentParser = commands.add_parser(
        "admin",
        help="eject, restore, pin or unpin on a running sidecar (operator actions)",
        **laid_out_help(DESCRIPTION, EPILOG),
    )
    actions = admin.add_subparsers(dest="admin_action", metavar="ACTION", required=True)
    for name, (_, target, duration, help_text) in _ACTIONS.items():
        sub = actions.add_parser(name, help=help_text, description=help_text + ".")
        if target:
            sub.add_argument("target", metavar="TARGET", help="a target name of the config")
        sub.add_argument("--reason", required=True, help="why (logged and shown in snapshots)")
        if duration:
            sub.add_argument(
                "--duration",
                type=parse_duration,
                required=True,
                metavar="TIME",
                help="how long until it lapses: 90, 90s, 15m, 2h, 1d (at most a week)",
            )
        _add_connection(sub)
        sub.set_defaults(handler=cmd_admin)
    return admin


def _add_connection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--address",
        metavar="ADDR",
        help=f"the sidecar, as for serve --listen (default: unix:{default_socket_path()})",
    )
    parser.add_argument(
        "--operator",
        default=None,
        metavar="NAME",
        help="who is acting, for the sidecar's log (default: your login name)",
    )
    tls = parser.add_argument_group("mutual TLS (for a sidecar reached over TCP)")
    tls.add_argument("--tls-ca", type=Path, metavar="PEM", help="CA that signed the sidecar")
    tls.add_argument("--tls-cert", type=Path, metavar="PEM", help="your client certificate")
    tls.add_argument("--tls-key", type=Path, metavar="PEM", help="your client private key")
    tls.add_argument(
        "--tls-server-name",
        metavar="NAME",
        help="the name the sidecar's certificate is for, when --address does not say it",
    )
    parser.add_argument(
        "--timeout-s", type=float, default=10.0, metavar="SECONDS", help="default 10"
    )
    parser.add_argument("--json", action="store_true", help="print JSON for machines")


def cmd_admin(args: argparse.Namespace, out: TextIO) -> int:
    from mangaroute.sidecar import require_grpc  # noqa: PLC0415

    require_grpc()
    import grpc  # noqa: PLC0415

    from mangaroute.sidecar._generated.mangaroute_api.v1 import (  # noqa: PLC0415
        router_pb2 as pb,
    )
    from mangaroute.sidecar._generated.mangaroute_api.v1 import (  # noqa: PLC0415
        router_pb2_grpc as pb_grpc,
    )
    from mangaroute.sidecar.address import SidecarError, parse_listen  # noqa: PLC0415

    try:
        address = parse_listen(args.address).target
    except SidecarError as exc:
        raise AdminCallFailed(str(exc).replace("--listen", "--address", 1)) from None
    operator = args.operator if args.operator is not None else _login()
    rpc, target, duration, _ = _ACTIONS[args.admin_action]
    fields: dict[str, Any] = {"reason": args.reason, "operator": operator}
    if target:
        fields["target_name"] = args.target
    if duration:
        fields["duration_s"] = args.duration
    request = getattr(pb, f"{rpc}Request")(**fields)
    with _channel(args, address) as channel:
        stub = pb_grpc.RouterStub(channel)  # type: ignore[no-untyped-call]
        try:
            reply = getattr(stub, rpc)(request, timeout=args.timeout_s)
        except grpc.RpcError as exc:
            raise _failure(exc, address) from None
    data = action_dict(reply.action)
    emit(args, data, lambda: _describe(data), out)
    return 0


def _login() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in a bare container
        return ""


def _channel(args: argparse.Namespace, address: str) -> grpc.Channel:
    import grpc  # noqa: PLC0415

    if args.tls_ca is None and args.tls_cert is None and args.tls_key is None:
        return grpc.insecure_channel(address)
    if (args.tls_cert is None) != (args.tls_key is None):
        raise AdminCallFailed("--tls-cert and --tls-key go together")
    files = [args.tls_ca, args.tls_key, args.tls_cert]
    ca, key, cert = (_read(path) if path is not None else None for path in files)
    credentials = grpc.ssl_channel_credentials(ca, private_key=key, certificate_chain=cert)
    options = []
    if args.tls_server_name:
        options.append(("grpc.ssl_target_name_override", args.tls_server_name))
    return grpc.secure_channel(address, credentials, options=options)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise AdminCallFailed(f"{path}: {exc.strerror or exc}") from None


def _failure(exc: grpc.RpcError, address: str) -> AdminCallFailed:
    import grpc  # noqa: PLC0415

    code = exc.code()
    details = exc.details()
    if code == grpc.StatusCode.UNAVAILABLE:
        return AdminCallFailed(
            f"cannot reach the sidecar at {address} ({details}); is `mangaroute serve` "
            "running there? Pass its address with --address"
        )
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return AdminCallFailed(f"the sidecar at {address} did not answer within --timeout-s")
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return AdminCallFailed(
            f"the sidecar at {address} has no admin RPCs (an older mangaroute); upgrade it"
        )
    return AdminCallFailed(f"the sidecar at {address} refused ({code.name}): {details}")


def action_dict(action: pb.AdminAction) -> dict[str, Any]:
    """An ``AdminAction`` reply as JSON-ready data (times in ISO 8601, UTC)."""
    return {
        "action": action.action,
        "target": action.target,
        "reason": action.reason,
        "by": action.by,
        "until": _iso(action.until.seconds, action.until.nanos)
        if action.HasField("until")
        else None,
        "changed": action.changed,
        "time": _iso(action.time.seconds, action.time.nanos),
    }


def _iso(seconds: int, nanos: int) -> str:
    moment = dt.datetime.fromtimestamp(seconds + nanos / 1e9, dt.UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


_DONE = {"eject": "ejected", "restore": "restored", "pin": "pinned", "unpin": "unpinned"}


def _describe(data: dict[str, Any]) -> str:
    if not data["changed"]:
        nothing = "was not open" if data["action"] == "restore" else "no pin was set"
        return f"{data['action']} {data['target']}: nothing to do ({nothing})"
    until = f" until {data['until']}" if data["until"] else ""
    what = "primary " if data["action"] in ("pin", "unpin") else ""
    return f"{_DONE[data['action']]} {what}{data['target']}{until} (by {data['by']})"
