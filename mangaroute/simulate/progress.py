"""A progress line for long simulations: messages replayed so far, on stderr.

A full day is millions of routed calls per policy and takes a while; the runs go to forked
worker processes, so each run's count lives in shared memory (a ``RawArray`` made before the
fork): a worker writes its own slot every few thousand messages, the parent reads them all
and redraws one line (carriage return, no newline) at most every ``interval_s``. The line is
erased when the runs are done, so nothing of it stays in the terminal's scrollback or in
whatever the command prints after it. The CLI shows it only when stderr is a terminal
(``--quiet`` silences it); nothing of it ever goes to stdout.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from multiprocessing.pool import AsyncResult
from typing import Any, TextIO

__all__ = ["EVERY", "Progress"]

EVERY = 1 << 14
"""A run reports its count every this many messages (a power of two: a mask test)."""


class Progress:
    """Counts per run (``names``), each run ``messages`` long, drawn on ``stream``."""

    def __init__(
        self,
        names: Sequence[str],
        messages: int,
        stream: TextIO,
        *,
        clock: Callable[[], float] = time.monotonic,
        interval_s: float = 0.5,
    ) -> None:
        self.names = list(names)
        self.messages = messages
        self.stream = stream
        self.clock = clock
        self.interval_s = interval_s
        self.counts: Any = multiprocessing.RawArray("q", max(1, len(self.names)))
        self._owner = os.getpid()
        self._started = clock()
        self._drawn_at = -float("inf")
        self._width = 0

    def reporter(self, name: str) -> Callable[[int], None]:
        """What run ``name`` calls with its count of messages done."""
        slot = self.names.index(name)
        counts = self.counts

        def report(done: int) -> None:
            counts[slot] = done
            if os.getpid() == self._owner:  # runs in this process: draw as they go
                self.draw()

        return report

    def line(self) -> str:
        runs = len(self.names)
        done = sum(self.counts[:runs])
        total = max(1, self.messages * runs)
        finished = sum(1 for count in self.counts[:runs] if count >= self.messages)
        elapsed = self.clock() - self._started
        return (
            f"simulating: {done / 1e6:.2f}M of {total / 1e6:.2f}M messages "
            f"({100 * done / total:.0f} %), {finished}/{runs} runs done, {elapsed:.0f} s"
        )

    def draw(self, *, force: bool = False) -> None:
        now = self.clock()
        if not force and now - self._drawn_at < self.interval_s:
            return
        self._drawn_at = now
        text = self.line()
        self.stream.write("\r" + text.ljust(self._width))
        self.stream.flush()
        self._width = len(text)

    def wait(self, pending: Sequence[AsyncResult[Any]]) -> None:
        """Redraw until every pending result is ready (workers run meanwhile)."""
        for result in pending:
            while not result.ready():
                result.wait(self.interval_s)
                self.draw()

    def close(self) -> None:
        """Erase the line."""
        if self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0
