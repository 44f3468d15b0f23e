"""The gRPC sidecar: the same router for callers that are not written in Python.

``mangaroute serve`` runs it; :class:`Sidecar` embeds it. The API is
``proto/mangaroute_api/v1/router.proto`` (service ``mangaroute.v1.Router``); its generated
Python code lives in the private package ``mangaroute.sidecar._generated`` (see
``scripts/gen_proto.py``). This package imports gRPC, lazily: registering the ``serve``
command (:mod:`mangaroute.sidecar.cli`) does not, so the rest of the CLI stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mangaroute.sidecar.address import ListenAddress, SidecarError, parse_listen
    from mangaroute.sidecar.server import SERVICE_NAME, Sidecar, SidecarSettings, TlsFiles

__all__ = [
    "SERVICE_NAME",
    "ListenAddress",
    "Sidecar",
    "SidecarError",
    "SidecarExtraMissing",
    "SidecarSettings",
    "TlsFiles",
    "parse_listen",
    "require_grpc",
]

INSTALL_HINT = "pip install 'mangaroute[sidecar]'"

# The modules the ``sidecar`` extra installs, by the package that provides them.
_EXTRA_MODULES = {
    "grpc": "grpcio",
    "grpc_health": "grpcio-health-checking",
    "grpc_reflection": "grpcio-reflection",
    "google.protobuf": "protobuf",
}

_HOMES = {
    "ListenAddress": "address",
    "SidecarError": "address",
    "SidecarExtraMissing": "address",
    "parse_listen": "address",
    "SERVICE_NAME": "server",
    "Sidecar": "server",
    "SidecarSettings": "server",
    "TlsFiles": "server",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)


def require_grpc() -> None:
    """Raise :class:`SidecarExtraMissing` unless the ``sidecar`` extra is installed.

    The core install has no gRPC or protobuf; everything that needs them is reached through
    this package, and the sidecar commands call this first so a user gets the install line
    instead of a traceback.
    """
    from mangaroute.sidecar.address import SidecarExtraMissing  # noqa: PLC0415

    missing = []
    for module, package in _EXTRA_MODULES.items():
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(package)
    if missing:
        raise SidecarExtraMissing(
            f"the gRPC sidecar needs {', '.join(missing)}, which the core install leaves out: "
            f"{INSTALL_HINT}"
        )
