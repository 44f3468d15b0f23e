"""Who may call the sidecar's admin RPCs (Eject, Restore, PinPrimary, UnpinPrimary).

They change routing for every caller of the sidecar, so being able to connect is not
enough. Two kinds of caller are trusted:

* any client over the sidecar's **owner-only Unix socket** (``--socket-mode`` with no group or
  other bits, 600 by default): the kernel lets only the socket's owner (and root) connect;
* a **mutual-TLS** client whose certificate subject, as gRPC reports it
  (``x509_subject``, e.g. ``CN=ops-admin,O=Example``), is in ``serve --admin-subject``.

Everyone else - plaintext TCP (loopback included: any local user can reach it), TLS without
client certificates, a group-readable socket, a certificate subject not on the list - gets
``PERMISSION_DENIED`` with a message saying how to get access. The identity found here goes
into the log line and the snapshot with the client's own ``operator`` name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import grpc

__all__ = ["AdminGate", "AdminRefused"]

_OWNER_ONLY = 0o077
"""Socket mode bits that must be clear for the Unix socket to count as owner-only."""


class AdminRefused(Exception):
    """The caller may not use the admin RPCs; the message says how to get access."""


@dataclass(frozen=True, slots=True)
class AdminGate:
    """Decides, per call, whether the caller may act and who it is."""

    unix_socket: str | None = None
    """The served Unix socket's path when it is owner-only; ``None`` otherwise."""
    group_socket: bool = False
    """The served Unix socket lets its group or others in (``--socket-mode``)."""
    subjects: frozenset[str] = frozenset()
    """Certificate subjects allowed over mutual TLS (``--admin-subject``)."""
    mutual_tls: bool = False

    def identity(self, context: grpc.ServicerContext) -> str:
        """Who the caller is, for the log; raises :class:`AdminRefused` when it may not act."""
        if self.unix_socket is not None and context.peer().startswith("unix:"):
            return f"unix socket, uid {os.getuid()}"
        auth = context.auth_context()
        subject = _first(auth.get("x509_subject"))
        if subject is not None and self.mutual_tls:
            if subject in self.subjects:
                return f"mTLS {subject}"
            raise AdminRefused(
                f"admin RPCs: the client certificate subject {subject!r} is not allowed; "
                f"start the sidecar with --admin-subject '{subject}' to allow it"
                + (f" (allowed: {', '.join(sorted(self.subjects))})" if self.subjects else "")
            )
        raise AdminRefused(self._how_to())

    def _how_to(self) -> str:
        if self.group_socket:
            where = (
                "this sidecar's Unix socket is open to its group (--socket-mode), so it does "
                "not prove who connects"
            )
        elif self.mutual_tls:
            where = "this channel carries no client certificate"
        else:
            where = (
                "this channel proves no identity (plaintext TCP or TLS without client certificates)"
            )
        return (
            f"admin RPCs are allowed only over the sidecar's owner-only Unix socket or to "
            f"mutual-TLS clients listed with --admin-subject; {where}. Serve on a Unix socket "
            "with --socket-mode 600 (the default) and call it as the sidecar's user, or serve "
            "--tls-client-ca and --admin-subject 'CN=<your client cert>'"
        )


def _first(values: object) -> str | None:
    if not values:
        return None
    first = next(iter(values))  # type: ignore[call-overload]
    return first.decode() if isinstance(first, bytes) else str(first)
