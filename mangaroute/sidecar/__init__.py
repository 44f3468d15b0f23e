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
    "SidecarSettings",
    "TlsFiles",
    "parse_listen",
]

_HOMES = {
    "ListenAddress": "address",
    "SidecarError": "address",
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
