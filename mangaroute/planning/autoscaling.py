"""SageMaker endpoint auto-scaling as data: a plan of AWS API calls, built without I/O.

The policies are the seed's §4.2 (target tracking, step scaling on ModelLatency, scheduled
peak / off-peak), with two corrections documented in ``docs/planning.md``:

- Target tracking uses the predefined ``SageMakerVariantInvocationsPerInstance`` metric
  (invocations per instance per minute). The seed's customised ``InvocationsPerInstance`` with
  the ``Average`` statistic tracks ≈ 1/instances — SageMaker emits 1/numberOfInstances per
  request (SageMaker API reference, *ScalingPolicyMetric*) — so it never reaches a target of 10.
- The step bounds are in the alarm metric's unit. ModelLatency is in microseconds, so "+1 for
  0-500 ms over the threshold" is an upper bound of 500,000; the seed's literal ``500`` means
  0.5 ms.

:mod:`mangaroute.planning.applier` executes a plan with injected boto3 clients.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mangaroute.planning.errors import PlanningInputError, check_int, check_positive

__all__ = [
    "JST_UTC_OFFSET_HOURS",
    "ApiCall",
    "ScalingConfig",
    "plan_to_json",
    "policy_arn_ref",
    "removal_plan",
    "scaling_plan",
    "utc_hour",
]

AUTOSCALING = "application-autoscaling"
CLOUDWATCH = "cloudwatch"
NAMESPACE = "sagemaker"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
JST_UTC_OFFSET_HOURS = 9
"""Japan Standard Time is UTC+9 all year (no daylight saving since 1951)."""
_TIMEZONES = {"Asia/Tokyo", "Etc/UTC"}


@dataclass(frozen=True)
class ScalingConfig:
    """One endpoint variant's scaling settings; defaults are the seed's §4.2 values.

    ``schedule_timezone`` ``"Asia/Tokyo"`` (default) writes the schedules as JST crons with the
    ``Timezone`` parameter of ``PutScheduledAction`` (IANA names; UTC when omitted — Application
    Auto Scaling API reference). ``"Etc/UTC"`` writes the seed's UTC crons instead; both fire at
    the same instants because JST has no daylight saving.
    """

    endpoint_name: str = "mangaassist-manga"
    variant_name: str = "AllTraffic"
    region: str = "ap-northeast-1"
    min_instances: int = 1
    max_instances: int = 8
    target_invocations_per_instance: float = 10.0
    scale_out_cooldown_s: int = 60
    scale_in_cooldown_s: int = 300
    latency_threshold_us: int = 2_000_000
    step_small_band_us: int = 500_000
    step_small_adjustment: int = 1
    step_large_adjustment: int = 2
    step_cooldown_s: int = 120
    alarm_period_s: int = 60
    alarm_evaluation_periods: int = 2
    peak_min_instances: int = 3
    peak_start_hour_jst: int = 18
    off_peak_start_hour_jst: int = 0
    schedule_timezone: str = "Asia/Tokyo"

    def __post_init__(self) -> None:
        for name in ("endpoint_name", "variant_name", "region"):
            if not getattr(self, name):
                raise PlanningInputError(name, "must not be empty")
        for name in (
            "min_instances",
            "max_instances",
            "scale_out_cooldown_s",
            "scale_in_cooldown_s",
            "latency_threshold_us",
            "step_small_band_us",
            "step_small_adjustment",
            "step_large_adjustment",
            "step_cooldown_s",
            "alarm_period_s",
            "alarm_evaluation_periods",
            "peak_min_instances",
            "peak_start_hour_jst",
            "off_peak_start_hour_jst",
        ):
            check_int(name, getattr(self, name))
        self._check_ranges()

    def _check_ranges(self) -> None:
        check_positive("min_instances", self.min_instances)
        if self.max_instances < self.min_instances:
            raise PlanningInputError(
                "max_instances", f"must be ≥ min_instances ({self.min_instances})"
            )
        if not self.min_instances <= self.peak_min_instances <= self.max_instances:
            raise PlanningInputError(
                "peak_min_instances",
                f"must lie within [min_instances, max_instances] = "
                f"[{self.min_instances}, {self.max_instances}], got {self.peak_min_instances}",
            )
        if self.off_peak_max_instances < self.min_instances:
            raise PlanningInputError(
                "min_instances",
                f"off-peak max = max(max_instances // 2, 2) = {self.off_peak_max_instances} "
                f"is below min_instances {self.min_instances}",
            )
        check_positive("target_invocations_per_instance", self.target_invocations_per_instance)
        for name in ("latency_threshold_us", "step_small_band_us", "alarm_period_s"):
            check_positive(name, getattr(self, name))
        check_positive("alarm_evaluation_periods", self.alarm_evaluation_periods)
        for name in ("peak_start_hour_jst", "off_peak_start_hour_jst"):
            if not 0 <= getattr(self, name) <= 23:
                raise PlanningInputError(name, f"must be an hour 0-23, got {getattr(self, name)}")
        if self.schedule_timezone not in _TIMEZONES:
            raise PlanningInputError(
                "schedule_timezone",
                f"must be one of {sorted(_TIMEZONES)}, got {self.schedule_timezone!r}",
            )

    @property
    def resource_id(self) -> str:
        """Application Auto Scaling resource id of a SageMaker variant."""
        return f"endpoint/{self.endpoint_name}/variant/{self.variant_name}"

    @property
    def off_peak_max_instances(self) -> int:
        """Seed §4.2: the off-peak action lowers MaxCapacity to max(max // 2, 2)."""
        return max(self.max_instances // 2, 2)

    def cron(self, hour_jst: int) -> str:
        """Daily cron at ``hour_jst``:00 JST, in the configured time zone."""
        hour = hour_jst if self.schedule_timezone == "Asia/Tokyo" else utc_hour(hour_jst)
        return f"cron(0 {hour} * * ? *)"


@dataclass(frozen=True)
class ApiCall:
    """One AWS API call as data. ``params`` may hold :func:`policy_arn_ref` placeholders.

    ``satisfied_by`` lists alternative parameter subsets that also count as "already applied"
    (the scalable target's range is legitimately moved by the scheduled actions).
    """

    service: str
    operation: str
    params: Mapping[str, Any]
    satisfied_by: tuple[Mapping[str, Any], ...] = field(default=())

    @property
    def name(self) -> str:
        """The name of the thing the call acts on (policy, alarm, action or resource id)."""
        p = self.params
        for key in ("PolicyName", "AlarmName", "ScheduledActionName"):
            if key in p:
                return str(p[key])
        if "AlarmNames" in p:
            return str(p["AlarmNames"][0])
        return str(p.get("ResourceId", self.operation))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as printed by ``--dry-run``."""
        out: dict[str, Any] = {
            "service": self.service,
            "operation": self.operation,
            "params": dict(self.params),
        }
        if self.satisfied_by:
            out["satisfied_by"] = [dict(s) for s in self.satisfied_by]
        return out


def utc_hour(hour_jst: int) -> int:
    """The UTC hour of a JST hour (18 JST → 9 UTC, 0 JST → 15 UTC)."""
    return (hour_jst - JST_UTC_OFFSET_HOURS) % 24


def policy_arn_ref(policy_name: str) -> dict[str, str]:
    """Placeholder for the ARN of a scaling policy the plan creates; resolved when applied."""
    return {"$ref": "PolicyARN", "policy": policy_name}


def _target(cfg: ScalingConfig) -> dict[str, str]:
    return {
        "ServiceNamespace": NAMESPACE,
        "ResourceId": cfg.resource_id,
        "ScalableDimension": DIMENSION,
    }


def _names(cfg: ScalingConfig) -> dict[str, str]:
    e = cfg.endpoint_name
    return {
        "tracking": f"{e}-target-tracking",
        "step": f"{e}-latency-step",
        "alarm": f"{e}-high-latency",
        "peak": f"{e}-peak-start",
        "off_peak": f"{e}-offpeak-start",
    }


def _register(cfg: ScalingConfig) -> ApiCall:
    peak = {"MinCapacity": cfg.peak_min_instances, "MaxCapacity": cfg.max_instances}
    off = {"MinCapacity": cfg.min_instances, "MaxCapacity": cfg.off_peak_max_instances}
    return ApiCall(
        AUTOSCALING,
        "register_scalable_target",
        {**_target(cfg), "MinCapacity": cfg.min_instances, "MaxCapacity": cfg.max_instances},
        satisfied_by=(peak, off),
    )


def _scaling_policy(
    cfg: ScalingConfig, name: str, policy_type: str, config: dict[str, Any]
) -> ApiCall:
    """``PutScalingPolicy`` of type ``policy_type``; its settings go in the parameter the API
    names after the type (``StepScaling`` → ``StepScalingPolicyConfiguration``)."""
    params = {
        "PolicyName": _names(cfg)[name],
        **_target(cfg),
        "PolicyType": policy_type,
        f"{policy_type}PolicyConfiguration": config,
    }
    return ApiCall(AUTOSCALING, "put_scaling_policy", params)


def _target_tracking(cfg: ScalingConfig) -> ApiCall:
    config = {
        "TargetValue": float(cfg.target_invocations_per_instance),
        "PredefinedMetricSpecification": {
            "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
        },
        "ScaleOutCooldown": cfg.scale_out_cooldown_s,
        "ScaleInCooldown": cfg.scale_in_cooldown_s,
    }
    return _scaling_policy(cfg, "tracking", "TargetTrackingScaling", config)


def _step(cfg: ScalingConfig) -> ApiCall:
    band = cfg.step_small_band_us
    config = {
        "AdjustmentType": "ChangeInCapacity",
        "StepAdjustments": [
            {
                "MetricIntervalLowerBound": 0,
                "MetricIntervalUpperBound": band,
                "ScalingAdjustment": cfg.step_small_adjustment,
            },
            {"MetricIntervalLowerBound": band, "ScalingAdjustment": cfg.step_large_adjustment},
        ],
        "Cooldown": cfg.step_cooldown_s,
    }
    return _scaling_policy(cfg, "step", "StepScaling", config)


def _alarm(cfg: ScalingConfig) -> ApiCall:
    params = {
        "AlarmName": _names(cfg)["alarm"],
        "Namespace": "AWS/SageMaker",
        "MetricName": "ModelLatency",
        "Dimensions": [
            {"Name": "EndpointName", "Value": cfg.endpoint_name},
            {"Name": "VariantName", "Value": cfg.variant_name},
        ],
        "Statistic": "Average",
        "Period": cfg.alarm_period_s,
        "EvaluationPeriods": cfg.alarm_evaluation_periods,
        "Threshold": float(cfg.latency_threshold_us),
        "ComparisonOperator": "GreaterThanThreshold",
        "AlarmActions": [policy_arn_ref(_names(cfg)["step"])],
    }
    return ApiCall(CLOUDWATCH, "put_metric_alarm", params)


def _schedule(cfg: ScalingConfig, name: str, hour_jst: int, low: int, high: int) -> ApiCall:
    params = {
        **_target(cfg),
        "ScheduledActionName": name,
        "Schedule": cfg.cron(hour_jst),
        "Timezone": cfg.schedule_timezone,
        "ScalableTargetAction": {"MinCapacity": low, "MaxCapacity": high},
    }
    return ApiCall(AUTOSCALING, "put_scheduled_action", params)


def scaling_plan(cfg: ScalingConfig) -> tuple[ApiCall, ...]:
    """The calls that set up scaling, in dependency order (the alarm needs the step policy)."""
    names = _names(cfg)
    return (
        _register(cfg),
        _target_tracking(cfg),
        _step(cfg),
        _alarm(cfg),
        _schedule(
            cfg, names["peak"], cfg.peak_start_hour_jst, cfg.peak_min_instances, cfg.max_instances
        ),
        _schedule(
            cfg,
            names["off_peak"],
            cfg.off_peak_start_hour_jst,
            cfg.min_instances,
            cfg.off_peak_max_instances,
        ),
    )


def removal_plan(cfg: ScalingConfig) -> tuple[ApiCall, ...]:
    """The calls that undo :func:`scaling_plan`, dependents first.

    Deregistering a scalable target also deletes its policies and scheduled actions (Application
    Auto Scaling API reference), but not the CloudWatch alarm we created, so each is removed
    explicitly and every step can be skipped when already gone.
    """
    names = _names(cfg)
    target = _target(cfg)
    return (
        ApiCall(CLOUDWATCH, "delete_alarms", {"AlarmNames": [names["alarm"]]}),
        ApiCall(
            AUTOSCALING, "delete_scheduled_action", {**target, "ScheduledActionName": names["peak"]}
        ),
        ApiCall(
            AUTOSCALING,
            "delete_scheduled_action",
            {**target, "ScheduledActionName": names["off_peak"]},
        ),
        ApiCall(AUTOSCALING, "delete_scaling_policy", {**target, "PolicyName": names["step"]}),
        ApiCall(AUTOSCALING, "delete_scaling_policy", {**target, "PolicyName": names["tracking"]}),
        ApiCall(AUTOSCALING, "deregister_scalable_target", dict(target)),
    )


def plan_to_json(plan: tuple[ApiCall, ...]) -> str:
    """The plan as indented JSON (``--dry-run``)."""
    return json.dumps([call.to_dict() for call in plan], indent=2, ensure_ascii=False)
