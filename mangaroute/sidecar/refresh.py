"""The sidecar's snapshot refresher: the runtime's, shared with ``RoutedClient``.

See :mod:`mangaroute.runtime.refresher`. The sidecar hands each snapshot it builds to its
health publisher (``on_snapshot``); a breaker that moves makes the router due at once, so
health follows within one rebuild.
"""

from mangaroute.runtime.refresher import SnapshotRefresher

__all__ = ["SnapshotRefresher"]
