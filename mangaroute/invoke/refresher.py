"""``RoutedClient``'s snapshot refresher: the runtime's, shared with the sidecar.

See :mod:`mangaroute.runtime.refresher`: it rebuilds the router's snapshot off the callers'
threads only when the router says it is due, and sleeps while nothing happens.
"""

from mangaroute.runtime.refresher import SnapshotRefresher

__all__ = ["SnapshotRefresher"]
