"""Execute an auto-scaling plan with injected boto3 clients — idempotently.

Every call is preceded by a describe of the state it would change; when that state already
matches the call's parameters the call is skipped, so re-running a plan changes nothing. A
removal plan skips what is already gone. Clients are passed in (a mapping from service name
to a boto3 client), so tests point them at a moto server and production at AWS.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from mangaroute.planning.autoscaling import (
    AUTOSCALING,
    CLOUDWATCH,
    DIMENSION,
    NAMESPACE,
    ApiCall,
    ScalingConfig,
    scaling_plan,
)

__all__ = ["CallOutcome", "ScalingStatus", "apply_plan", "scaling_status", "state_matches"]

Clients = Mapping[str, Any]
"""Service name (``application-autoscaling``, ``cloudwatch``) → boto3 client."""


@dataclass(frozen=True)
class CallOutcome:
    """What happened to one planned call: ``applied``, ``unchanged``, ``deleted`` or ``absent``."""

    operation: str
    name: str
    action: str


@dataclass(frozen=True)
class ScalingStatus:
    """Current scaling state of a variant, as far as the APIs report it."""

    resource_id: str
    registered: bool
    min_capacity: int | None
    max_capacity: int | None
    policies: tuple[str, ...]
    scheduled_actions: tuple[str, ...]
    alarms: tuple[str, ...]
    activities: tuple[Mapping[str, str], ...] | None
    activities_error: str | None


def state_matches(desired: Any, actual: Any) -> bool:
    """True when every key/value of ``desired`` is present and equal in ``actual``.

    Numbers compare by value (AWS returns ``2000000.0`` for ``2000000``); lists must have the
    same length and each desired element must match a distinct actual element, in any order.
    """
    if isinstance(desired, Mapping):
        return isinstance(actual, Mapping) and all(
            k in actual and state_matches(v, actual[k]) for k, v in desired.items()
        )
    if isinstance(desired, list | tuple):
        return isinstance(actual, list | tuple) and _lists_match(list(desired), list(actual))
    if isinstance(desired, bool) or isinstance(actual, bool):
        return desired is actual
    if isinstance(desired, int | float) and isinstance(actual, int | float):
        return math.isclose(desired, actual, rel_tol=1e-12, abs_tol=1e-12)
    return bool(desired == actual)


def _lists_match(desired: list[Any], actual: list[Any]) -> bool:
    if len(desired) != len(actual):
        return False
    remaining = list(actual)
    for item in desired:
        hit = next((i for i, a in enumerate(remaining) if state_matches(item, a)), None)
        if hit is None:
            return False
        remaining.pop(hit)
    return True


def _find_target(clients: Clients, p: Mapping[str, Any]) -> dict[str, Any] | None:
    found = clients[AUTOSCALING].describe_scalable_targets(
        ServiceNamespace=p["ServiceNamespace"],
        ResourceIds=[p["ResourceId"]],
        ScalableDimension=p["ScalableDimension"],
    )["ScalableTargets"]
    return next((t for t in found if t["ResourceId"] == p["ResourceId"]), None)


def _find_policy(clients: Clients, p: Mapping[str, Any]) -> dict[str, Any] | None:
    # moto ignores PolicyNames and matches ResourceId by substring, so filter exactly here.
    found = clients[AUTOSCALING].describe_scaling_policies(
        ServiceNamespace=p["ServiceNamespace"],
        ResourceId=p["ResourceId"],
        ScalableDimension=p["ScalableDimension"],
        PolicyNames=[p["PolicyName"]],
    )["ScalingPolicies"]
    return next(
        (
            x
            for x in found
            if x["PolicyName"] == p["PolicyName"] and x["ResourceId"] == p["ResourceId"]
        ),
        None,
    )


def _find_alarm(clients: Clients, name: str) -> dict[str, Any] | None:
    found = clients[CLOUDWATCH].describe_alarms(AlarmNames=[name])["MetricAlarms"]
    return next((a for a in found if a["AlarmName"] == name), None)


def _find_schedule(clients: Clients, p: Mapping[str, Any]) -> dict[str, Any] | None:
    found = clients[AUTOSCALING].describe_scheduled_actions(
        ServiceNamespace=p["ServiceNamespace"],
        ScheduledActionNames=[p["ScheduledActionName"]],
        ResourceId=p["ResourceId"],
        ScalableDimension=p["ScalableDimension"],
    )["ScheduledActions"]
    return next(
        (
            a
            for a in found
            if a["ScheduledActionName"] == p["ScheduledActionName"]
            and a["ResourceId"] == p["ResourceId"]
        ),
        None,
    )


_FINDERS: dict[str, Callable[[Clients, Mapping[str, Any]], dict[str, Any] | None]] = {
    "register_scalable_target": _find_target,
    "deregister_scalable_target": _find_target,
    "put_scaling_policy": _find_policy,
    "delete_scaling_policy": _find_policy,
    "put_metric_alarm": lambda c, p: _find_alarm(c, p["AlarmName"]),
    "delete_alarms": lambda c, p: _find_alarm(c, p["AlarmNames"][0]),
    "put_scheduled_action": _find_schedule,
    "delete_scheduled_action": _find_schedule,
}


def _resolve(value: Any, arns: Mapping[str, str]) -> Any:
    if isinstance(value, Mapping):
        if value.get("$ref") == "PolicyARN":
            policy = value["policy"]
            if policy not in arns:
                raise LookupError(f"plan refers to policy {policy!r} before creating it")
            return arns[policy]
        return {k: _resolve(v, arns) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_resolve(v, arns) for v in value]
    return value


def _is_removal(operation: str) -> bool:
    return operation.startswith(("delete_", "deregister_"))


def _apply_one(call: ApiCall, clients: Clients, arns: dict[str, str]) -> CallOutcome:
    params = _resolve(call.params, arns)
    current = _FINDERS[call.operation](clients, params)
    name = call.name
    if _is_removal(call.operation):
        if current is None:
            return CallOutcome(call.operation, name, "absent")
        getattr(clients[call.service], call.operation)(**params)
        return CallOutcome(call.operation, name, "deleted")
    wanted = (params, *({**params, **alt} for alt in call.satisfied_by))
    if current is not None and any(state_matches(w, current) for w in wanted):
        if "PolicyARN" in current:
            arns[name] = current["PolicyARN"]
        return CallOutcome(call.operation, name, "unchanged")
    response = getattr(clients[call.service], call.operation)(**params)
    if "PolicyARN" in response:
        arns[name] = response["PolicyARN"]
    return CallOutcome(call.operation, name, "applied")


def apply_plan(plan: Sequence[ApiCall], clients: Clients) -> tuple[CallOutcome, ...]:
    """Run ``plan`` in order, skipping calls whose target state already holds."""
    arns: dict[str, str] = {}
    return tuple(_apply_one(call, clients, arns) for call in plan)


def _activities(
    clients: Clients, resource_id: str
) -> tuple[tuple[dict[str, str], ...] | None, str | None]:
    try:
        response = clients[AUTOSCALING].describe_scaling_activities(
            ServiceNamespace=NAMESPACE,
            ResourceId=resource_id,
            ScalableDimension=DIMENSION,
            MaxResults=5,
        )
    except ClientError as exc:
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
        code = error.get("Code", "?")
        return None, (
            f"scaling activities unavailable: DescribeScalingActivities failed "
            f"(HTTP {status}, code {code}); the endpoint may not implement this API"
        )
    return (
        tuple(
            {
                "status": str(a.get("StatusCode", "")),
                "cause": str(a.get("Cause", "")),
                "start": str(a.get("StartTime", "")),
                "end": str(a.get("EndTime", "")),
            }
            for a in response.get("ScalingActivities", [])
        ),
        None,
    )


def scaling_status(cfg: ScalingConfig, clients: Clients) -> ScalingStatus:
    """Describe what exists of ``cfg``'s plan; scaling activities degrade to a message."""
    plan = scaling_plan(cfg)
    target = _find_target(clients, plan[0].params)
    present = [(call, _FINDERS[call.operation](clients, call.params)) for call in plan[1:]]
    activities, error = _activities(clients, cfg.resource_id)

    def names(operation: str) -> tuple[str, ...]:
        return tuple(c.name for c, found in present if c.operation == operation and found)

    return ScalingStatus(
        resource_id=cfg.resource_id,
        registered=target is not None,
        min_capacity=None if target is None else int(target["MinCapacity"]),
        max_capacity=None if target is None else int(target["MaxCapacity"]),
        policies=names("put_scaling_policy"),
        scheduled_actions=names("put_scheduled_action"),
        alarms=names("put_metric_alarm"),
        activities=activities,
        activities_error=error,
    )
