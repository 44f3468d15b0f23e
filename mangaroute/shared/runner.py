"""The background thread that keeps one router in step with its fleet."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry import metrics

from mangaroute._closing import ClosesOnExit
from mangaroute.core.breaker import BreakerState
from mangaroute.core.fleet import SharedSettings
from mangaroute.core.router import Router
from mangaroute.core.snapshot import BreakerEvent, RouterEvent
from mangaroute.runtime.ratelimit import RateLimitedLog
from mangaroute.runtime.worker import PeriodicWorker
from mangaroute.shared.link import BAD_DATA_LOG_EVERY_S, FleetLink, LinkStatus
from mangaroute.shared.store import Store

logger = logging.getLogger("mangaroute.shared")


class SharedState(ClosesOnExit):
    """Shares a router's usage, ejections, spend and primary with the other replicas of its
    deployment. Starts a daemon thread that syncs every ``sync_interval_ms`` (at once after a
    local ejection, so the fleet hears of it within one round trip); ``close()`` stops it and
    returns the router to its local view. Use as a context manager or call :meth:`close`.

    ``store`` defaults to Redis at ``settings.url`` (``mangaroute[redis]``). ``meter_provider``
    receives the link's metrics - ``mangaroute.shared.connected`` (1 while a fleet view is
    merged), ``mangaroute.shared.staleness`` (seconds since the last good sync),
    ``mangaroute.shared.sync.failures`` and ``mangaroute.shared.commands`` - tagged with the
    deployment and replica (the global provider by default: a no-op without an SDK).
    """

    def __init__(
        self,
        router: Router,
        settings: SharedSettings | None = None,
        *,
        store: Store | None = None,
        start: bool = True,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        settings = settings or router.config.shared
        if settings is None:
            raise ValueError(
                "no shared-state settings: pass settings= or add [shared] to the config"
            )
        if store is None:
            from mangaroute.shared.redis_store import RedisStore  # noqa: PLC0415 - optional

            store = RedisStore(settings)
        self.settings = settings
        self.link = FleetLink(router, store, settings)
        self._store = store
        self._router = router
        self._unsubscribe = router.subscribe(self._on_event)
        self._worker = PeriodicWorker(
            f"mangaroute-shared-{self.link.replica}",
            settings.sync_interval_ms / 1000.0,
            self._sync_logged,
            log=logger,
        )
        self._bug_warning = RateLimitedLog(BAD_DATA_LOG_EVERY_S, log=logger)
        self._register_metrics(meter_provider)
        if start:
            self.start()

    @property
    def replica(self) -> str:
        return self.link.replica

    def start(self) -> None:
        """Sync now, then every ``sync_interval_ms`` on the runtime's worker (which restarts
        in a forked child and stops at interpreter exit)."""
        if self._worker.running:
            return
        self._worker.start()
        self._worker.wake()

    def sync_now(self) -> bool:
        """One sync on the caller's thread (``False`` when the store was unavailable)."""
        return self.link.sync()

    def status(self) -> LinkStatus:
        return self.link.status()

    def close(self, timeout_s: float = 2.0) -> None:
        """Publish the last deltas, stop syncing and route on the local view again. Keys
        this replica wrote expire on their own (its ejection claims within ``stale_after_ms``
        of their cool-down). Never raises - a process shutting down must not fail here (a
        step that fails is logged and the next one still runs)."""
        steps: list[Callable[[], object]] = [self._unsubscribe]
        started = self._worker.running
        # Publish the last deltas (best effort) only once the worker has stopped: the link
        # is not thread-safe, never two syncs at once.
        if self._worker.stop(timeout_s) and started:
            steps.append(self.link.sync)
        steps += [self.link.fall_back, self._store.close]
        for step in steps:
            try:
                step()
            except Exception:
                logger.exception("closing shared state: %s failed", getattr(step, "__name__", step))

    # -- internals ----------------------------------------------------------------------

    def _on_event(self, event: RouterEvent) -> None:
        if isinstance(event, BreakerEvent) and event.to_state is BreakerState.OPEN:
            self._worker.wake()

    def _sync_logged(self) -> None:
        try:
            self.link.sync()
        except Exception:  # a bug must not flood the log: keep routing, say why (once
            self._bug_warning.warn("shared-state sync failed", exc_info=True)  # a minute)

    def _register_metrics(self, provider: metrics.MeterProvider | None) -> None:
        meter = (provider or metrics.get_meter_provider()).get_meter("mangaroute.shared")
        attributes = {"deployment": self.settings.deployment, "replica": self.link.replica}

        def connected(_: Any) -> Iterable[metrics.Observation]:
            status = self.link.status()
            return [metrics.Observation(1 if status.connected else 0, attributes)]

        def staleness(_: Any) -> Iterable[metrics.Observation]:
            status = self.link.status()
            if status.last_ok_unix is None:
                return []
            age = max(0.0, self._router.unix_time() - status.last_ok_unix)
            return [metrics.Observation(age, attributes)]

        def failures(_: Any) -> Iterable[metrics.Observation]:
            return [metrics.Observation(self.link.status().failures, attributes)]

        def commands(_: Any) -> Iterable[metrics.Observation]:
            return [metrics.Observation(self.link.status().commands, attributes)]

        meter.create_observable_gauge(
            "mangaroute.shared.connected",
            [connected],
            unit="1",
            description="1 while the fleet's shared view is merged, 0 on the local view",
        )
        meter.create_observable_gauge(
            "mangaroute.shared.staleness",
            [staleness],
            unit="s",
            description="Seconds since the last successful shared-state sync",
        )
        meter.create_observable_counter(
            "mangaroute.shared.sync.failures",
            [failures],
            unit="{sync}",
            description="Shared-state syncs that failed: the store unreachable or too slow, "
            "or data in it that could not be decoded",
        )
        meter.create_observable_counter(
            "mangaroute.shared.commands",
            [commands],
            unit="{command}",
            description="Commands sent to the shared store",
        )
