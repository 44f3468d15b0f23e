"""The auto-scaling plan as data: every parameter of every call, without AWS."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mangaroute.planning import (
    PlanningInputError,
    ScalingConfig,
    plan_to_json,
    removal_plan,
    scaling_plan,
)
from mangaroute.planning.autoscaling import utc_hour

RID = "endpoint/mangaassist-manga/variant/AllTraffic"
TARGET = {
    "ServiceNamespace": "sagemaker",
    "ResourceId": RID,
    "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
}


def test_plan_calls_in_dependency_order() -> None:
    plan = scaling_plan(ScalingConfig())
    assert [(c.service, c.operation) for c in plan] == [
        ("application-autoscaling", "register_scalable_target"),
        ("application-autoscaling", "put_scaling_policy"),
        ("application-autoscaling", "put_scaling_policy"),
        ("cloudwatch", "put_metric_alarm"),
        ("application-autoscaling", "put_scheduled_action"),
        ("application-autoscaling", "put_scheduled_action"),
    ]


def test_register_and_target_tracking() -> None:
    register, tracking, *_ = scaling_plan(ScalingConfig())
    assert register.params == {**TARGET, "MinCapacity": 1, "MaxCapacity": 8}
    assert tracking.params == {
        **TARGET,
        "PolicyName": "mangaassist-manga-target-tracking",
        "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": 10.0,
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
            },
            "ScaleOutCooldown": 60,
            "ScaleInCooldown": 300,
        },
    }


def test_step_policy_and_its_alarm_use_microseconds() -> None:
    _, _, step, alarm, *_ = scaling_plan(ScalingConfig())
    assert step.params["StepScalingPolicyConfiguration"] == {
        "AdjustmentType": "ChangeInCapacity",
        "StepAdjustments": [
            # 0-500 ms over the 2 s threshold: bounds in the alarm metric's unit, µs
            {
                "MetricIntervalLowerBound": 0,
                "MetricIntervalUpperBound": 500_000,
                "ScalingAdjustment": 1,
            },
            {"MetricIntervalLowerBound": 500_000, "ScalingAdjustment": 2},
        ],
        "Cooldown": 120,
    }
    assert alarm.params == {
        "AlarmName": "mangaassist-manga-high-latency",
        "Namespace": "AWS/SageMaker",
        "MetricName": "ModelLatency",
        "Dimensions": [
            {"Name": "EndpointName", "Value": "mangaassist-manga"},
            {"Name": "VariantName", "Value": "AllTraffic"},
        ],
        "Statistic": "Average",
        "Period": 60,
        "EvaluationPeriods": 2,
        "Threshold": 2_000_000.0,
        "ComparisonOperator": "GreaterThanThreshold",
        "AlarmActions": [{"$ref": "PolicyARN", "policy": "mangaassist-manga-latency-step"}],
    }


def test_schedules_in_jst_by_default() -> None:
    *_, peak, off = scaling_plan(ScalingConfig())
    assert peak.params == {
        **TARGET,
        "ScheduledActionName": "mangaassist-manga-peak-start",
        "Schedule": "cron(0 18 * * ? *)",
        "Timezone": "Asia/Tokyo",
        "ScalableTargetAction": {"MinCapacity": 3, "MaxCapacity": 8},
    }
    assert off.params["Schedule"] == "cron(0 0 * * ? *)"
    assert off.params["ScalableTargetAction"] == {
        "MinCapacity": 1,
        "MaxCapacity": 4,
    }  # max(8 // 2, 2)


def test_utc_schedules_are_the_seeds_crons() -> None:
    *_, peak, off = scaling_plan(ScalingConfig(schedule_timezone="Etc/UTC"))
    assert (peak.params["Schedule"], peak.params["Timezone"]) == ("cron(0 9 * * ? *)", "Etc/UTC")
    assert off.params["Schedule"] == "cron(0 15 * * ? *)"


@pytest.mark.parametrize("month", [1, 7])
@pytest.mark.parametrize("hour", range(24))
def test_jst_to_utc_matches_the_tz_database(month: int, hour: int) -> None:
    local = datetime(2026, month, 15, hour, tzinfo=ZoneInfo("Asia/Tokyo"))
    assert local.astimezone(UTC).hour == utc_hour(hour)


def test_off_peak_max_follows_the_seed_formula() -> None:
    assert ScalingConfig(max_instances=3).off_peak_max_instances == 2
    assert ScalingConfig(max_instances=13, peak_min_instances=6).off_peak_max_instances == 6


def test_removal_plan_deletes_dependents_first() -> None:
    plan = removal_plan(ScalingConfig())
    assert [(c.operation, c.name) for c in plan] == [
        ("delete_alarms", "mangaassist-manga-high-latency"),
        ("delete_scheduled_action", "mangaassist-manga-peak-start"),
        ("delete_scheduled_action", "mangaassist-manga-offpeak-start"),
        ("delete_scaling_policy", "mangaassist-manga-latency-step"),
        ("delete_scaling_policy", "mangaassist-manga-target-tracking"),
        ("deregister_scalable_target", RID),
    ]


def test_plan_json_is_the_data() -> None:
    plan = scaling_plan(ScalingConfig())
    doc = json.loads(plan_to_json(plan))
    assert [d["operation"] for d in doc] == [c.operation for c in plan]
    assert doc[0]["satisfied_by"] == [
        {"MinCapacity": 3, "MaxCapacity": 8},
        {"MinCapacity": 1, "MaxCapacity": 4},
    ]
    assert doc[3]["params"]["AlarmActions"] == [
        {"$ref": "PolicyARN", "policy": "mangaassist-manga-latency-step"}
    ]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"min_instances": 0}, "min_instances"),
        ({"min_instances": 4, "max_instances": 3, "peak_min_instances": 3}, "max_instances"),
        ({"max_instances": 2}, "peak_min_instances"),
        ({"min_instances": 5, "peak_min_instances": 5}, "min_instances"),
        ({"schedule_timezone": "JST"}, "schedule_timezone"),
        ({"peak_start_hour_jst": 24}, "peak_start_hour_jst"),
        ({"endpoint_name": ""}, "endpoint_name"),
        ({"max_instances": 8.0}, "max_instances"),
    ],
)
def test_invalid_configs_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(PlanningInputError) as info:
        ScalingConfig(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


@given(
    st.integers(1, 10),
    st.integers(0, 20),
    st.integers(1, 30),
    st.sampled_from(["Asia/Tokyo", "Etc/UTC"]),
)
def test_any_valid_config_gives_consistent_actions(
    low: int, extra: int, peak: int, tz: str
) -> None:
    try:
        cfg = ScalingConfig(
            min_instances=low,
            max_instances=low + extra,
            peak_min_instances=peak,
            schedule_timezone=tz,
        )
    except PlanningInputError:
        return
    for call in scaling_plan(cfg):
        action = call.params.get("ScalableTargetAction")
        if action:
            assert 1 <= action["MinCapacity"] <= action["MaxCapacity"]
            assert action["MinCapacity"] >= cfg.min_instances
