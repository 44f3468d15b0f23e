"""Observability adapters: OpenTelemetry spans and metrics, CloudWatch metrics, dashboards.

The core imports none of this; attach what you need::

    from mangaroute import Router, load_default_config
    from mangaroute.core.observer import Observers
    from mangaroute.telemetry import CloudWatchMetrics, OTelObserver, RoutingTelemetry

    config = load_default_config()
    otel = OTelObserver(targets=config.targets)            # OpenTelemetry metrics
    cloudwatch = CloudWatchMetrics(targets=config.targets)  # EMF lines on stdout
    router = Router(config, observer=Observers(otel, cloudwatch))
    telemetry = RoutingTelemetry()                          # spans, for the invocation layer

Library code depends on ``opentelemetry-api`` only; install an SDK in the application. Names
are imported lazily, so ``mangaroute telemetry dashboard`` does not load OpenTelemetry. See
``docs/observability.md``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mangaroute.telemetry.cloudwatch import DEFAULT_NAMESPACE, CloudWatchMetrics
    from mangaroute.telemetry.dashboard import (
        AlarmSettings,
        CloudWatchCall,
        alarm_calls,
        alarms,
        dashboard_body,
        dashboard_call,
    )
    from mangaroute.telemetry.datum import MetricDatum, MetricSink, Statistics
    from mangaroute.telemetry.naming import botocore_instrumented
    from mangaroute.telemetry.otel_metrics import OTelObserver
    from mangaroute.telemetry.sinks import EmfSink, ExportError, PutMetricDataSink
    from mangaroute.telemetry.tracing import (
        AttemptSpan,
        AttemptSpanKind,
        RouteSpan,
        RoutingTelemetry,
    )

_WHERE = {
    "DEFAULT_NAMESPACE": "cloudwatch",
    "CloudWatchMetrics": "cloudwatch",
    "MetricDatum": "datum",
    "MetricSink": "datum",
    "Statistics": "datum",
    "AlarmSettings": "dashboard",
    "CloudWatchCall": "dashboard",
    "alarm_calls": "dashboard",
    "alarms": "dashboard",
    "dashboard_body": "dashboard",
    "dashboard_call": "dashboard",
    "botocore_instrumented": "naming",
    "OTelObserver": "otel_metrics",
    "EmfSink": "sinks",
    "ExportError": "sinks",
    "PutMetricDataSink": "sinks",
    "AttemptSpan": "tracing",
    "AttemptSpanKind": "tracing",
    "RouteSpan": "tracing",
    "RoutingTelemetry": "tracing",
}

__all__ = [
    "DEFAULT_NAMESPACE",
    "AlarmSettings",
    "AttemptSpan",
    "AttemptSpanKind",
    "CloudWatchCall",
    "CloudWatchMetrics",
    "EmfSink",
    "ExportError",
    "MetricDatum",
    "MetricSink",
    "OTelObserver",
    "PutMetricDataSink",
    "RouteSpan",
    "RoutingTelemetry",
    "Statistics",
    "alarm_calls",
    "alarms",
    "botocore_instrumented",
    "dashboard_body",
    "dashboard_call",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'mangaroute.telemetry' has no attribute {name!r}")
    value = getattr(import_module(f"mangaroute.telemetry.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
