"""The ``mangaroute`` command line."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TextIO

from mangaroute import __version__
from mangaroute._text import text_table
from mangaroute.cli.options import add_config_option, config_path
from mangaroute.config import default_config_text, load_config, load_default_config
from mangaroute.core.errors import ConfigError, MangarouteError
from mangaroute.core.router import Router
from mangaroute.core.settings import RouterConfig
from mangaroute.core.snapshot import Snapshot
from mangaroute.demo import register as register_demo
from mangaroute.planning.cli import register as register_plan
from mangaroute.shared.cli import register as register_shared
from mangaroute.sidecar.cli import register as register_serve
from mangaroute.simulate.cli import register as register_simulate
from mangaroute.telemetry.cli import register as register_telemetry
from mangaroute.walkthrough import Walkthrough

EXIT_USAGE = 2


def _table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """Align columns; numbers to the right."""
    cells = [["" if v is None else str(v) for v in r] for r in rows]
    numeric = {i for i in range(len(headers)) if rows and all(_is_number(r[i]) for r in rows)}
    return text_table([str(h) for h in headers], cells, numeric)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _config(flag: str | None) -> RouterConfig:
    path = config_path(flag)
    return load_config(path) if path else load_default_config()


def _write_json(data: Any, out: TextIO) -> None:
    json.dump(data, out, indent=2, sort_keys=False)
    out.write("\n")


def _emit(args: argparse.Namespace, data: Any, text: Callable[[], str], out: TextIO) -> None:
    if args.json:
        _write_json(data, out)
    else:
        out.write(text() + "\n")


class UsageError(Exception):
    """A command line argparse rejected, raised instead of printed so ``--json`` can report
    it as JSON."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser
        self.message = message


class _JsonErrorParser(argparse.ArgumentParser):
    """The parser :func:`main` builds when the command line asks for ``--json``."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(self, message)


_FLAG = re.compile(r"^(?:argument )?(--[a-z0-9][a-z0-9-]*)\b")


def error_json(exc: BaseException) -> dict[str, Any]:
    """A failed command's error as a JSON object: the message, the input it is about
    (``field``: a config key, a flag, a planning input; ``None`` when it names none), the
    config file when there is one, and the error's type."""
    message = str(exc)
    field: str | None = getattr(exc, "field", None)
    file: str | None = None
    if isinstance(exc, ConfigError):
        if exc.source == "<config>":  # not from a file: a flag or a value
            message = message.removeprefix("<config> ")
        else:
            file = exc.source
        field = field or exc.key or None
    if isinstance(exc, UsageError):
        message = exc.message
    if field is None:
        found = _FLAG.match(message)
        field = found.group(1) if found else None
    return {"error": message, "field": field, "file": file, "type": type(exc).__name__}


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
    return _table(
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
        classes = _table(
            [[c.name, c.policy, ", ".join(c.targets)] for c in config.classes],
            ["class", "policy", "targets (in order of preference)"],
        )
        policies = _table(
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

    _emit(args, {"ok": True, **summary}, text, out)
    return 0


def cmd_config_show(args: argparse.Namespace, out: TextIO) -> int:
    out.write(default_config_text())
    return 0


def cmd_targets(args: argparse.Namespace, out: TextIO) -> int:
    config = _config(args.config)
    _emit(args, _targets_json(config), lambda: _targets_text(config), out)
    return 0


def _snapshot_text(snapshot: Snapshot) -> str:
    rows = []
    for v in snapshot.targets:
        rows.append(
            [
                v.name,
                v.breaker.value,
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
    table = _table(
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
    routes = _table(
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
    primary = f"primary: {snapshot.primary}\n\n" if snapshot.primary else ""
    return f"{primary}{table}\n\n{routes}"


def cmd_snapshot(args: argparse.Namespace, out: TextIO) -> int:
    snapshot = Router(_config(args.config)).snapshot()
    _emit(args, snapshot.to_dict(), lambda: _snapshot_text(snapshot), out)
    return 0


def cmd_route(args: argparse.Namespace, out: TextIO) -> int:
    router = Router(_config(args.config))
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

    _emit(args, data, text, out)
    return 0


def cmd_walkthrough(args: argparse.Namespace, out: TextIO) -> int:
    walk = Walkthrough(_config(args.config), seed=args.seed, budget_ms=args.budget_ms)
    router = walk.run()
    snapshot = router.snapshot()
    data: dict[str, Any] = {
        "phases": [r.to_dict() for r in walk.reports],
        "events": walk.events,
        "final": snapshot.to_dict(),
    }

    def text() -> str:
        phases = _table(
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

    _emit(args, data, text, out)
    return 0


def build_parser(*, json_errors: bool = False) -> argparse.ArgumentParser:
    """The ``mangaroute`` parser; ``json_errors``: usage errors raise (for :func:`main` to
    report as JSON) instead of printing and exiting."""
    parser_class = _JsonErrorParser if json_errors else argparse.ArgumentParser
    parser = parser_class(
        prog="mangaroute",
        description="Route foundation-model calls across AWS deployment targets (Bedrock "
        "provisioned and on-demand, SageMaker) by latency, health, capacity and "
        "cost. Every command works offline on the shipped MangaAssist config.",
    )
    parser.add_argument("--version", action="version", version=f"mangaroute {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(
        name: str,
        help_text: str,
        handler: Callable[[argparse.Namespace, TextIO], int],
        parent: Any = commands,
        *,
        json_flag: bool = True,
        config_flag: bool = True,
    ) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = parent.add_parser(
            name, help=help_text, description=help_text
        )
        if config_flag:
            add_config_option(sub)
        if json_flag:
            sub.add_argument("--json", action="store_true", help="print JSON for machines")
        sub.set_defaults(handler=handler)
        return sub

    config = commands.add_parser(
        "config",
        help="check or print a router configuration",
        description="Check or print a router configuration.",
    )
    config_commands = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    check = add(
        "check",
        "validate a config file and summarise its targets, classes and "
        "policies (exit 2 on the first error, naming file and key)",
        cmd_config_check,
        config_commands,
        config_flag=False,
    )
    check.add_argument("file", metavar="FILE", help="the TOML file to check")
    add(
        "show",
        "print the shipped MangaAssist config (a starting point for your own)",
        cmd_config_show,
        config_commands,
        json_flag=False,
        config_flag=False,
    )

    add(
        "targets",
        "list the configured deployment targets with priors, capacity and price",
        cmd_targets,
    )
    add(
        "snapshot",
        "show the router's per-target statistics, breakers and routing tables "
        "(a fresh router: priors only)",
        cmd_snapshot,
    )
    route = add(
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
    walk = add(
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
    register_demo(commands)
    register_plan(commands)
    register_telemetry(commands)
    register_serve(commands)
    register_simulate(commands)
    register_shared(commands)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run one command. Under ``--json`` a failure is a JSON object on stdout
    (:func:`error_json`) instead of text on stderr; the exit code is the same."""
    words = list(sys.argv[1:] if argv is None else argv)
    json_errors = "--json" in words
    stream = out or sys.stdout
    parser = build_parser(json_errors=json_errors)
    try:
        args = parser.parse_args(words)
    except UsageError as exc:
        _write_json(error_json(exc), stream)
        return EXIT_USAGE
    try:
        code: int = args.handler(args, stream)
    except MangarouteError as exc:
        if json_errors:
            _write_json(error_json(exc), stream)
        else:
            print(f"mangaroute: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # pragma: no cover - `mangaroute ... | head`
        return 0
    return code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
