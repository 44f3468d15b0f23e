"""Shared routing state across the replicas of one deployment (Redis / ElastiCache).

Each replica keeps routing on its own in-process snapshot - ``choose()`` never waits on the
network - while a background :class:`SharedState` publishes its deltas and merges the
fleet's view every ``sync_interval_ms``: usage per target (capacity and spill-over judge the
fleet's load), ejections (a target one replica ejects is avoided by all), the day's spend (the
budget guard paces the fleet), and the primary (one switch, one announcement). See
``docs/shared.md``.
"""

from mangaroute.core.fleet import FleetView, SharedSettings
from mangaroute.shared.link import FleetLink, LinkStatus
from mangaroute.shared.memory import MemoryStore
from mangaroute.shared.runner import SharedState
from mangaroute.shared.store import Store, StoreUnavailable

__all__ = [
    "FleetLink",
    "FleetView",
    "LinkStatus",
    "MemoryStore",
    "SharedSettings",
    "SharedState",
    "Store",
    "StoreUnavailable",
]
