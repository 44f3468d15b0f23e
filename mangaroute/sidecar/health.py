"""Keep the standard ``grpc.health.v1.Health`` status in step with the router.

SERVING while at least one target is routable (its breaker closed or half-open), NOT_SERVING
when every breaker is open - then ``Choose`` still answers (panic routing), but an ECS or
Kubernetes health check should know that the calls it routes are likely to fail. The status
is published from each snapshot the :class:`~mangaroute.runtime.refresher.SnapshotRefresher` builds
(every few milliseconds, and at once after a breaker event), never from a router thread.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from grpc_health.v1 import health
from grpc_health.v1 import health_pb2 as health_pb

from mangaroute.core.snapshot import Snapshot
from mangaroute.sidecar.convert import is_serving

logger = logging.getLogger("mangaroute.sidecar")

SERVING = health_pb.HealthCheckResponse.SERVING
NOT_SERVING = health_pb.HealthCheckResponse.NOT_SERVING


class HealthPublisher:
    """Sets ``servicer``'s status for ``services`` (``""`` is the whole server)."""

    def __init__(self, servicer: health.HealthServicer, services: Iterable[str]) -> None:
        self._servicer = servicer
        self._services = tuple(services)
        self._serving: bool | None = None

    @property
    def serving(self) -> bool | None:
        return self._serving

    def publish(self, snapshot: Snapshot) -> None:
        serving = is_serving(snapshot)
        if serving == self._serving:
            return
        status = SERVING if serving else NOT_SERVING
        for service in self._services:
            self._servicer.set(service, status)
        if self._serving is not None:
            if serving:
                logger.info("health: SERVING (a target is routable again)")
            else:
                logger.warning("health: NOT_SERVING (every target is ejected)")
        self._serving = serving

    def shutdown(self) -> None:
        """NOT_SERVING for good: the drain has begun."""
        self._servicer.enter_graceful_shutdown()
