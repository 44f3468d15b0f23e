"""A live stand-in target: its script, runtime switches, seeded rng and call records.

All state changes happen under one lock and are O(1); the lock is never held while the
server sleeps or writes (the habit of httpcore's connection pool: change state under the
lock, do I/O outside it).
"""

from __future__ import annotations

import random
import threading
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from mangaroute.testing.errors import Service
from mangaroute.testing.script import CallPlan, TargetScript, plan_call

__all__ = ["CallRecord", "Target", "TargetStats"]

_MAX_RECORDS = 10_000


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One call as planned: operation, outcome, virtual time and the scripted numbers."""

    operation: str
    outcome: str
    at_s: float
    ttft_ms: float
    output_tokens: int


@dataclass(frozen=True, slots=True)
class TargetStats:
    """A consistent copy of a target's counters (the last 10 000 records are kept)."""

    calls: int = 0
    outcomes: Mapping[str, int] = field(default_factory=dict)
    operations: Mapping[str, int] = field(default_factory=dict)
    client_disconnects: int = 0
    records: tuple[CallRecord, ...] = ()

    @property
    def ok(self) -> int:
        return self.outcomes.get("ok", 0)


class Target:
    """One model id or endpoint name served by the stand-in.

    Runtime switches, for tests that drive a failure by hand:
    ``fail_with(code)`` fails every call until ``recover()``; ``fail_next(code, calls)``
    fails the next ``calls`` calls. Scheduled outages and bursts in the script still apply
    after ``recover()``.
    """

    def __init__(self, name: str, service: Service, script: TargetScript, seed: str) -> None:
        self.name = name
        self.service = service
        self._script = script.check(service)
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._forced: str | None = None
        self._queued: deque[str] = deque()
        self._calls = 0
        self._outcomes: Counter[str] = Counter()
        self._operations: Counter[str] = Counter()
        self._disconnects = 0
        self._records: deque[CallRecord] = deque(maxlen=_MAX_RECORDS)

    def __repr__(self) -> str:
        return f"Target({self.name!r}, {self.service.value})"

    @property
    def script(self) -> TargetScript:
        return self._script

    def set_script(self, script: TargetScript) -> None:
        """Replace the script; call indices for bursts keep counting from where they are."""
        script.check(self.service)
        with self._lock:
            self._script = script

    def fail_with(self, error: str) -> None:
        """Fail every call with ``error`` until ``recover()``."""
        self.service.check(error)
        with self._lock:
            self._forced = error

    def fail_next(self, error: str, calls: int = 1) -> None:
        """Fail the next ``calls`` calls with ``error`` (queued after earlier ``fail_next``)."""
        self.service.check(error)
        with self._lock:
            self._queued.extend([error] * calls)

    def recover(self) -> None:
        """Drop ``fail_with`` and any queued ``fail_next`` failures."""
        with self._lock:
            self._forced = None
            self._queued.clear()

    def plan(self, operation: str, elapsed_s: float, *, streaming: bool = False) -> CallPlan:
        """Decide the next call and record it (as planned) before anything is sent."""
        with self._lock:
            forced = self._forced or (self._queued.popleft() if self._queued else None)
            plan = plan_call(
                self._script,
                service=self.service,
                call_index=self._calls,
                elapsed_s=elapsed_s,
                rng=self._rng,
                forced_error=forced,
                streaming=streaming,
            )
            self._calls += 1
            self._outcomes[plan.outcome] += 1
            self._operations[operation] += 1
            self._records.append(
                CallRecord(operation, plan.outcome, elapsed_s, plan.ttft_ms, plan.output_tokens)
            )
        return plan

    def reject(self, operation: str, code: str, elapsed_s: float) -> None:
        """Record a call refused before planning (a malformed request): no rng is drawn."""
        with self._lock:
            self._calls += 1
            self._outcomes[code] += 1
            self._operations[operation] += 1
            self._records.append(CallRecord(operation, code, elapsed_s, 0.0, 0))

    def note_client_disconnect(self) -> None:
        """Count a call whose client went away before the answer was complete."""
        with self._lock:
            self._disconnects += 1

    def stats(self) -> TargetStats:
        with self._lock:
            return TargetStats(
                calls=self._calls,
                outcomes=MappingProxyType(dict(self._outcomes)),
                operations=MappingProxyType(dict(self._operations)),
                client_disconnects=self._disconnects,
                records=tuple(self._records),
            )
