"""The telemetry package's public names are pinned, and its imports stay light: library code
uses the OpenTelemetry API only, and the CloudWatch parts load no OpenTelemetry at all."""

from __future__ import annotations

import subprocess
import sys

import pytest

import mangaroute.telemetry as telemetry

EXPECTED = {
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
}


def test_all_is_pinned() -> None:
    assert set(telemetry.__all__) == EXPECTED
    for name in telemetry.__all__:
        assert getattr(telemetry, name) is not None, name
    assert set(dir(telemetry)) >= EXPECTED
    with pytest.raises(AttributeError):
        telemetry.NoSuchThing  # noqa: B018


def loaded_after(code: str) -> set[str]:
    script = f"{code}\nimport sys\nprint('\\n'.join(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    return set(result.stdout.split())


def test_cloudwatch_parts_load_no_opentelemetry() -> None:
    modules = loaded_after(
        "import mangaroute.telemetry.cli, mangaroute.telemetry.cloudwatch, "
        "mangaroute.telemetry.sinks, mangaroute.telemetry.dashboard"
    )
    assert not {m for m in modules if m.startswith("opentelemetry")}
    assert "boto3" not in modules  # only PutMetricDataSink() and --apply load the AWS SDK


def test_library_code_uses_the_opentelemetry_api_only() -> None:
    modules = loaded_after(
        "from mangaroute.telemetry import OTelObserver, RoutingTelemetry, CloudWatchMetrics"
    )
    assert "opentelemetry.trace" in modules and "opentelemetry.metrics" in modules
    assert not {m for m in modules if m.startswith(("opentelemetry.sdk", "opentelemetry.semconv"))}
