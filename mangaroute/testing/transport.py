"""The HTTP plumbing under ``StandIn``: a stdlib threading server and its ``Exchange``.

HTTP/1.1 with keep-alive (boto3 pools connections), ``Content-Length`` bodies for whole
answers and ``Transfer-Encoding: chunked`` for event streams, one chunk per frame, written
at once with Nagle's algorithm off so each frame leaves when it is written.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import sys
import threading
import uuid
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import Any, cast

from mangaroute.testing.wire import Exchange, StandInStoppedError

__all__ = ["Dispatch", "LoopbackServer", "Pause"]

_LOG = logging.getLogger("mangaroute.testing")

Dispatch = Callable[[Exchange, str, bytes], None]
"""Answer one POST: ``dispatch(exchange, path, body)``."""
Pause = Callable[[float], None]
"""Wait virtual milliseconds, or raise ``StandInStoppedError`` on shutdown."""


class _HttpExchange:
    """``wire.Exchange`` over one ``BaseHTTPRequestHandler`` request."""

    def __init__(self, handler: _Handler, pause: Pause) -> None:
        self._handler = handler
        self._pause = pause

    def pause_ms(self, ms: float) -> None:
        self._pause(ms)

    def _head(self, status: int, headers: Mapping[str, str]) -> None:
        handler = self._handler
        handler.send_response(status)
        handler.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for name, value in headers.items():
            handler.send_header(name, value)

    def send(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        self._head(status, headers)
        self._handler.send_header("Content-Length", str(len(body)))
        self._handler.end_headers()
        self._handler.wfile.write(body)

    def start_stream(self, headers: Mapping[str, str]) -> None:
        self._head(200, headers)
        self._handler.send_header("Transfer-Encoding", "chunked")
        self._handler.end_headers()

    def write_chunk(self, data: bytes) -> None:
        if data:
            self._handler.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))

    def end_stream(self) -> None:
        self._handler.wfile.write(b"0\r\n\r\n")

    def abort(self) -> None:
        self._handler.close_connection = True
        self._handler.connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "mangaroute-standin/1"
    sys_version = ""

    def do_POST(self) -> None:
        server = cast(LoopbackServer, self.server)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        try:
            server.dispatch(_HttpExchange(self, server.pause), self.path, body)
        except (StandInStoppedError, OSError):
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        _LOG.debug("stand-in %s: " + format, self.client_address[0], *args)


class LoopbackServer(ThreadingHTTPServer):
    """A thread per connection; every connection is tracked so ``stop`` can end it.

    Handler threads are non-daemon and ``server_close`` joins them. Open sockets are tracked
    from ``process_request`` (on the accepting thread, before the handler thread exists) to
    ``shutdown_request``, so none can be missed by ``close_open_connections``. The listen
    backlog is raised from 5 so a burst of parallel connects is not dropped and retried.
    """

    daemon_threads = False
    block_on_close = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], dispatch: Dispatch, pause: Pause) -> None:
        self.dispatch = dispatch
        self.pause = pause
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        TCPServer.server_bind(self)  # skip HTTPServer's reverse-DNS lookup of the host
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_open_connections(self) -> None:
        """Shut every open connection down, waking handlers blocked on keep-alive reads."""
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, OSError | StandInStoppedError):
            _LOG.debug("stand-in connection ended: %r", error)
        else:
            _LOG.error("stand-in handler failed", exc_info=error)
