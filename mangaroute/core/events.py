"""Who hears what the router does: the log, the observer, subscribed listeners, and the
bounded history of primary switches.

A rebuild (or a ``record()`` that moved a breaker) collects its events and hands them to
:meth:`EventBus.publish` outside every lock: each event is logged (a switch, a breaker
opening or an operator's action at WARNING, other breaker moves at INFO; a reload is
logged where it happens), given to the observer, then to every listener; a listener that
raises is logged and skipped, never propagated into the router.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable

from mangaroute.core.breaker import BreakerState
from mangaroute.core.observer import Observer
from mangaroute.core.snapshot import AdminEvent, ReloadEvent, RouterEvent, SwitchEvent

__all__ = ["EventBus", "EventListener"]

logger = logging.getLogger("mangaroute")

EventListener = Callable[[RouterEvent], None]


class EventBus:
    """The router's events out: log, observer, listeners; and the switch history."""

    __slots__ = ("_listeners", "_observer", "history")

    def __init__(self, observer: Observer | None, history: int) -> None:
        self._observer = observer
        self._listeners: tuple[EventListener, ...] = ()
        self.history: deque[SwitchEvent] = deque(maxlen=history)
        """The most recent primary switches, oldest first (announced and adopted)."""

    def subscribe(self, listener: EventListener) -> Callable[[], None]:
        """Call ``listener`` with every future event; returns an unsubscribe function."""
        self._listeners = (*self._listeners, listener)

        def unsubscribe() -> None:
            self._listeners = tuple(item for item in self._listeners if item is not listener)

        return unsubscribe

    def publish(self, events: list[RouterEvent]) -> None:
        observer = self._observer
        for event in events:
            if isinstance(event, SwitchEvent):
                logger.warning(
                    "primary %s -> %s (%s)", event.from_target, event.to_target, event.reason
                )
            elif isinstance(event, AdminEvent):
                logger.warning("admin: %s", event.describe())
            elif isinstance(event, ReloadEvent):
                pass  # logged where the reload happens (Router.reconfigure, the reloader)
            else:
                log = logger.warning if event.to_state is BreakerState.OPEN else logger.info
                log(
                    "target %s breaker %s -> %s (%s)",
                    event.target,
                    event.from_state.value,
                    event.to_state.value,
                    event.reason,
                )
            if observer is not None:
                observer.on_event(event)
            for listener in self._listeners:
                try:
                    listener(event)
                except Exception:
                    logger.exception("event listener %r failed", listener)
