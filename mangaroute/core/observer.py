"""What the router tells telemetry, with nothing attached by default.

An :class:`Observer` is called on the caller's thread: from ``choose()`` with each decision,
from ``record()`` with each outcome, and with every :class:`RouterEvent`. It must be cheap and
must not raise - append to a bounded buffer and export on a background thread (as
OpenTelemetry's ``BatchProcessor`` does). Vendor code (OpenTelemetry, CloudWatch) lives in
adapters that implement this protocol; the core imports none of it. With no observer the
router pays one ``is None`` check per call.
"""

from __future__ import annotations

from typing import Protocol

from mangaroute.core.decision import Decision
from mangaroute.core.observation import Observation
from mangaroute.core.snapshot import RouterEvent


class Observer(Protocol):
    def on_decision(self, decision: Decision) -> None:
        """A decision was handed out by ``choose()``."""

    def on_outcome(self, observation: Observation) -> None:
        """A call's outcome was recorded (already validated): target, outcome, latency,
        time to first token, tokens (uncached input, output, prompt-cache reads and writes)
        and error code, in one frozen :class:`Observation`."""

    def on_event(self, event: RouterEvent) -> None:
        """A primary switch or a breaker transition happened."""


class Observers:
    """Fan one router's notifications out to several observers."""

    __slots__ = ("_observers",)

    def __init__(self, *observers: Observer) -> None:
        self._observers = observers

    def on_decision(self, decision: Decision) -> None:
        for observer in self._observers:
            observer.on_decision(decision)

    def on_outcome(self, observation: Observation) -> None:
        for observer in self._observers:
            observer.on_outcome(observation)

    def on_event(self, event: RouterEvent) -> None:
        for observer in self._observers:
            observer.on_event(event)
