"""A bounded log for requests that are not valid protobuf.

Such a request is a peer's fault (a client built against another ``.proto``, a port scanner,
an attacker), and a peer can send thousands a second: before issue 13 each one wrote a
~400-byte traceback (808 KB in 6 s). Every one is still counted, but the log gets the first at
once and then at most one line per ``every_s``, which says how many were left out since.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from mangaroute.runtime.ratelimit import RateLimitedLog

logger = logging.getLogger("mangaroute.sidecar")

EVERY_S = 10.0


class MalformedLog:
    """Counts malformed requests and logs them at most once per ``every_s`` (a WARNING: the
    sidecar itself is fine), through the runtime's :class:`RateLimitedLog`."""

    __slots__ = ("_limit", "_lock", "_log", "total")

    def __init__(
        self,
        every_s: float = EVERY_S,
        clock: Callable[[], int] = time.monotonic_ns,
        log: logging.Logger = logger,
    ) -> None:
        self._limit = RateLimitedLog(every_s, clock, log)
        self._log = log
        self._lock = threading.Lock()
        self.total = 0
        """Malformed requests since the start."""

    def note(self, message: str, peer: str) -> bool:
        """Count one; log it unless a line went out less than ``every_s`` ago. Returns
        whether it was logged."""
        with self._lock:  # gRPC calls it from many threads: count every one
            self.total += 1
            total = self.total
        unlogged = self._limit.admit()
        if unlogged is None:
            return False
        self._log.warning(
            "%s (peer %s; %d malformed requests since the start, %d not logged since the last "
            "such line: at most one per %g s)",
            message,
            peer,
            total,
            unlogged,
            self._limit.every_s,
        )
        return True
