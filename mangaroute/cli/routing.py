"""The router's own commands: ``config check|show|schema``, ``targets``, ``snapshot``, ``route`` and
``walkthrough``, all offline on a fresh router (the shipped MangaAssist config unless
``--config`` or ``$MANGAROUTE_CONFIG`` names another)."""

from __future__ import annotations

import argparse
import time
from collections import Counter
from typing import Any, TextIO

from mangaroute.cli.options import add_config_option, add_json_option, router_config
from mangaroute.cli.output import Handler, emit, table
from mangaroute.config import default_config_text, load_config
from mangaroute.config.schema import schema_text
from mangaroute.core.router import Router
from mangaroute.core.settings import RouterConfig
from mangaroute.core.snapshot import Snapshot
from mangaroute.walkthrough import Walkthrough

__all__ = ["register"]


def _targets_text(config: RouterConfig) -> str:
    rows = []
    for t in config.targets:
        capacity = t.capacity
        cap = (
            ", ".join(
                f"{label}={value:,.10g}"
                for label, value in (
                    ("tok/min", capacity.tokens_per_minute),
                    ("req/s", capacity.requests_per_second),
                    ("concurrency", capacity.concurrency),
                )
                if value is not None
            )
            or "unbounded"
        )
        price = t.pricing
        cost = []
        if price.input_per_million_usd or price.output_per_million_usd:
            cost.append(
                f"${price.input_per_million_usd:g}/${price.output_per_million_usd:g} per 1M in/out"
            )
        if price.hourly_usd:
            cost.append(f"${price.hourly_usd:g}/h")
        rows.append(
            [
                t.name,
                t.pattern.value,
                t.tier,
                t.region,
                f"{t.prior.p50_ms:g}/{t.prior.p90_ms:g}/{t.prior.effective_p99_ms:g}",
                cap,
                " + ".join(cost) or "-",
            ]
        )
    return table(
        rows, ["target", "pattern", "tier", "region", "prior p50/p90/p99 ms", "capacity", "price"]
    )


def _targets_json(config: RouterConfig) -> list[dict[str, Any]]:
    return [
        {
            "name": t.name,
            "pattern": t.pattern.value,
            "model_id": t.model_id,
            "region": t.region,
            "tier": t.tier,
            "prior": {
                "p50_ms": t.prior.p50_ms,
                "p90_ms": t.prior.p90_ms,
                "p99_ms": t.prior.p99_ms,
                "effective_p99_ms": t.prior.effective_p99_ms,
                "cold_start_ms": t.prior.cold_start_ms,
                "cold_start_probability": t.prior.cold_start_probability,
            },
            "pricing": {
                "input_per_million_usd": t.pricing.input_per_million_usd,
                "output_per_million_usd": t.pricing.output_per_million_usd,
                "hourly_usd": t.pricing.hourly_usd,
            },
            "capacity": {
                "tokens_per_minute": t.capacity.tokens_per_minute,
                "requests_per_second": t.capacity.requests_per_second,
                "concurrency": t.capacity.concurrency,
            },
            "ops_score": t.ops_score,
        }
        for t in config.targets
    ]


def _config_summary(config: RouterConfig) -> dict[str, Any]:
    return {
        "source": config.source,
        "targets": _targets_json(config),
        "classes": {
            c.name: {"targets": list(c.targets), "policy": c.policy} for c in config.classes
        },
        "default_class": config.default_class,
        "policies": {
            name: {
                "filters": [f.name for f in p.filters],
                "ranker": p.ranker.name,
                "picker": p.picker.name,
                "budget": p.budget,
            }
            for name, p in config.policies.items()
        },
        "primary": config.switcher.primary if config.switcher else None,
    }


def cmd_config_check(args: argparse.Namespace, out: TextIO) -> int:
    config = load_config(args.file)
    summary = _config_summary(config)

    def text() -> str:
        classes = table(
            [[c.name, c.policy, ", ".join(c.targets)] for c in config.classes],
            ["class", "policy", "targets (in order of preference)"],
        )
        policies = table(
            [
                [
                    n,
                    ", ".join(p["filters"]),
                    p["ranker"],
                    p["picker"],
                    "yes" if p["budget"] else "no",
                ]
                for n, p in summary["policies"].items()
            ],
            ["policy", "filters", "ranker", "picker", "budget"],
        )
        primary = f"\nprimary: {summary['primary']}" if summary["primary"] else ""
        return f"{args.file}: OK\n\n{_targets_text(config)}\n\n{classes}\n\n{policies}{primary}"

    emit(args, {"ok": True, **summary}, text, out)
    return 0


def cmd_config_show(args: argparse.Namespace, out: TextIO) -> int:
    out.write(default_config_text())
    return 0


def cmd_config_schema(args: argparse.Namespace, out: TextIO) -> int:
    out.write(schema_text())
    return 0


def cmd_targets(args: argparse.Namespace, out: TextIO) -> int:
    config = router_config(args.config)
    emit(args, _targets_json(config), lambda: _targets_text(config), out)
    return 0


def _snapshot_text(snapshot: Snapshot) -> str:
    rows = []
    for v in snapshot.targets:
        rows.append(
            [
                v.name,
                v.breaker.value
                if v.breaker_until is None
                else f"{v.breaker.value} until {_clock_time(v.breaker_until)}",
                v.latency_source,
                round(v.p50_ms),
                round(v.p90_ms),
                round(v.p99_ms),
                v.samples,
                v.requests,
                f"{v.error_rate:.1%}",
                f"{v.throttle_rate:.1%}",
                round(v.tokens_per_minute),
                f"{v.utilization:.0%}",
                v.in_flight,
            ]
        )
    stats = table(
        rows,
        [
            "target",
            "breaker",
            "latency",
            "p50",
            "p90",
            "p99",
            "samples",
            "requests",
            "errors",
            "throttled",
            "tok/min",
            "used",
            "in flight",
        ],
    )
    routes = table(
        [
            [
                name,
                r.policy,
                " > ".join(v.name for v in r.candidates) or "(panic)",
                ", ".join(f"{n}: {why}" for n, why in r.excluded) or "-",
            ]
            for name, r in snapshot.routes.items()
        ],
        ["class", "policy", "candidates, best first", "excluded"],
    )
    primary = f"primary: {snapshot.primary}" if snapshot.primary else ""
    pin = snapshot.pin
    if primary and pin is not None:
        primary += f" (pinned by {pin.by} until {_clock_time(pin.until_unix)}: {pin.reason})"
    return f"{primary}\n\n{stats}\n\n{routes}" if primary else f"{stats}\n\n{routes}"


def _clock_time(unix_s: float) -> str:
    """An instant of the snapshot (epoch seconds) as the UTC time of day an operator reads."""
    return time.strftime("%H:%M:%S UTC", time.gmtime(unix_s))


def cmd_snapshot(args: argparse.Namespace, out: TextIO) -> int:
    snapshot = Router(router_config(args.config)).snapshot()
    emit(args, snapshot.to_dict(), lambda: _snapshot_text(snapshot), out)
    return 0


def cmd_route(args: argparse.Namespace, out: TextIO) -> int:
    router = Router(router_config(args.config))
    decision = router.choose(
        args.request_class,
        session_id=args.session,
        budget_ms=args.budget_ms,
        input_tokens=args.input_tokens,
        output_tokens=args.output_tokens,
    )
    shares = Counter(
        router.choose(
            args.request_class, session_id=args.session, budget_ms=args.budget_ms
        ).target.name
        for _ in range(args.samples)
    )
    data: dict[str, Any] = {
        "decision": decision.to_dict(),
        "share": {name: round(count / args.samples, 4) for name, count in shares.most_common()},
    }

    def text() -> str:
        fallbacks = " > ".join(t.name for t in decision.fallbacks) or "(none)"
        lines = [
            f"class {decision.request_class} (policy {decision.policy}) -> "
            f"{decision.target.name} [{decision.reason}]",
            f"  model id : {decision.target.model_id}",
            f"  pattern  : {decision.target.pattern.value} in {decision.target.region}",
            f"  fallbacks: {fallbacks}",
            f"share over {args.samples} decisions:",
        ]
        lines += [f"  {name:<24} {share:6.1%}" for name, share in data["share"].items()]
        return "\n".join(lines)

    emit(args, data, text, out)
    return 0


def cmd_walkthrough(args: argparse.Namespace, out: TextIO) -> int:
    walk = Walkthrough(router_config(args.config), seed=args.seed, budget_ms=args.budget_ms)
    router = walk.run()
    snapshot = router.snapshot()
    data: dict[str, Any] = {
        "phases": [r.to_dict() for r in walk.reports],
        "events": walk.events,
        "final": snapshot.to_dict(),
    }

    def text() -> str:
        phases = table(
            [
                [
                    p["phase"],
                    p["requests"],
                    p["answered"],
                    f"{p['answered_within_budget'] / max(1, p['requests']):.1%}",
                    p["failovers"],
                    p["p50_ms"],
                    p["p99_ms"],
                    ", ".join(f"{n} {c}" for n, c in p["answered_by"].items()),
                ]
                for p in data["phases"]
            ],
            [
                "phase",
                "requests",
                "answered",
                f"<= {args.budget_ms:g} ms",
                "failovers",
                "p50 ms",
                "p99 ms",
                "answered by",
            ],
        )
        events = (
            "\n".join(
                f"  t={e['t_s']:>6}s  "
                + (
                    f"primary {e['from']} -> {e['to']} ({e['reason']})"
                    if e["event"] == "switch"
                    else f"breaker {e['target']}: {e['from']} -> {e['to']} ({e['reason']})"
                )
                for e in walk.events
            )
            or "  (none)"
        )
        return (
            f"Routing walk-through on {router.config.source} (virtual time, seed "
            f"{args.seed}, inference budget {args.budget_ms:g} ms)\n\n{phases}\n\n"
            f"Events:\n{events}\n\nFinal state:\n{_snapshot_text(snapshot)}"
        )

    emit(args, data, text, out)
    return 0


def _leaf(
    commands: Any,
    name: str,
    help_text: str,
    handler: Handler,
    *,
    json_flag: bool = True,
    config_flag: bool = True,
) -> argparse.ArgumentParser:
    sub: argparse.ArgumentParser = commands.add_parser(name, help=help_text, description=help_text)
    if config_flag:
        add_config_option(sub)
    if json_flag:
        add_json_option(sub)
    sub.set_defaults(handler=handler)
    return sub


def register(commands: Any) -> None:
    """Add ``config``, ``targets``, ``snapshot``, ``route`` and ``walkthrough``."""
    config = commands.add_parser(
        "config",
        help="check or print a router configuration",
        description="Check or print a router configuration.",
    )
    config_commands = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    check = _leaf(
        config_commands,
        "check",
        "validate a config file and summarise its targets, classes and "
        "policies (exit 2 on the first error, naming file and key)",
        cmd_config_check,
        config_flag=False,
    )
    check.add_argument("file", metavar="FILE", help="the TOML file to check")
    _leaf(
        config_commands,
        "show",
        "print the shipped MangaAssist config (a starting point for your own)",
        cmd_config_show,
        json_flag=False,
        config_flag=False,
    )
    _leaf(
        config_commands,
        "schema",
        "print the config's JSON Schema (draft 2020-12, for editors and validators; the "
        "package ships it as mangaroute/data/config.schema.json)",
        cmd_config_schema,
        json_flag=False,
        config_flag=False,
    )

    _leaf(
        commands,
        "targets",
        "list the configured deployment targets with priors, capacity and price",
        cmd_targets,
    )
    _leaf(
        commands,
        "snapshot",
        "show the router's per-target statistics, breakers and routing tables "
        "(a fresh router: priors only)",
        cmd_snapshot,
    )
    route = _leaf(
        commands,
        "route",
        "ask a fresh router where a call would go, and the traffic share over many decisions",
        cmd_route,
    )
    route.add_argument(
        "--class",
        dest="request_class",
        default=None,
        metavar="CLASS",
        help="request class (default: the config's default_class)",
    )
    route.add_argument(
        "--budget-ms",
        type=float,
        default=None,
        metavar="MS",
        help="remaining latency budget for the call, in ms",
    )
    route.add_argument("--session", default=None, metavar="ID", help="session id (sticky pickers)")
    route.add_argument(
        "--input-tokens", type=int, default=500, metavar="N", help="estimated input tokens (500)"
    )
    route.add_argument(
        "--output-tokens", type=int, default=300, metavar="N", help="estimated output tokens (300)"
    )
    route.add_argument(
        "--samples",
        type=int,
        default=1000,
        metavar="N",
        help="decisions drawn to estimate the traffic share (default 1000)",
    )
    walk = _leaf(
        commands,
        "walkthrough",
        "replay a scripted day in virtual time through the real router: "
        "quiet traffic, an outage of the primary, recovery, an evening peak",
        cmd_walkthrough,
    )
    walk.add_argument("--seed", type=int, default=7, metavar="N", help="random seed (default 7)")
    walk.add_argument(
        "--budget-ms",
        type=float,
        default=1500.0,
        metavar="MS",
        help="inference budget per call (default 1500, the seed's figure)",
    )
