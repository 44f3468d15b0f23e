"""``serve --metrics``: the library's metric observers on the sidecar's router, exported.

The sidecar records exactly what an in-process router with the same observers records
(docs/observability.md): :class:`~mangaroute.telemetry.CloudWatchMetrics` for ``emf`` and
:class:`~mangaroute.telemetry.OTelObserver` for ``otlp`` and ``prometheus``. Nothing here
names a metric; the two observers do, so the names are the library's by construction.

* ``emf`` - CloudWatch embedded-metric-format lines on stdout (ECS ``awslogs`` extracts them);
* ``otlp`` - an OpenTelemetry SDK ``MeterProvider`` with a periodic reader and the OTLP
  exporter, configured by the standard ``OTEL_EXPORTER_OTLP_*`` / ``OTEL_METRIC_EXPORT_*``
  variables (``http/protobuf`` by default, ``grpc`` when the variables ask for it);
* ``prometheus`` - the OpenTelemetry Prometheus exporter's reader on the same provider, served
  by ``prometheus_client`` on ``--prometheus-host``:``--prometheus-port`` (127.0.0.1:9464 by
  default: 9464 is the default of the OpenTelemetry specification's
  ``OTEL_EXPORTER_PROMETHEUS_PORT``).

The SDK and exporters come with the ``sidecar`` extra; a missing one is named with its
install line.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import import_module
from typing import IO, TYPE_CHECKING, Any

from mangaroute.core.observer import Observer, Observers
from mangaroute.core.targets import Target
from mangaroute.sidecar.address import ListenAddress, SidecarError

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import MetricExporter

__all__ = [
    "DEFAULT_PROMETHEUS_PORT",
    "EXPORTERS",
    "MetricsSettings",
    "SidecarMetrics",
    "parse_metrics",
]

logger = logging.getLogger("mangaroute.sidecar")

EXPORTERS = ("emf", "otlp", "prometheus")
DEFAULT_PROMETHEUS_PORT = 9464
SERVICE_NAME = "mangaroute-sidecar"
_INSTALL = "pip install 'mangaroute[sidecar]'"


def parse_metrics(values: Iterable[str]) -> tuple[str, ...]:
    """``--metrics`` values (repeated and/or comma-separated) as exporter names, in order,
    each once."""
    chosen: list[str] = []
    for value in values:
        for part in value.split(","):
            name = part.strip().lower()
            if name not in EXPORTERS:
                raise SidecarError(
                    f"--metrics {value!r}: unknown exporter {part.strip()!r}; allowed: "
                    f"{', '.join(EXPORTERS)} (repeat the flag or separate them with commas)"
                )
            if name not in chosen:
                chosen.append(name)
    return tuple(chosen)


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    """Which exporters the sidecar runs and where; the ``mangaroute serve`` flags of the same
    names."""

    exporters: tuple[str, ...] = ()
    prometheus_host: str = "127.0.0.1"
    prometheus_port: int = DEFAULT_PROMETHEUS_PORT
    emf_namespace: str | None = None

    def __post_init__(self) -> None:
        unknown = [name for name in self.exporters if name not in EXPORTERS]
        if unknown:
            raise SidecarError(f"metrics exporters {unknown} unknown; allowed: {EXPORTERS}")
        if not 0 <= self.prometheus_port <= 65535:
            raise SidecarError(
                f"--prometheus-port must be within 0-65535, got {self.prometheus_port}"
            )


class SidecarMetrics:
    """The observers and exporters of one sidecar; :meth:`close` flushes and stops them.

    ``emf_stream`` (default stdout) and ``otlp_exporter`` (default: from the environment) are
    for embedding; ``serve`` uses the defaults.
    """

    def __init__(
        self,
        settings: MetricsSettings,
        targets: Sequence[Target],
        *,
        emf_stream: IO[str] | None = None,
        otlp_exporter: MetricExporter | None = None,
    ) -> None:
        self.settings = settings
        self.prometheus_url: str | None = None
        self.meter_provider: MeterProvider | None = None
        """The SDK provider behind ``otlp`` / ``prometheus`` (``None`` without them): other
        parts of the sidecar (the shared-state link) record their metrics on it too."""
        self._closers: list[Any] = []
        observers: list[Observer] = []
        try:
            if "emf" in settings.exporters:
                observers.append(self._emf(targets, emf_stream))
            otel = [name for name in settings.exporters if name != "emf"]
            if otel:
                observers.append(self._otel(otel, targets, otlp_exporter))
        except BaseException:
            self.close()
            raise
        self.observer: Observer | None = None
        """The router's observer (``None``: no metrics)."""
        if len(observers) == 1:
            self.observer = observers[0]
        elif observers:
            self.observer = Observers(*observers)

    def _emf(self, targets: Sequence[Target], stream: IO[str] | None) -> Observer:
        from mangaroute.telemetry.cloudwatch import (  # noqa: PLC0415
            DEFAULT_NAMESPACE,
            CloudWatchMetrics,
        )
        from mangaroute.telemetry.sinks import EmfSink  # noqa: PLC0415

        namespace = self.settings.emf_namespace or DEFAULT_NAMESPACE
        try:
            cloudwatch = CloudWatchMetrics(EmfSink(stream), namespace=namespace, targets=targets)
        except ValueError as exc:
            raise SidecarError(f"--emf-namespace: {exc}") from None
        self._closers.append(cloudwatch.close)
        logger.info("metrics: CloudWatch EMF lines on stdout, namespace %s", namespace)
        return cloudwatch

    def _otel(
        self, exporters: list[str], targets: Sequence[Target], otlp: MetricExporter | None
    ) -> Observer:
        try:
            from opentelemetry.sdk.metrics import MeterProvider  # noqa: PLC0415
            from opentelemetry.sdk.metrics.export import (  # noqa: PLC0415
                MetricReader,
                PeriodicExportingMetricReader,
            )
            from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
        except ImportError:
            raise SidecarError(
                f"--metrics {','.join(exporters)} needs the OpenTelemetry SDK: {_INSTALL}"
            ) from None
        from mangaroute.telemetry.otel_metrics import OTelObserver  # noqa: PLC0415

        readers: list[MetricReader] = []
        if "otlp" in exporters:
            readers.append(PeriodicExportingMetricReader(otlp or _otlp_exporter()))
            logger.info("metrics: OpenTelemetry OTLP (%s)", _otlp_destination())
        if "prometheus" in exporters:
            readers.append(self._prometheus())
        resource = Resource.create()
        if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
            resource = resource.merge(Resource({"service.name": SERVICE_NAME}))
        provider = MeterProvider(metric_readers=readers, resource=resource)
        observer = OTelObserver(provider, targets=targets)
        self._closers.append(lambda: _shutdown(observer, provider))
        self.meter_provider = provider
        return observer

    def _prometheus(self) -> Any:
        try:
            from opentelemetry.exporter.prometheus import (  # noqa: PLC0415
                PrometheusMetricReader,
            )
            from prometheus_client import CollectorRegistry, start_http_server  # noqa: PLC0415
        except ImportError:
            raise SidecarError(
                "--metrics prometheus needs opentelemetry-exporter-prometheus: " + _INSTALL
            ) from None
        host, port = self.settings.prometheus_host, self.settings.prometheus_port
        if not ListenAddress(host=host, port=port).is_loopback:
            logger.warning(
                "metrics: the Prometheus endpoint on %s has no authentication: anyone who can "
                "reach it reads the routing metrics; restrict it with a firewall or security "
                "group",
                host,
            )
        registry = CollectorRegistry(auto_describe=True)
        reader = PrometheusMetricReader(registry=registry)
        try:
            server, thread = start_http_server(port, addr=host, registry=registry)
        except OSError as exc:
            raise SidecarError(
                f"--prometheus-host {host} --prometheus-port {port}: cannot listen "
                f"({exc.strerror or exc}); choose another port with --prometheus-port"
            ) from None

        def stop() -> None:
            server.shutdown()
            server.server_close()
            thread.join(5)

        self._closers.append(stop)
        shown = f"[{host}]" if ":" in host else host
        self.prometheus_url = f"http://{shown}:{server.server_port}/metrics"
        logger.info("metrics: Prometheus scrape endpoint at %s", self.prometheus_url)
        return reader

    def close(self) -> None:
        """Flush and stop every exporter, last started first (idempotent)."""
        while self._closers:
            closer = self._closers.pop()
            try:
                closer()
            except Exception:  # one exporter failing to flush must not keep the rest open
                logger.exception("metrics: an exporter failed to close")


def _shutdown(observer: Any, provider: MeterProvider) -> None:
    observer.close()  # replays what is buffered into the instruments
    provider.shutdown()  # the periodic reader exports once more


def _otlp_protocol() -> str:
    return (
        os.environ.get("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()


def _otlp_destination() -> str:
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    return f"{_otlp_protocol()} to {endpoint or 'the default endpoint'}"


def _otlp_exporter() -> MetricExporter:
    """The OTLP metric exporter the ``OTEL_EXPORTER_OTLP_[METRICS_]PROTOCOL`` variables ask
    for; it reads its own endpoint, headers, timeout and temporality variables."""
    protocol = _otlp_protocol()
    if protocol == "http/protobuf":
        try:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # noqa: PLC0415
                OTLPMetricExporter,
            )
        except ImportError:
            raise SidecarError(
                "--metrics otlp needs opentelemetry-exporter-otlp-proto-http: " + _INSTALL
            ) from None
        return OTLPMetricExporter()
    if protocol == "grpc":
        try:  # optional, not in the extra: imported by name
            grpc_exporter = import_module("opentelemetry.exporter.otlp.proto.grpc.metric_exporter")
        except ImportError:
            raise SidecarError(
                "--metrics otlp with OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs "
                "opentelemetry-exporter-otlp-proto-grpc: pip install "
                "opentelemetry-exporter-otlp-proto-grpc"
            ) from None
        exporter: MetricExporter = grpc_exporter.OTLPMetricExporter()
        return exporter
    raise SidecarError(
        f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: --metrics otlp supports http/protobuf "
        "(the default) and grpc"
    )
