"""The side-by-side report: one row per policy, the bound last, as text or JSON.

Every policy is scored against the bound (:mod:`mangaroute.simulate.bound`): its *regret* is
the bound's answers within the SLO (full answer; first token) less its own, and its cost less
the bound's cost at the bound's coverage. Answer regrets are never negative - a policy that
beats the bound is a simulator bug; a cost regret can be, for a policy that answers fewer
messages in time than the bound (it is the cost at *that* coverage)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mangaroute._text import text_table
from mangaroute.simulate.bound import Bound
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
    bound = simulation.bound
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
                "first_token_ms": budget.first_token_ms or budget.inference_ms,
                "streaming": budget.streaming,
            },
        },
        "traffic": {
            "messages": len(traffic),
            "flash_sale_messages": traffic.flash_messages,
            "classes": {name: count for name, count in counts.items()},
            "average_per_s": round(len(traffic) / 86_400, 3),
            "peak_minute_per_s": round(max(per_minute) / 60, 3),
        },
        "policies": [_result(r, bound) for r in simulation.results],
        "bound": bound_dict(bound) if bound else None,
        "run": {
            "replicas": simulation.replicas,
            "shared": simulation.shared,
            "sync_ms": simulation.sync_ms,
            "wall_s": round(simulation.wall_s, 3),
            "generate_s": round(simulation.generate_s, 3),
            "processes": simulation.jobs,
            "per_policy": {
                label(r): {"wall_s": round(r.wall_s, 3), "cpu_s": round(r.cpu_s, 3)}
                for r in simulation.results
            },
            "bound": {
                "cpu_s": round(bound.cpu_s, 3),
                "hindsight_cpu_s": round(bound.hindsight_s, 3),
                "solve_s": round(bound.solve_s, 3),
            }
            if bound
            else None,
        },
    }


def bound_dict(bound: Bound) -> dict[str, Any]:
    """The bound's figures (``"bound"`` in the JSON)."""
    messages = max(1, bound.messages)
    return {
        "name": "bound",
        "description": "LP relaxation: no policy answers more within the SLO, or pays less "
        "at that coverage (docs/simulate.md, Bound)",
        "messages": bound.messages,
        "within_slo": bound.within_slo,
        "within_inference_slo_share": round(bound.within_slo / messages, 6),
        "within_first_token_slo": bound.within_first_token_slo,
        "within_first_token_slo_share": round(bound.within_first_token_slo / messages, 6),
        "feasible_within_slo": bound.feasible_slo,
        "failed_at_least": bound.unanswerable,
        "cost": {
            "usd_per_day": round(bound.total_usd, 2),
            "usd_per_1k_messages": round(bound.total_usd / messages * 1000, 4),
            "fixed_usd": round(bound.fixed_usd, 2),
            "token_usd": round(bound.token_usd, 2),
        },
        "lp": {
            "window_s": bound.window_s,
            "groups": bound.groups,
            "variables": bound.variables,
        },
    }


def regret(result: RunResult, bound: Bound) -> dict[str, Any]:
    """How far a policy is from the bound: answers within the SLO (full answer, first token)
    it missed that the bound gets, and what it paid above the bound's cost."""
    messages = max(1, result.messages)
    first = first_token_answers(result)
    return {
        "within_slo": bound.within_slo - result.within_slo,
        "within_slo_points": round(100 * (bound.within_slo - result.within_slo) / messages, 4),
        "within_first_token_slo": None if first is None else bound.within_first_token_slo - first,
        "cost_usd": round(result.total_usd - bound.total_usd, 2),
        "cost_ratio": round(result.total_usd / bound.total_usd, 6) if bound.total_usd else None,
    }


def first_token_answers(result: RunResult) -> int | None:
    """Answers whose first token came within the first-token SLO, where the engine counts
    them (``None`` before it does)."""
    value = getattr(result, "within_first_token_slo", None)
    return value if isinstance(value, int) else None


def _result(result: RunResult, bound: Bound | None) -> dict[str, Any]:
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
        "label": label(result),
        "description": result.description,
        "messages": result.messages,
        "within_deadline": result.within_deadline,
        "within_deadline_share": round(result.within_deadline / messages, 6),
        "within_inference_slo_share": round(result.within_slo / messages, 6),
        "within_slo": result.within_slo,
        "within_first_token_slo": first_token_answers(result),
        "within_first_token_slo_share": round(result.within_first_token_slo / messages, 6),
        "answered_share": round(result.answered / messages, 6),
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
        "tier_share_by_class": tier_shares(result),
        "reasons": dict(result.reasons.most_common()),
        "capacity": capacity(result),
        "spend": spend(result),
        "replicas": replicas(result),
        "timeline": _timeline(result),
        "wall_s": round(result.wall_s, 3),
    }
    if bound is not None:
        data["regret"] = regret(result, bound)
    return data


def tier_shares(result: RunResult) -> dict[str, dict[str, float]]:
    """Per request class, the share of its answers each tier (quality level) served, tiers in
    the order the targets first name them: what a cheaper policy traded away. A class with no
    answers has no shares."""
    n = len(result.target_names)
    tiers = result.target_tiers or result.target_names
    shares: dict[str, dict[str, float]] = {}
    for k, klass in enumerate(result.classes):
        counts: dict[str, int] = {}
        for j, tier in enumerate(tiers):
            counts[tier] = counts.get(tier, 0) + result.answers_by_class[k * n + j]
        answered = sum(counts.values())
        shares[klass] = {
            tier: round(count / answered, 6) for tier, count in counts.items() if count
        }
    return shares


def label(result: RunResult) -> str:
    """The policy's name, and with several replicas how many and whether they shared state."""
    stats = result.replica_stats
    if stats is None:
        return result.name
    return f"{result.name} x{stats.replicas} {'shared' if stats.shared else 'local'}"


def capacity(result: RunResult) -> dict[str, Any]:
    """Per target with a tokens-per-minute capacity: what the fleet of routers offered it per
    minute (every attempt, admitted or throttled) against that capacity, and its throttles.
    ``hourly_paid`` marks provisioned throughput - paid for whether used or not, so the
    policies aim to fill it, not to overrun it."""
    out = {}
    for name, per_minute in result.offered_tokens.items():
        cap = result.capacity_tpm.get(name) or 0.0
        whole = per_minute[:-1] if len(per_minute) > 1 else per_minute  # the last: after the end
        usage = result.usage.get(name)
        over = [tokens - cap for tokens in whole if tokens > cap]
        out[name] = {
            "hourly_paid": bool(usage and usage.fixed_usd > 0),
            "capacity_tokens_per_minute": cap,
            "minutes": len(whole),
            "minutes_over_capacity": len(over),
            "peak_offered_ratio": round(max(whole, default=0) / cap, 4) if cap else None,
            "mean_offered_ratio": round(sum(whole) / len(whole) / cap, 4)
            if cap and whole
            else None,
            "offered_over_capacity_tokens": sum(over),
            "attempts": usage.attempts if usage else 0,
            "throttled": usage.throttled if usage else 0,
        }
    return out


def spend(result: RunResult) -> dict[str, Any]:
    """Pay-per-use spend (tokens) against the budget guard's budget, if the policy has one:
    ``budget_window_usd`` is the share of the daily budget its pace allots to the hours run."""
    data: dict[str, Any] = {"pay_per_use_usd": round(result.token_usd, 2)}
    if result.budget_daily_usd is not None and result.budget_window_usd is not None:
        data["budget_daily_usd"] = result.budget_daily_usd
        data["budget_window_usd"] = round(result.budget_window_usd, 2)
        data["vs_budget"] = (
            round(result.token_usd / result.budget_window_usd, 4)
            if result.budget_window_usd > 0
            else None
        )
    return data


def replicas(result: RunResult) -> dict[str, Any] | None:
    """How the replicas did: traffic each served, syncs, and how much they disagreed on the
    primary - ``primary_disagreement_share`` of the seconds sampled, and primary switches
    announced fleet-wide against the changes of the fleet's primary they amount to."""
    stats = result.replica_stats
    if stats is None:
        return None
    return {
        "replicas": stats.replicas,
        "shared": stats.shared,
        "sync_ms": stats.sync_ms,
        "messages_per_replica": stats.messages,
        "syncs": stats.syncs,
        "sync_failures": stats.sync_failures,
        "seconds_sampled": stats.sampled_s,
        "seconds_primary_disagreed": stats.disagree_s,
        "primary_disagreement_share": round(stats.disagree_s / stats.sampled_s, 6)
        if stats.sampled_s
        else 0.0,
        "switch_events": stats.switch_events,
        "distinct_switches": stats.distinct_switches,
    }


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
    bound = data.get("bound")
    streaming = bool(budget.get("streaming"))
    for entry in data["policies"]:
        latency = entry["latency_ms"]
        cost = entry["cost"]
        versus = entry.get("regret")
        if streaming:
            shares = [
                f"{entry['answered_share']:.3%}",
                f"{entry['within_first_token_slo_share']:.2%}",
                f"{entry['within_deadline_share']:.2%}",
            ]
            missed = versus["within_first_token_slo"] if versus else None
        else:
            shares = [
                f"{entry['within_deadline_share']:.3%}",
                f"{entry['within_inference_slo_share']:.2%}",
            ]
            missed = versus["within_slo"] if versus else None
        rows.append(
            [
                entry.get("label", entry["name"]),
                *shares,
                entry["failed"],
                _ms(latency["p50"]),
                _ms(latency["p90"]),
                _ms(latency["p99"]),
                entry["failovers"],
                entry["primary_switches"],
                entry["breaker_openings"],
                f"{cost['usd_per_day']:,.0f}",
                f"{cost['usd_per_1k_messages']:.3f}",
                f"{missed:,}" if missed is not None else "",
                f"{versus['cost_ratio'] - 1:+.1%}" if versus and versus["cost_ratio"] else "",
            ]
        )
    if bound is not None:
        cost = bound["cost"]
        rows.append(
            [
                "bound",
                "",
                *(
                    [f"{bound['within_first_token_slo_share']:.2%}", ""]
                    if streaming
                    else [f"{bound['within_inference_slo_share']:.2%}"]
                ),
                f">={bound['failed_at_least']}",
                *[""] * 6,
                f"{cost['usd_per_day']:,.0f}",
                f"{cost['usd_per_1k_messages']:.3f}",
                "",
                "",
            ]
        )
    within = "within 3 s" if budget["deadline_ms"] == 3000 else "within deadline"
    if streaming:
        columns = [
            f"first token {within}",
            f"first token <= {budget['first_token_ms'] / 1000:g} s",
            f"whole answer {within}",
        ]
    else:
        columns = [within, f"inference <= {budget['inference_ms'] / 1000:g} s"]
    headers = [
        "policy",
        *columns,
        "failed",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "failovers",
        "switches",
        "ejections",
        "$/day",
        "$/1k msgs",
        "SLO regret",
        "cost vs bound",
    ]
    if bound is None:
        rows = [row[:-2] for row in rows]
        headers = headers[:-2]
    lines.append(table(rows, headers))
    if bound is not None:
        cpu_s = (run.get("bound") or {}).get("cpu_s", 0.0)
        lines.append(
            "bound: no policy answers more messages within the SLO, or pays less at that "
            f"coverage ({bound['within_slo']:,} answers, "
            f"{bound['within_first_token_slo']:,} first tokens in time; {cpu_s:.1f} s of "
            "CPU); SLO regret = its "
            + ("first tokens" if streaming else "answers")
            + " within the SLO less the policy's"
        )
    lines.append("")
    names = list(data["policies"][0]["cost"]["by_target"]) if data["policies"] else []
    cost_rows = []
    for entry in data["policies"]:
        by_target = entry["cost"]["by_target"]
        cost_rows.append(
            [entry.get("label", entry["name"])]
            + [f"{by_target[n]['total_usd']:,.0f} ({by_target[n]['share']:.0%})" for n in names]
            + [f"{entry['cost']['fixed_usd']:,.0f}", f"{entry['cost']['token_usd']:,.0f}"]
        )
    lines.append("cost per day by target, $ (share of answers):")
    lines.append(table(cost_rows, ["policy", *names, "hourly", "tokens"]))
    lines.append("")
    lines.extend(_tier_lines(data))
    if run.get("replicas", 1) > 1 or run.get("shared", "off") != "off":
        lines.extend(_replica_lines(data))
        lines.append("")
    runs = len(data["policies"])
    lines.append(
        (f"{runs} runs" if run.get("shared", "off") == "both" else f"{runs} policies")
        + (" + bound" if bound else "")
        + f" in {run['wall_s']:.1f} s on {run['processes']} process"
        + ("es" if run["processes"] > 1 else "")
        + f" (day generated in {run['generate_s']:.1f} s)"
    )
    return "\n".join(lines)


def _tier_lines(data: dict[str, Any]) -> list[str]:
    """The answers of each class by tier, per policy (empty without tier shares)."""
    entries = [entry for entry in data["policies"] if entry.get("tier_share_by_class")]
    if not entries:
        return []
    classes = list(entries[0]["tier_share_by_class"])
    rows = [
        [entry.get("label", entry["name"])]
        + [
            " ".join(
                f"{tier} {share:.1%}"
                for tier, share in entry["tier_share_by_class"].get(klass, {}).items()
            )
            or "-"
            for klass in classes
        ]
        for entry in entries
    ]
    return [
        "answers by tier, per class (share of the class's answers):",
        table(rows, ["policy", *classes]),
        "",
    ]


def _replica_lines(data: dict[str, Any]) -> list[str]:
    run = data["run"]
    sync = f"syncing every {run['sync_ms']:g} ms" if run.get("shared") != "off" else ""
    lines = [
        f"{run['replicas']} replicas per policy on the same targets"
        + (f", with shared state {sync}" if run.get("shared") == "on" else "")
        + (f", without and with shared state ({sync})" if run.get("shared") == "both" else "")
        + ":"
    ]
    rows = []
    for entry in data["policies"]:
        stats = entry.get("replicas") or {}
        paid = {n: c for n, c in entry["capacity"].items() if c["hourly_paid"]}
        over = sum(c["minutes_over_capacity"] for c in paid.values())
        minutes = sum(c["minutes"] for c in paid.values())
        peak = max((c["peak_offered_ratio"] or 0.0 for c in paid.values()), default=0.0)
        mean = max((c["mean_offered_ratio"] or 0.0 for c in paid.values()), default=0.0)
        spend = entry["spend"]
        if "vs_budget" in spend:
            money = (
                f"{spend['pay_per_use_usd']:,.0f} / {spend['budget_window_usd']:,.0f} "
                f"({spend['vs_budget']:.0%})"
            )
        else:
            money = f"{spend['pay_per_use_usd']:,.0f}"
        rows.append(
            [
                entry.get("label", entry["name"]),
                f"{mean:.2f}x / {peak:.2f}x" if paid else "-",
                f"{over}/{minutes}" if paid else "-",
                sum(c["throttled"] for c in paid.values()) if paid else "-",
                sum(c["throttled"] for c in entry["capacity"].values()),
                money,
                f"{stats.get('primary_disagreement_share', 0.0):.2%}",
                f"{stats.get('switch_events', entry['primary_switches'])}"
                f" / {stats.get('distinct_switches', entry['primary_switches'])}",
            ]
        )
    headers = [
        "policy",
        "provisioned offered mean / peak",
        "min over",
        "provisioned 429s",
        "all 429s",
        "pay-per-use $ (vs budget)",
        "primary disagreed",
        "switch events / distinct",
    ]
    lines.append(table(rows, headers))
    lines.append(
        "provisioned offered: tokens sent per minute (admitted or throttled) over the model "
        "units' capacity; primary disagreed: share of seconds the replicas' primaries differed"
    )
    return lines


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """Aligned columns; all but the first right-aligned."""
    cells = [[str(v) for v in row] for row in rows]
    return text_table([str(h) for h in headers], cells, range(1, len(headers)))
