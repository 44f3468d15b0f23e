"""The side-by-side report: one row per policy, the oracle last, as text or JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mangaroute.simulate.engine import (
    BUCKET_S,
    BUCKETS,
    LATENCY_BIN_MS,
    LATENCY_BINS,
    RunResult,
)
from mangaroute.simulate.run import Simulation
from mangaroute.simulate.traffic import class_counts


def to_dict(simulation: Simulation) -> dict[str, Any]:
    """Everything a machine needs (``mangaroute simulate --json``)."""
    scenario = simulation.scenario
    traffic = simulation.traffic
    oracle = simulation.oracle
    budget = scenario.budget
    counts = class_counts(traffic)
    per_minute = [0] * 1440
    for t in traffic.time_ns:
        per_minute[min(1439, t // 60_000_000_000)] += 1
    return {
        "scenario": {
            "name": scenario.name,
            "description": scenario.description,
            "source": scenario.source,
            "config": scenario.config_source,
            "seed": simulation.seed,
            "faults": list(scenario.fault_names),
            "refresh_ms": scenario.refresh_ms,
            "scale": round(simulation.scale, 6),
            "budget": {
                "deadline_ms": budget.deadline_ms,
                "inference_ms": budget.inference_ms,
                "pre_ms": budget.pre_ms,
                "post_ms": budget.post_ms,
                "inference_cutoff_ms": budget.cutoff_ms,
            },
        },
        "traffic": {
            "messages": len(traffic),
            "flash_sale_messages": traffic.flash_messages,
            "classes": {name: count for name, count in counts.items()},
            "average_per_s": round(len(traffic) / 86_400, 3),
            "peak_minute_per_s": round(max(per_minute) / 60, 3),
        },
        "policies": [_result(r, oracle) for r in simulation.results],
        "oracle": _result(oracle, None) if oracle else None,
        "run": {
            "wall_s": round(simulation.wall_s, 3),
            "generate_s": round(simulation.generate_s, 3),
            "processes": simulation.jobs,
            "per_policy": {
                r.name: {"wall_s": round(r.wall_s, 3), "cpu_s": round(r.cpu_s, 3)}
                for r in _all(simulation)
            },
        },
    }


def _all(simulation: Simulation) -> list[RunResult]:
    return simulation.results + ([simulation.oracle] if simulation.oracle else [])


def _result(result: RunResult, oracle: RunResult | None) -> dict[str, Any]:
    messages = max(1, result.messages)
    per_1k = result.total_usd / messages * 1000
    targets = {}
    n = len(result.target_names)
    for index, (name, usage) in enumerate(result.usage.items()):
        answered = sum(result.timeline_targets[b * n + index] for b in range(BUCKETS))
        targets[name] = {
            "answered": answered,
            "share": round(answered / max(1, result.answered), 6),
            "attempts": usage.attempts,
            "throttled": usage.throttled,
            "errors": usage.errors,
            "timeouts": usage.timeouts,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "token_usd": round(usage.token_usd, 4),
            "fixed_usd": round(usage.fixed_usd, 4),
            "total_usd": round(usage.token_usd + usage.fixed_usd, 4),
            "usd_per_1k_messages": round((usage.token_usd + usage.fixed_usd) / messages * 1000, 6),
            "peak_instances": usage.max_instances,
        }
    data: dict[str, Any] = {
        "name": result.name,
        "description": result.description,
        "messages": result.messages,
        "within_deadline": result.within_deadline,
        "within_deadline_share": round(result.within_deadline / messages, 6),
        "within_inference_slo_share": round(result.within_slo / messages, 6),
        "answered": result.answered,
        "failed": result.failed,
        "failed_by_class": dict(zip(result.classes, result.failed_by_class, strict=True)),
        "latency_ms": {
            "p50": result.percentile_ms(0.50),
            "p90": result.percentile_ms(0.90),
            "p99": result.percentile_ms(0.99),
        },
        "failovers": result.failovers,
        "fallback_attempts": result.fallback_attempts,
        "attempt_outcomes": dict(
            zip(("ok", "throttled", "error", "timeout"), result.outcomes, strict=True)
        ),
        "primary_switches": result.switches,
        "breaker_openings": result.breaker_opens,
        "events": result.switch_log,
        "cost": {
            "usd_per_day": round(result.total_usd, 2),
            "usd_per_1k_messages": round(per_1k, 4),
            "fixed_usd": round(result.fixed_usd, 2),
            "token_usd": round(result.token_usd, 2),
            "by_target": targets,
        },
        "answers_by_class": {
            klass: {
                target: result.answers_by_class[k * n + j]
                for j, target in enumerate(result.target_names)
            }
            for k, klass in enumerate(result.classes)
        },
        "reasons": dict(result.reasons.most_common()),
        "timeline": _timeline(result),
        "wall_s": round(result.wall_s, 3),
    }
    if oracle is not None and oracle.total_usd > 0:
        data["vs_oracle"] = {
            "cost_ratio": round(result.total_usd / oracle.total_usd, 6),
            "within_deadline_points": round(
                100 * (result.within_deadline - oracle.within_deadline) / messages, 4
            ),
        }
    return data


def _timeline(result: RunResult) -> list[dict[str, Any]]:
    """Per quarter hour: messages, failures, token spend, answers per target, p50/p99."""
    n = len(result.target_names)
    rows = []
    for bucket in range(BUCKETS):
        bins = result.timeline_latency[bucket * LATENCY_BINS : (bucket + 1) * LATENCY_BINS]
        rows.append(
            {
                "start": f"{bucket * BUCKET_S // 3600:02d}:{bucket * BUCKET_S % 3600 // 60:02d}",
                "messages": result.timeline_messages[bucket],
                "failed": result.timeline_failed[bucket],
                "token_usd": round(result.timeline_usd[bucket], 4),
                "answers": {
                    name: result.timeline_targets[bucket * n + j]
                    for j, name in enumerate(result.target_names)
                },
                "p50_ms": bin_percentile(bins, 0.50, LATENCY_BIN_MS),
                "p99_ms": bin_percentile(bins, 0.99, LATENCY_BIN_MS),
            }
        )
    return rows


def bin_percentile(bins: Sequence[int], q: float, width: int) -> float | None:
    total = sum(bins)
    if not total:
        return None
    rank = max(1, round(q * total + 0.4999999))
    seen = 0
    for index, count in enumerate(bins):
        seen += count
        if seen >= rank:
            return float((index + 1) * width)
    return float(len(bins) * width)


# -- text ----------------------------------------------------------------------------------


def to_text(simulation: Simulation) -> str:
    """The side-by-side tables (``mangaroute simulate``'s text output)."""
    return dict_to_text(to_dict(simulation))


def dict_to_text(data: dict[str, Any]) -> str:
    """:func:`to_text` from :func:`to_dict`'s output (for example a saved ``--json`` run)."""
    scenario, traffic, run = data["scenario"], data["traffic"], data["run"]
    budget = scenario["budget"]
    classes = ", ".join(
        f"{name} {count / max(1, traffic['messages']):.1%}"
        for name, count in traffic["classes"].items()
    )
    lines = [
        f"scenario {scenario['name']} (seed {scenario['seed']}): {scenario['description']}",
        f"traffic: {traffic['messages']:,} messages"
        + (
            f" ({traffic['flash_sale_messages']:,} from flash sales)"
            if traffic["flash_sale_messages"]
            else ""
        )
        + f", {traffic['average_per_s']:.1f}/s on average, {traffic['peak_minute_per_s']:.1f}/s in "
        f"the busiest minute; {classes}",
        f"faults: {', '.join(scenario['faults']) or 'none'}",
        f"budget: {budget['deadline_ms']:,.0f} ms end to end = {budget['pre_ms']:,.0f} ms before "
        f"+ inference + {budget['post_ms']:,.0f} ms after; the seed allots "
        f"{budget['inference_ms']:,.0f} ms to inference (the SLO); the router is told the "
        f"{budget['inference_cutoff_ms']:,.0f} ms actually left, the orchestrator gives up then",
    ]
    if scenario["scale"] != 1:
        lines.append(
            f"scale model: capacity and hourly prices x {scenario['scale']:g} "
            "(compare $/1k messages)"
        )
    lines.append("")
    rows = []
    oracle = data["oracle"]
    for entry in [*data["policies"], *([oracle] if oracle else [])]:
        latency = entry["latency_ms"]
        cost = entry["cost"]
        versus = entry.get("vs_oracle")
        rows.append(
            [
                entry["name"],
                f"{entry['within_deadline_share']:.3%}",
                f"{entry['within_inference_slo_share']:.2%}",
                entry["failed"],
                _ms(latency["p50"]),
                _ms(latency["p90"]),
                _ms(latency["p99"]),
                entry["failovers"],
                entry["primary_switches"],
                entry["breaker_openings"],
                f"{cost['usd_per_day']:,.0f}",
                f"{cost['usd_per_1k_messages']:.3f}",
                f"{versus['cost_ratio'] - 1:+.1%}" if versus else "",
            ]
        )
    headers = [
        "policy",
        "within 3 s" if budget["deadline_ms"] == 3000 else "within deadline",
        f"inference <= {budget['inference_ms'] / 1000:g} s",
        "failed",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "failovers",
        "switches",
        "ejections",
        "$/day",
        "$/1k msgs",
    ]
    if oracle is None:
        rows = [row[:-1] for row in rows]
    else:
        headers.append("cost vs oracle")
    lines.append(table(rows, headers))
    lines.append("")
    names = list(data["policies"][0]["cost"]["by_target"]) if data["policies"] else []
    cost_rows = []
    for entry in [*data["policies"], *([oracle] if oracle else [])]:
        by_target = entry["cost"]["by_target"]
        cost_rows.append(
            [entry["name"]]
            + [f"{by_target[n]['total_usd']:,.0f} ({by_target[n]['share']:.0%})" for n in names]
            + [f"{entry['cost']['fixed_usd']:,.0f}", f"{entry['cost']['token_usd']:,.0f}"]
        )
    lines.append("cost per day by target, $ (share of answers):")
    lines.append(table(cost_rows, ["policy", *names, "hourly", "tokens"]))
    lines.append("")
    lines.append(
        f"{len(data['policies'])} policies"
        + (" + oracle" if oracle else "")
        + f" in {run['wall_s']:.1f} s on {run['processes']} process"
        + ("es" if run["processes"] > 1 else "")
        + f" (day generated in {run['generate_s']:.1f} s)"
    )
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """Aligned columns; all but the first right-aligned."""
    cells = [[str(h) for h in headers], *[[str(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    out = []
    for index, row in enumerate(cells):
        parts = [
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)
        ]
        out.append("  ".join(parts).rstrip())
        if index == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)
