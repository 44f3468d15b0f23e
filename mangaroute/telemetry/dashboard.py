"""The CloudWatch dashboard and alarms for a router configuration, as data.

:func:`dashboard_body` builds the dashboard the seed sketches (section 6.1: decisions by
pattern, p99 latency by pattern, cumulative daily cost) plus success rate, switch events,
breaker states and dropped telemetry, for the configured targets. :func:`alarms` builds the
alarms (seed "Alerting thresholds" and "Cost anomaly detection"):

* ``p99-latency-<target>`` - p99 ``InferenceLatency`` over the inference budget (1,500 ms for
  MangaAssist) in 3 of 5 minutes;
* ``error-rate-<target>`` - ``InferenceSuccess`` average under ``1 - error_rate`` (the
  switcher's threshold, 5 %) in 3 of 5 minutes; throttles count as failures here;
* ``switch-storm`` - more than ``max_switches`` primary switches in 15 minutes;
* ``spend-pace`` - token spend in an hour above the daily budget's hourly share, after the
  hourly commitments (model units, instances) the targets pay anyway.

Both become :class:`CloudWatchCall` values: printed by ``--dry-run``, made by :func:`apply`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mangaroute.core.errors import ConfigError
from mangaroute.core.policy.rankers import WeightedScore
from mangaroute.core.settings import RouterConfig
from mangaroute.telemetry import cloudwatch as cw

__all__ = [
    "AlarmSettings",
    "CloudWatchCall",
    "alarm_calls",
    "alarms",
    "apply",
    "dashboard_body",
    "dashboard_call",
    "settings_for",
]


@dataclass(frozen=True, slots=True)
class AlarmSettings:
    """Thresholds for the alarms and the dashboard's reference lines."""

    budget_ms: float = 1500.0
    """Inference latency budget: the seed's 1.5 s of the 3 s end-to-end target."""
    error_rate: float = 0.05
    daily_budget_usd: float = 2000.0
    """The seed's $60,000/month ceiling (its scoring's ``max_monthly_usd``) over 30 days."""
    max_switches: int = 3
    """Primary switches allowed in 15 minutes before the switch-storm alarm fires."""
    prefix: str = "mangaroute"
    actions: tuple[str, ...] = ()
    """ARNs notified when an alarm fires (an SNS topic, for example)."""

    def __post_init__(self) -> None:
        if not self.budget_ms > 0:
            raise ConfigError(f"must be > 0, got {self.budget_ms!r}", key="budget_ms")
        if not 0 < self.error_rate < 1:
            raise ConfigError(
                f"must be between 0 and 1, got {self.error_rate!r}",
                key="error_rate",
            )
        if not self.daily_budget_usd >= 0:
            raise ConfigError(
                f"must be >= 0, got {self.daily_budget_usd!r}", key="daily_budget_usd"
            )
        if self.max_switches < 0:
            raise ConfigError(f"must be >= 0, got {self.max_switches!r}", key="max_switches")


def settings_for(config: RouterConfig, **overrides: Any) -> AlarmSettings:
    """Alarm settings read from a router config: the budget and monthly ceiling of its
    weighted-score ranker, the switcher's error-rate threshold; ``overrides`` win."""
    values: dict[str, Any] = {}
    for policy in config.policies.values():
        ranker = policy.ranker
        if isinstance(ranker, WeightedScore):
            values["budget_ms"] = ranker.target_p99_ms
            values["daily_budget_usd"] = ranker.max_monthly_usd / 30.0
            break
    if config.switcher is not None:
        values["error_rate"] = config.switcher.error_rate_threshold
    values.update({k: v for k, v in overrides.items() if v is not None})
    return AlarmSettings(**values)


@dataclass(frozen=True, slots=True)
class CloudWatchCall:
    """One CloudWatch API call as data (``operation`` is the boto3 method name)."""

    operation: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"service": "cloudwatch", "operation": self.operation, "params": self.params}


def _metric(
    namespace: str, name: str, dims: Sequence[tuple[str, str]], **options: Any
) -> list[Any]:
    row: list[Any] = [namespace, name]
    for key, value in dims:
        row += [key, value]
    if options:
        row.append(options)
    return row


def _widget(
    title: str, metrics: list[list[Any]], region: str, stat: str, period: int, **extra: Any
) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "title": title,
        "view": "timeSeries",
        "region": region,
        "metrics": metrics,
        "stat": stat,
        "period": period,
        **extra,
    }
    return {"type": "metric", "width": 12, "height": 6, "properties": properties}


def dashboard_body(
    config: RouterConfig,
    *,
    namespace: str = cw.DEFAULT_NAMESPACE,
    region: str | None = None,
    settings: AlarmSettings | None = None,
) -> dict[str, Any]:
    """The dashboard body (a dict; ``json.dumps`` it for ``put_dashboard``)."""
    settings = settings or settings_for(config)
    region = region or config.targets[0].region
    targets = [(t.name, t.pattern.value) for t in config.targets]

    def per_target(name: str, **options: Any) -> list[list[Any]]:
        return [
            _metric(namespace, name, [(cw.TARGET, t), (cw.PATTERN, p)], label=t, **options)
            for t, p in targets
        ]

    cost = [
        *per_target(cw.INFERENCE_COST),
        _metric(namespace, cw.INFERENCE_COST, [], id="total", visible=False),
        [{"expression": "RUNNING_SUM(total)", "label": "cumulative", "id": "cumulative"}],
    ]
    widgets = [
        _widget("Routing decisions by target", per_target(cw.ROUTING_DECISION), region, "Sum", 300),
        _widget(
            "Inference latency p99 by target (ms)",
            per_target(cw.INFERENCE_LATENCY),
            region,
            "p99",
            300,
            annotations={
                "horizontal": [{"label": "inference budget", "value": settings.budget_ms}]
            },
        ),
        _widget(
            "Success rate by target",
            per_target(cw.INFERENCE_SUCCESS),
            region,
            "Average",
            300,
            yAxis={"left": {"min": 0, "max": 1}},
        ),
        _widget("Inference cost, hourly and cumulative (USD)", cost, region, "Sum", 3600),
        _widget(
            "Pattern switches",
            [_metric(namespace, cw.PATTERN_SWITCH, [], label="switches")],
            region,
            "Sum",
            60,
        ),
        _widget(
            "Breaker state (0 closed, 1 half-open, 2 open)",
            per_target(cw.BREAKER_STATE),
            region,
            "Maximum",
            60,
            yAxis={"left": {"min": 0, "max": 2}},
        ),
        _widget(
            "Config reloads (accepted / rejected)",
            [
                _metric(namespace, cw.CONFIG_RELOAD, [(cw.RESULT, result)], label=result)
                for result in ("accepted", "rejected")
            ],
            region,
            "Sum",
            60,
        ),
        _widget(
            "Telemetry datapoints dropped",
            [_metric(namespace, cw.DROPPED_DATAPOINTS, [], label="dropped")],
            region,
            "Sum",
            300,
        ),
    ]
    for index, widget in enumerate(widgets):
        widget["x"] = 12 * (index % 2)
        widget["y"] = 6 * (index // 2)
    return {"widgets": widgets}


def dashboard_call(
    config: RouterConfig,
    *,
    name: str = "MangaAssist-Deployment",
    namespace: str = cw.DEFAULT_NAMESPACE,
    region: str | None = None,
    settings: AlarmSettings | None = None,
) -> CloudWatchCall:
    body = dashboard_body(config, namespace=namespace, region=region, settings=settings)
    return CloudWatchCall(
        "put_dashboard", {"DashboardName": name, "DashboardBody": json.dumps(body)}
    )


def alarms(
    config: RouterConfig,
    *,
    namespace: str = cw.DEFAULT_NAMESPACE,
    settings: AlarmSettings | None = None,
) -> list[dict[str, Any]]:
    """``put_metric_alarm`` parameters for every alarm, in a stable order."""
    s = settings or settings_for(config)
    common: dict[str, Any] = {
        "Namespace": namespace,
        "TreatMissingData": "notBreaching",
        "ActionsEnabled": bool(s.actions),
    }
    if s.actions:
        common["AlarmActions"] = list(s.actions)
    out: list[dict[str, Any]] = []
    for target in config.targets:
        dims = [
            {"Name": cw.TARGET, "Value": target.name},
            {"Name": cw.PATTERN, "Value": target.pattern.value},
        ]
        out.append(
            {
                "AlarmName": f"{s.prefix}-p99-latency-{target.name}",
                "AlarmDescription": f"p99 inference latency of {target.name} above the "
                f"{s.budget_ms:g} ms budget in 3 of 5 minutes.",
                "MetricName": cw.INFERENCE_LATENCY,
                "Dimensions": dims,
                "ExtendedStatistic": "p99",
                # below 10 / (1 - 0.99) = 1,000 samples in a period CloudWatch calls a p99
                # not significant; "ignore" keeps the state instead of flapping on a quiet
                # night (docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/
                # percentiles-with-low-samples.html)
                "EvaluateLowSampleCountPercentile": "ignore",
                "Period": 60,
                "EvaluationPeriods": 5,
                "DatapointsToAlarm": 3,
                "Threshold": s.budget_ms,
                "ComparisonOperator": "GreaterThanThreshold",
                **common,
            }
        )
        out.append(
            {
                "AlarmName": f"{s.prefix}-error-rate-{target.name}",
                "AlarmDescription": f"More than {s.error_rate:.0%} of calls to {target.name} "
                "failed (errors, timeouts, throttles) in 3 of 5 minutes.",
                "MetricName": cw.INFERENCE_SUCCESS,
                "Dimensions": dims,
                "Statistic": "Average",
                "Period": 60,
                "EvaluationPeriods": 5,
                "DatapointsToAlarm": 3,
                "Threshold": round(1.0 - s.error_rate, 6),
                "ComparisonOperator": "LessThanThreshold",
                **common,
            }
        )
    out.append(
        {
            "AlarmName": f"{s.prefix}-switch-storm",
            "AlarmDescription": f"More than {s.max_switches} primary switches in 15 minutes: "
            "the router is flapping between targets.",
            "MetricName": cw.PATTERN_SWITCH,
            "Dimensions": [],
            "Statistic": "Sum",
            "Period": 900,
            "EvaluationPeriods": 1,
            "Threshold": float(s.max_switches),
            "ComparisonOperator": "GreaterThanThreshold",
            **common,
        }
    )
    committed = sum(t.pricing.hourly_usd for t in config.targets)
    hourly = max(0.0, s.daily_budget_usd / 24.0 - committed)
    out.append(
        {
            "AlarmName": f"{s.prefix}-spend-pace",
            "AlarmDescription": f"Token spend above ${hourly:,.2f} in an hour: the pace of a "
            f"${s.daily_budget_usd:,.2f} daily budget after ${committed:,.2f}/h of "
            "committed capacity.",
            "MetricName": cw.INFERENCE_COST,
            "Dimensions": [],
            "Statistic": "Sum",
            "Period": 3600,
            "EvaluationPeriods": 1,
            "Threshold": round(hourly, 6),
            "ComparisonOperator": "GreaterThanThreshold",
            **common,
        }
    )
    return out


def alarm_calls(
    config: RouterConfig,
    *,
    namespace: str = cw.DEFAULT_NAMESPACE,
    settings: AlarmSettings | None = None,
) -> list[CloudWatchCall]:
    return [
        CloudWatchCall("put_metric_alarm", params)
        for params in alarms(config, namespace=namespace, settings=settings)
    ]


def apply(calls: Sequence[CloudWatchCall], client: Any) -> list[dict[str, Any]]:
    """Make the calls with a boto3 CloudWatch client (both calls are idempotent upserts)."""
    done = []
    for call in calls:
        response = getattr(client, call.operation)(**call.params)
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        name = call.params.get("DashboardName") or call.params.get("AlarmName")
        done.append({"operation": call.operation, "name": name, "status": status})
    return done
