"""Text tables and JSON documents for the ``plan`` sub-commands.

Tables round for reading; JSON carries the unrounded numbers, so scripts (and the docs test)
can round as they quote.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from mangaroute._text import text_table
from mangaroute.planning.autoscaling import ApiCall
from mangaroute.planning.recommend import Recommendation
from mangaroute.planning.tco import TcoResult
from mangaroute.planning.traffic import CapacityPlan

if TYPE_CHECKING:  # the applier imports botocore; rendering must not
    from mangaroute.planning.applier import CallOutcome, ScalingStatus

__all__ = [
    "capacity_json",
    "capacity_text",
    "outcomes_text",
    "plan_text",
    "recommendation_json",
    "recommendation_text",
    "status_text",
    "table",
    "tco_json",
    "tco_text",
]


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> str:
    """Aligned columns (:func:`mangaroute._text.text_table`); ``right`` lists right-aligned
    column indexes."""
    return text_table(headers, rows, right)


def _usd(x: float) -> str:
    return f"${x:,.2f}"


def capacity_json(plan: CapacityPlan) -> dict[str, Any]:
    """``plan throughput --json``."""
    return {**asdict(plan), "seed_pattern": plan.seed_pattern}


def capacity_text(plan: CapacityPlan) -> str:
    """``plan throughput``."""
    t, load = plan.traffic, plan.load
    lam, prov, sm = plan.lambda_on_demand, plan.bedrock_provisioned, plan.sagemaker_realtime
    head = (
        f"Traffic: {t.daily_messages:,} messages/day, peak x{t.peak_multiplier:g} for "
        f"{t.peak_hours} h, burst x{t.burst_factor:g}, {t.avg_input_tokens} in / "
        f"{t.avg_output_tokens} out tokens"
    )
    load_rows = [
        ["average", f"{load.avg_rps:,.2f}", "req/s"],
        ["peak", f"{load.peak_rps:,.2f}", "req/s"],
        ["burst", f"{load.burst_rps:,.2f}", "req/s"],
        ["peak tokens", f"{load.peak_tokens_per_minute:,}", "tokens/min"],
        ["peak-hour tokens", f"{load.peak_hour_tokens:,}", "tokens/h"],
        ["peak window share", f"{load.peak_window_share:.1%}", "of daily messages"],
    ]
    sizing_rows = [
        [
            "lambda_on_demand",
            "yes" if lam.fits else "no",
            f"reserved concurrency {lam.reserved_concurrency}, provisioned concurrency "
            f"{lam.provisioned_concurrency}, {lam.memory_mb} MB, timeout {lam.timeout_s} s",
        ],
        [
            "bedrock_provisioned",
            "yes" if prov.within_seed_threshold else "no",
            f"{prov.sonnet_mus} Sonnet MUs ({_usd(prov.sonnet_hourly_usd)}/h) or "
            f"{prov.haiku_mus} Haiku MUs ({_usd(prov.haiku_hourly_usd)}/h), {prov.commitment}",
        ],
        [
            "sagemaker_realtime",
            "yes",
            f"{sm.instance_type} x {sm.min_instances}-{sm.max_instances}, target "
            f"{sm.target_rps_per_instance:g} req/s per instance "
            f"({sm.target_invocations_per_minute:g} invocations/min)",
        ],
    ]
    option_rows = [
        [
            o.instance_type,
            f"{o.instance_rps:g}",
            str(o.min_instances),
            str(o.max_instances),
            f"{o.target_invocations_per_minute:g}",
        ]
        for o in plan.sagemaker_options
    ]
    check_rows = [
        [f"{i}.", c.pattern, "pass" if c.passed else "fail", c.detail]
        for i, c in enumerate(plan.seed_checks, start=1)
    ]
    return "\n\n".join(
        [
            head,
            "Load\n" + table(["rate", "value", "unit"], load_rows, right=[1]),
            "Sizing per pattern (fits: Lambda burst limit / seed's MU threshold)\n"
            + table(["pattern", "fits", "sizing"], sizing_rows),
            "SageMaker instance options\n"
            + table(
                ["instance type", "req/s", "min", "max", "invocations/min"],
                option_rows,
                right=[1, 2, 3, 4],
            ),
            "Seed §2.2 decision rule, in order (the first pass wins)\n"
            + table(["#", "pattern", "check", "detail"], check_rows)
            + f"\n-> the seed's rule picks {plan.seed_pattern}",
        ]
    )


def recommendation_json(rec: Recommendation) -> dict[str, Any]:
    """``plan recommend --json``."""
    return asdict(rec)


def recommendation_text(rec: Recommendation) -> str:
    """``plan recommend``."""
    req, w = rec.requirement, rec.weights
    head = (
        f"Requirement: p99 <= {req.max_p99_ms:,.0f} ms, >= {req.min_throughput_rps:,.2f} req/s, "
        f"budget {_usd(req.max_monthly_cost_usd)}/month, custom model: "
        f"{'yes' if req.needs_custom_model else 'no'}\n"
        f"Latency score: {rec.latency_scoring}; weights latency {w.latency:g}, throughput "
        f"{w.throughput:g}, cost {w.cost:g}, operations {w.ops:g}"
    )
    rows = [
        [
            str(i),
            s.pattern,
            f"{s.total:.1f}",
            f"{s.latency_score:.1f}",
            f"{s.throughput_score:.1f}",
            f"{s.cost_score:.1f}",
            f"{s.ops_score:.1f}",
            f"{s.effective_p99_ms:,.0f}",
            "yes" if s.meets_latency else "no",
            _usd(s.estimated_monthly_usd),
            s.latency_source,
        ]
        for i, s in enumerate(rec.ranked, start=1)
    ]
    headers = [
        "rank",
        "pattern",
        "total",
        "latency",
        "throughput",
        "cost",
        "ops",
        "p99 ms",
        "meets p99",
        "est. $/month",
        "latency from",
    ]
    parts = [head, "Ranking\n" + table(headers, rows, right=[2, 3, 4, 5, 6, 7, 9])]
    if rec.dropped:
        parts.append(
            "Dropped\n" + table(["pattern", "reason"], [[d.pattern, d.reason] for d in rec.dropped])
        )
    return "\n\n".join(parts)


def tco_json(results: Sequence[TcoResult]) -> list[dict[str, Any]]:
    """``plan tco --json``."""
    return [
        {**asdict(r), "breakdown": dict(r.breakdown), "quantities": dict(r.quantities)}
        for r in results
    ]


def tco_text(results: Sequence[TcoResult], monthly_messages: int) -> str:
    """``plan tco``."""
    rows = [
        [
            r.pattern,
            _usd(r.compute_usd),
            _usd(r.token_usd),
            _usd(r.ops_usd),
            _usd(r.total_usd),
            f"${r.cost_per_message_usd:.6f}",
        ]
        for r in results
    ]
    details = [
        *([r.pattern, k, _usd(v)] for r in results for k, v in r.breakdown),
        *([r.pattern, k, f"{v:,.0f}"] for r in results for k, v in r.quantities),
    ]
    return "\n\n".join(
        [
            f"Total cost of ownership per month ({monthly_messages:,} messages), cheapest first",
            table(
                ["pattern", "compute", "tokens", "operations", "total", "per message"],
                rows,
                right=[1, 2, 3, 4, 5],
            ),
            "Breakdown (USD per month, then counts)\n"
            + table(["pattern", "item", "value"], details, right=[2]),
        ]
    )


def _summary(call: ApiCall) -> str:
    p = call.params
    if call.operation == "register_scalable_target":
        return f"min {p['MinCapacity']}, max {p['MaxCapacity']}"
    if call.operation == "put_scaling_policy" and p["PolicyType"] == "TargetTrackingScaling":
        c = p["TargetTrackingScalingPolicyConfiguration"]
        metric = c["PredefinedMetricSpecification"]["PredefinedMetricType"]
        return (
            f"{metric} target {c['TargetValue']:g}/min, scale-out cooldown "
            f"{c['ScaleOutCooldown']} s, scale-in {c['ScaleInCooldown']} s"
        )
    if call.operation == "put_scaling_policy":
        c = p["StepScalingPolicyConfiguration"]
        small, large = c["StepAdjustments"]
        return (
            f"+{small['ScalingAdjustment']} for 0-{small['MetricIntervalUpperBound']:,} us over "
            f"the alarm, +{large['ScalingAdjustment']} above, cooldown {c['Cooldown']} s"
        )
    if call.operation == "put_metric_alarm":
        return (
            f"{p['MetricName']} {p['Statistic']} > {p['Threshold']:,.0f} us for "
            f"{p['EvaluationPeriods']} x {p['Period']} s -> step policy"
        )
    if call.operation == "put_scheduled_action":
        a = p["ScalableTargetAction"]
        return f"{p['Schedule']} {p['Timezone']}: min {a['MinCapacity']}, max {a['MaxCapacity']}"
    return ""


def plan_text(plan: Sequence[ApiCall]) -> str:
    """``plan autoscaling`` without ``--apply``: what would be called."""
    rows = [
        [str(i), c.service, c.operation, c.name, _summary(c)] for i, c in enumerate(plan, start=1)
    ]
    return table(["#", "service", "operation", "name", "settings"], rows, right=[0])


def outcomes_text(outcomes: Sequence[CallOutcome]) -> str:
    """``plan autoscaling --apply``: what each call did."""
    return table(
        ["operation", "name", "result"], [[o.operation, o.name, o.action] for o in outcomes]
    )


def status_text(status: ScalingStatus) -> str:
    """``plan autoscaling --status``."""
    capacity = (
        f"min {status.min_capacity}, max {status.max_capacity}"
        if status.registered
        else "not registered"
    )
    rows = [
        ["scalable target", f"{status.resource_id} ({capacity})"],
        ["scaling policies", ", ".join(status.policies) or "none"],
        ["scheduled actions", ", ".join(status.scheduled_actions) or "none"],
        ["alarms", ", ".join(status.alarms) or "none"],
    ]
    if status.activities is None:
        rows.append(["recent activities", status.activities_error or "unavailable"])
    else:
        text = "; ".join(f"{a['status']} {a['cause']}" for a in status.activities)
        rows.append(["recent activities", text or "none"])
    return table(["", ""], rows)
