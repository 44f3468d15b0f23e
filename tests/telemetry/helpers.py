"""Small readers over in-memory OpenTelemetry data, shared by the telemetry tests."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics.export import InMemoryMetricReader

MANGA_CONFIG = """
[router]
default_class = "chat"
min_samples = 5

[targets.fast]
pattern = "bedrock_on_demand"
model_id = "anthropic.claude-3-haiku-20240307-v1:0"
region = "ap-northeast-1"
tier = "haiku"
prior = { p50_ms = 400, p90_ms = 600, p99_ms = 900 }
input_per_million_usd = 0.25
output_per_million_usd = 1.25

[targets.slow]
pattern = "bedrock_on_demand"
model_id = "anthropic.claude-3-sonnet-20240229-v1:0"
region = "ap-northeast-1"
tier = "sonnet"
prior = { p50_ms = 800, p90_ms = 1200, p99_ms = 2000 }
input_per_million_usd = 3.0
output_per_million_usd = 15.0

[targets.manga]
pattern = "sagemaker_realtime"
model_id = "mangaassist-manga-ft"
region = "ap-northeast-1"
prior = "sagemaker_realtime"
instances = 2
requests_per_second_per_instance = 8
hourly_usd_per_instance = 1.89

[classes.chat]
targets = ["fast", "slow", "manga"]
policy = "ordered"

[policies.ordered]
filters = ["healthy", "headroom"]
ranker = "order"
picker = "best"
budget = true
"""


def points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    """Every data point collected now, by metric name."""
    out: dict[str, list[Any]] = {}
    data = reader.get_metrics_data()
    if data is None:
        return out
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                out.setdefault(metric.name, []).extend(metric.data.data_points)
    return out


def units(reader: InMemoryMetricReader) -> dict[str, str]:
    out: dict[str, str] = {}
    data = reader.get_metrics_data()
    if data is None:
        return out
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                out[metric.name] = metric.unit or ""
    return out
