"""Hand router events to gRPC streams without ever blocking the router.

Router listeners run on whichever thread rebuilt the snapshot, inside ``choose()`` or
``record()`` of some caller. A :class:`SwitchFeed` is one watcher's bounded queue: the listener
only appends (``offer`` never waits), the stream's own thread takes. It keeps the kinds of
event its stream sends (``WatchSwitches``: switches; ``WatchEvents``: all). A watcher that falls
``capacity`` events behind is cut off rather than buffered without bound.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from typing import cast

from mangaroute.core.snapshot import RouterEvent, SwitchEvent

ALL_EVENTS: tuple[type, ...] = RouterEvent.__args__
"""Every kind of router event (``WatchEvents`` sends them all)."""

_CLOSED = object()


class FeedOverflow(Exception):
    """The watcher fell too far behind; its stream is ended."""


class SwitchFeed:
    """One watcher's queue of router events of the ``kinds`` it keeps (switches only by
    default)."""

    def __init__(self, capacity: int = 256, kinds: tuple[type, ...] = (SwitchEvent,)) -> None:
        self.capacity = capacity
        self._kinds = kinds
        self._queue: queue.Queue[object] = queue.Queue(maxsize=capacity)
        self._closed = False
        self._overflowed = False

    def offer(self, event: RouterEvent) -> None:
        """The router listener: keep the feed's kinds, drop the others; never blocks."""
        if isinstance(event, self._kinds) and not self._closed:
            try:
                self._queue.put_nowait(event)
            except queue.Full:
                self._overflowed = True

    def close(self) -> None:
        """End the stream: wakes a reader waiting in :meth:`take`. Idempotent."""
        self._closed = True
        with contextlib.suppress(queue.Full):  # full: the reader is not waiting, sees the flag
            self._queue.put_nowait(_CLOSED)

    def take(self) -> RouterEvent | None:
        """The next event, waiting for one; ``None`` once the feed is closed."""
        while True:
            if self._overflowed:
                raise FeedOverflow(f"the watcher fell {self.capacity} events behind")
            if self._closed:
                return None
            item = self._queue.get()
            if isinstance(item, self._kinds):
                return cast(RouterEvent, item)


class StreamSlots:
    """A cap on long-lived streams, each of which holds one server worker thread."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._free = threading.BoundedSemaphore(limit)
        self._feeds: set[SwitchFeed] = set()
        self._lock = threading.Lock()
        self._in_use = 0

    def acquire(self) -> bool:
        if not self._free.acquire(blocking=False):
            return False
        with self._lock:
            self._in_use += 1
        return True

    def release(self) -> None:
        with self._lock:
            self._in_use -= 1
        self._free.release()

    @property
    def in_use(self) -> int:
        """Streams open now."""
        return self._in_use

    def add_feed(self, feed: SwitchFeed) -> None:
        with self._lock:
            self._feeds.add(feed)

    def discard_feed(self, feed: SwitchFeed) -> None:
        with self._lock:
            self._feeds.discard(feed)

    @property
    def feeds(self) -> int:
        with self._lock:
            return len(self._feeds)

    def close_feeds(self) -> None:
        """End every watch stream (at shutdown, so the drain does not wait on them)."""
        with self._lock:
            feeds = list(self._feeds)
        for feed in feeds:
            feed.close()
