"""A boto3 ``Session`` whose bedrock-runtime clients are routed, for frameworks that take a
session (Strands Agents ``BedrockModel(boto_session=...)``, your own wrappers).

``client("bedrock-runtime", ...)`` returns a :class:`RoutedBedrockRuntime` whose pass-through
client is the session's own ``client("bedrock-runtime", ...)`` with the same arguments; every
other service is the session's ordinary client, and every other attribute (``region_name``,
``get_credentials``, ``resource``, ...) is the wrapped session's. All the routed clients of
one session share one :class:`~mangaroute.invoke.RoutedClient` (one snapshot refresher, one
client cache); :meth:`RoutedSession.close` closes it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import boto3
from botocore.config import Config
from opentelemetry import metrics

from mangaroute._closing import ClosesOnExit
from mangaroute.core.router import Router
from mangaroute.dropin.client import DEFAULT_NAMESPACE, SERVICE, RoutedBedrockRuntime, routed_ids
from mangaroute.invoke.client import InvokeSettings, RoutedClient
from mangaroute.telemetry.tracing import RoutingTelemetry

__all__ = ["RoutedSession", "routed_session"]


class RoutedSession(ClosesOnExit):
    """A boto3 session that routes its bedrock-runtime clients. Build it with
    :func:`routed_session`."""

    def __init__(
        self,
        router: Router,
        session: Any,
        *,
        endpoint_url: str | None = None,
        config: Config | None = None,
        namespace: str = DEFAULT_NAMESPACE,
        aliases: Mapping[str, str] | None = None,
        settings: InvokeSettings | None = None,
        telemetry: RoutingTelemetry | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        routed_ids(router, namespace, aliases or {})  # a bad alias fails here, not per client
        self.router = router
        self.session = session
        self._endpoint_url = endpoint_url
        self._config = config
        self._namespace = namespace
        self._aliases = dict(aliases or {})
        self._settings = settings
        self._telemetry = telemetry
        self._meter_provider = meter_provider
        self._routed: RoutedClient | None = None
        self._lock = threading.Lock()

    def client(self, service_name: str, *args: Any, **kwargs: Any) -> Any:
        """boto3's ``Session.client``; bedrock-runtime comes back routed."""
        client = self.session.client(service_name, *args, **kwargs)
        if service_name != SERVICE:
            return client
        return RoutedBedrockRuntime(
            self.router,
            client,
            self.routed_client(),
            namespace=self._namespace,
            aliases=self._aliases,
            meter_provider=self._meter_provider,
        )

    def routed_client(self) -> RoutedClient:
        """The :class:`RoutedClient` every routed call of this session goes through (made
        on first use, from the wrapped session, ``endpoint_url`` and ``config``)."""
        with self._lock:
            if self._routed is None:
                self._routed = RoutedClient(
                    self.router,
                    session=self.session,
                    endpoint_url=self._endpoint_url,
                    config=self._config,
                    settings=self._settings,
                    telemetry=self._telemetry,
                )
            return self._routed

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.session, name)

    def close(self) -> None:
        """Stop the routed client's threads and close the clients it made."""
        with self._lock:
            routed, self._routed = self._routed, None
        if routed is not None:
            routed.close()


def routed_session(
    router: Router,
    session: Any = None,
    *,
    endpoint_url: str | None = None,
    config: Config | None = None,
    namespace: str = DEFAULT_NAMESPACE,
    aliases: Mapping[str, str] | None = None,
    settings: InvokeSettings | None = None,
    telemetry: RoutingTelemetry | None = None,
    meter_provider: metrics.MeterProvider | None = None,
) -> RoutedSession:
    """Wrap ``session`` (default: a new ``boto3.session.Session()``) so its bedrock-runtime
    clients route. ``endpoint_url`` and ``config`` apply to mangaroute's own clients for the
    targets; what a framework passes to ``client(...)`` applies to the pass-through client."""
    return RoutedSession(
        router,
        session if session is not None else boto3.session.Session(),
        endpoint_url=endpoint_url,
        config=config,
        namespace=namespace,
        aliases=aliases,
        settings=settings,
        telemetry=telemetry,
        meter_provider=meter_provider,
    )
