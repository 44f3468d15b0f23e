"""The background runtime: the one way mangaroute runs work off the callers' threads.

Layer rule: imports only :mod:`mangaroute.core` (and the standard library). Adapters (invoke,
sidecar, shared state, telemetry) build on it; see ``docs/architecture.md``.
"""

from mangaroute.runtime.ratelimit import RateLimitedLog
from mangaroute.runtime.refresher import SnapshotRefresher
from mangaroute.runtime.worker import PeriodicWorker, close_at_exit, forget_at_exit, run_safely

__all__ = [
    "PeriodicWorker",
    "RateLimitedLog",
    "SnapshotRefresher",
    "close_at_exit",
    "forget_at_exit",
    "run_safely",
]
