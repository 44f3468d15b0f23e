"""Where the sidecar listens: a Unix domain socket (the default) or a TCP address.

A Unix socket is the sidecar's natural transport: only processes that can open the file can
connect, so it is created owner-only (mode 0600, bound under ``umask 0o177`` so there is no
moment when it is wider), and the default path sits in a 0700 directory of the user's own
(``$XDG_RUNTIME_DIR/mangaroute`` or ``/tmp/mangaroute-<uid>``). TCP binds to loopback unless the
address names another interface; a bare port (``50051`` or ``:50051``) means ``127.0.0.1``.

gRPC itself unlinks whatever socket file is in its way, which would let a second sidecar steal
the path of a running one; :func:`prepare_unix_socket` refuses instead when something answers
on it, and removes only a stale socket.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mangaroute.core.errors import MangarouteError

UNIX_PREFIX = "unix:"
SOCKET_NAME = "sidecar.sock"
_MAX_UNIX_PATH = 107  # sizeof(sockaddr_un.sun_path) - 1 on Linux
_LOOPBACK_NAMES = frozenset({"localhost", "localhost6", "ip6-localhost"})


class SidecarError(MangarouteError, ValueError):
    """The sidecar cannot start as asked (bad address, busy socket, unreadable TLS file...)."""


class SidecarExtraMissing(SidecarError):
    """The ``sidecar`` extra (gRPC, protobuf) is missing: ``pip install 'mangaroute[sidecar]'``."""


@dataclass(frozen=True, slots=True)
class ListenAddress:
    """A parsed ``--listen`` value: ``unix:/path`` or ``host:port``."""

    unix_path: str | None = None
    host: str = ""
    port: int = 0

    @property
    def is_unix(self) -> bool:
        return self.unix_path is not None

    @property
    def target(self) -> str:
        """The address in gRPC's syntax (what ``add_*_port`` and clients take)."""
        if self.unix_path is not None:
            return UNIX_PREFIX + self.unix_path
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def is_loopback(self) -> bool:
        if self.unix_path is not None or self.host in _LOOPBACK_NAMES:
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def with_port(self, port: int) -> ListenAddress:
        return ListenAddress(self.unix_path, self.host, port)


def default_socket_path() -> Path:
    """``$XDG_RUNTIME_DIR/mangaroute/sidecar.sock``, else ``/tmp/mangaroute-<uid>/sidecar.sock``."""
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime and Path(runtime).is_dir():
        return Path(runtime) / "mangaroute" / SOCKET_NAME
    return Path("/tmp") / f"mangaroute-{os.getuid()}" / SOCKET_NAME


def parse_listen(value: str | None) -> ListenAddress:
    """Parse ``--listen``; ``None`` or empty means the default Unix socket."""
    if not value:
        return ListenAddress(unix_path=str(default_socket_path()))
    if value.startswith(UNIX_PREFIX):
        path = value[len(UNIX_PREFIX) :]
        if path.startswith("//"):  # unix:///abs/path, the URI form
            path = path[2:]
        if not path:
            raise SidecarError(f"--listen {value!r}: the Unix socket path is empty")
        path = os.path.abspath(path)
        if len(os.fsencode(path)) > _MAX_UNIX_PATH:
            raise SidecarError(
                f"--listen {value!r}: a Unix socket path may be at most {_MAX_UNIX_PATH} bytes, "
                f"this one is {len(os.fsencode(path))}; choose a shorter path"
            )
        return ListenAddress(unix_path=path)
    host, sep, port_text = value.rpartition(":")
    if not sep:
        host, port_text = "", value
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise SidecarError(
            f"--listen {value!r}: expected unix:/path, host:port or a port number "
            "(0 picks a free port)"
        )
    return ListenAddress(host=host or "127.0.0.1", port=int(port_text))


def prepare_unix_socket(path: str, *, default_dir: bool) -> None:
    """Make ``path`` ready to bind: its directory exists, nobody is listening on it.

    The default directory is created 0700 and must belong to this user and be closed to
    others (a directory someone else made in ``/tmp`` could be a trap); a directory the user
    named is created 0700 if missing and otherwise left as it is (an ECS shared volume, say).
    """
    directory = Path(path).parent
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise SidecarError(f"cannot create the socket directory {directory}: {exc}") from exc
    if default_dir:
        info = directory.stat()
        if info.st_uid != os.getuid() or info.st_mode & 0o077:
            raise SidecarError(
                f"{directory} must belong to you and have mode 0700 (it has owner uid "
                f"{info.st_uid}, mode {stat.S_IMODE(info.st_mode):04o}); remove it or pass "
                "--listen unix:/another/path"
            )
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise SidecarError(f"{path} exists and is not a socket; refusing to replace it")
    if _answers(path):
        raise SidecarError(f"{path} is in use: another process is listening on it")
    os.unlink(path)


def _answers(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except OSError:
        return False
    finally:
        probe.close()
    return True


@contextlib.contextmanager
def owner_only_umask() -> Iterator[None]:
    """Create files owner-read/write only inside the block (the socket is born 0600)."""
    previous = os.umask(0o177)
    try:
        yield
    finally:
        os.umask(previous)


def remove_socket(path: str, inode: int | None) -> None:
    """Remove the socket file if it is still the one this sidecar bound."""
    with contextlib.suppress(OSError):
        if inode is None or os.lstat(path).st_ino == inode:
            os.unlink(path)


def socket_inode(path: str) -> int | None:
    try:
        return os.lstat(path).st_ino
    except OSError:
        return None
