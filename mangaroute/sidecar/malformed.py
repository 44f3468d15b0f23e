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

logger = logging.getLogger("mangaroute.sidecar")

EVERY_S = 10.0


class MalformedLog:
    """Counts malformed requests and logs them at most once per ``every_s`` (a WARNING: the
    sidecar itself is fine)."""

    __slots__ = ("_clock", "_every_ns", "_last_ns", "_lock", "_log", "_unlogged", "total")

    def __init__(
        self,
        every_s: float = EVERY_S,
        clock: Callable[[], int] = time.monotonic_ns,
        log: logging.Logger = logger,
    ) -> None:
        self._every_ns = round(every_s * 1e9)
        self._clock = clock
        self._log = log
        self._lock = threading.Lock()
        self._last_ns: int | None = None
        self._unlogged = 0
        self.total = 0
        """Malformed requests since the start."""

    def note(self, message: str, peer: str) -> bool:
        """Count one; log it unless a line went out less than ``every_s`` ago. Returns
        whether it was logged."""
        now = self._clock()
        with self._lock:
            self.total += 1
            if self._last_ns is not None and now - self._last_ns < self._every_ns:
                self._unlogged += 1
                return False
            self._last_ns = now
            unlogged, self._unlogged = self._unlogged, 0
            total = self.total
        self._log.warning(
            "%s (peer %s; %d malformed requests since the start, %d not logged since the last "
            "such line: at most one per %g s)",
            message,
            peer,
            total,
            unlogged,
            self._every_ns / 1e9,
        )
        return True
