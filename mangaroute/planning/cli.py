"""``mangaroute plan``: throughput, recommend, tco and autoscaling sub-commands, and ``schema``.

:func:`register` adds the ``plan`` tree to the main CLI's sub-parsers; every leaf sets
``handler(args, out) -> int`` (the exit code), the main CLI's convention. :func:`run` is the
same tree behind its own parser, for tests and scripts: ``run(["plan", "tco", "--json"])``.
Invalid inputs exit with 2 and a message that names the field (and the profile file); failed
AWS calls exit with 1 (:mod:`mangaroute.cli.output`: the same codes, and JSON errors under
``--json``, as every command).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TextIO

from mangaroute.cli.options import add_json_option
from mangaroute.cli.output import CommandFailed, Handler, emit, guarded, print_usage, run_alone
from mangaroute.config.schema import schema_text
from mangaroute.planning import render
from mangaroute.planning.autoscaling import ScalingConfig, plan_to_json, removal_plan, scaling_plan
from mangaroute.planning.profile import (
    Override,
    Profile,
    load_profile,
    need,
    parse_assignment,
    parse_observed,
)
from mangaroute.planning.recommend import Requirement, recommend
from mangaroute.planning.sections import PROFILE_DOCUMENT
from mangaroute.planning.tco import compare_tco
from mangaroute.planning.traffic import compute_load, size_capacity

__all__ = ["register", "run"]


@dataclass(frozen=True)
class _Flag:
    """A named flag that sets one profile key (``path``) before validation."""

    flag: str
    path: str
    type: Callable[[str], Any] | None
    help: str
    const: Any = None
    metavar: str | None = None

    @property
    def dest(self) -> str:
        return "set__" + self.path.replace(".", "__")

    @property
    def shown(self) -> str:
        """What ``--help`` shows for the value (never the internal ``dest``)."""
        return self.metavar or _METAVARS.get(self.type, "VALUE")


_METAVARS: dict[Any, str] = {int: "N", float: "X", str: "NAME"}


_TRAFFIC = (
    _Flag("--daily-messages", "traffic.daily_messages", int, "messages per day"),
    _Flag("--peak-multiplier", "traffic.peak_multiplier", float, "peak req/s ÷ average (≥ 1)"),
    _Flag(
        "--peak-hours", "traffic.peak_hours", int, "hours of peak traffic per day", metavar="HOURS"
    ),
    _Flag("--burst-factor", "traffic.burst_factor", float, "burst req/s ÷ peak (≥ 1)"),
    _Flag("--input-tokens", "traffic.avg_input_tokens", int, "average input tokens"),
    _Flag("--output-tokens", "traffic.avg_output_tokens", int, "average output tokens"),
)
_RECOMMEND = (
    _Flag("--max-p99-ms", "recommend.max_p99_ms", float, "latency target p99 (ms)", metavar="MS"),
    _Flag(
        "--max-monthly-cost",
        "recommend.max_monthly_cost_usd",
        float,
        "budget (USD/month)",
        metavar="USD",
    ),
    _Flag(
        "--min-rps",
        "recommend.min_throughput_rps",
        float,
        "required req/s (default: peak)",
        metavar="RPS",
    ),
    _Flag(
        "--needs-custom-model",
        "recommend.needs_custom_model",
        None,
        "only SageMaker real-time",
        True,
    ),
    _Flag(
        "--seed-exact-latency-score",
        "recommend.seed_exact_latency_score",
        None,
        "use the seed's non-monotone latency score",
        True,
    ),
)
_TCO = (
    _Flag(
        "--engineer-rate", "prices.engineer_hourly", float, "USD per engineer-hour", metavar="USD"
    ),
    _Flag(
        "--off-peak-ratio",
        "tco.off_peak_ratio",
        float,
        "off-peak traffic ratio (0-1)",
        metavar="RATIO",
    ),
    _Flag("--sonnet-mus", "tco.provisioned_sonnet_mus", int, "Sonnet MUs in the provisioned TCO"),
    _Flag("--sized-mus", "tco.use_sized_sonnet_mus", None, "use the sized Sonnet MU count", True),
)
_AUTOSCALING = (
    _Flag("--endpoint-name", "autoscaling.endpoint_name", str, "SageMaker endpoint name"),
    _Flag("--variant", "autoscaling.variant_name", str, "production variant name"),
    _Flag("--min-instances", "autoscaling.min_instances", int, "minimum instance count"),
    _Flag("--max-instances", "autoscaling.max_instances", int, "maximum instance count"),
    _Flag("--region", "autoscaling.region", str, "AWS region", metavar="REGION"),
    _Flag("--utc-schedules", "autoscaling.schedule_timezone", None, "UTC crons (seed)", "Etc/UTC"),
)


def _add_flags(parser: argparse.ArgumentParser, flags: Sequence[_Flag]) -> None:
    for f in flags:
        if f.type is None:
            parser.add_argument(
                f.flag, dest=f.dest, action="store_const", const=f.const, help=f.help
            )
        else:
            parser.add_argument(f.flag, dest=f.dest, type=f.type, metavar=f.shown, help=f.help)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", metavar="FILE", help="TOML profile (default: MangaAssist)")
    parser.add_argument(
        "--set",
        dest="assignments",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any profile key, e.g. traffic.daily_messages=2000000 (repeatable)",
    )
    add_json_option(parser, "print JSON instead of tables")


def _overrides(args: argparse.Namespace, flags: Sequence[_Flag]) -> list[Override]:
    out = []
    for text in args.assignments:
        path, value = parse_assignment(text)
        out.append(Override(path, value, f"--set {text}"))
    for text in getattr(args, "observed", None) or []:
        pattern, numbers = parse_observed(text)
        out.append(Override(("recommend", "observed", pattern), numbers, f"--observed {text}"))
    for f in flags:
        value = getattr(args, f.dest)
        if value is not None:
            out.append(Override(tuple(f.path.split(".")), value, f.flag))
    return out


def _profile(args: argparse.Namespace, flags: Sequence[_Flag], sections: Sequence[str]) -> Profile:
    return load_profile(args.profile, overrides=_overrides(args, flags), required=sections)


def _throughput(args: argparse.Namespace, out: TextIO) -> int:
    p = _profile(args, _TRAFFIC, ("traffic", "capacity", "prices"))
    plan = size_capacity(
        need(p.traffic, "traffic", p), need(p.capacity, "capacity", p), need(p.prices, "prices", p)
    )
    emit(args, render.capacity_json(plan), lambda: render.capacity_text(plan), out)
    return 0


def _recommend(args: argparse.Namespace, out: TextIO) -> int:
    p = _profile(args, (*_TRAFFIC, *_RECOMMEND), ("traffic", "recommend"))
    settings = need(p.recommend, "recommend", p)
    peak = compute_load(need(p.traffic, "traffic", p)).peak_rps
    requirement = Requirement(
        max_p99_ms=settings.max_p99_ms,
        min_throughput_rps=settings.min_throughput_rps or peak,
        max_monthly_cost_usd=settings.max_monthly_cost_usd,
        needs_custom_model=settings.needs_custom_model,
    )
    rec = recommend(
        requirement,
        profiles=settings.observed,
        seed_exact_latency_score=settings.seed_exact_latency_score,
    )
    emit(args, render.recommendation_json(rec), lambda: render.recommendation_text(rec), out)
    return 0


def _tco(args: argparse.Namespace, out: TextIO) -> int:
    p = _profile(args, (*_TRAFFIC, *_TCO), ("traffic", "capacity", "prices", "tco"))
    traffic, assumptions = need(p.traffic, "traffic", p), need(p.tco, "tco", p)
    results = compare_tco(
        traffic, need(p.prices, "prices", p), assumptions, need(p.capacity, "capacity", p)
    )
    monthly = traffic.daily_messages * assumptions.days_per_month
    emit(args, render.tco_json(results), lambda: render.tco_text(results, monthly), out)
    return 0


def _clients(args: argparse.Namespace, cfg: ScalingConfig) -> dict[str, Any]:
    import boto3  # noqa: PLC0415 - only this mode needs the AWS SDK
    from botocore.config import Config  # noqa: PLC0415

    config = Config(retries={"mode": "standard", "max_attempts": args.max_attempts})
    return {
        service: boto3.client(
            service, region_name=cfg.region, endpoint_url=args.endpoint_url, config=config
        )
        for service in ("application-autoscaling", "cloudwatch")
    }


def _autoscaling(args: argparse.Namespace, out: TextIO) -> int:
    p = _profile(args, _AUTOSCALING, ("autoscaling",))
    cfg = need(p.autoscaling, "autoscaling", p)
    plan = removal_plan(cfg) if args.remove else scaling_plan(cfg)
    if not (args.apply or args.status):
        if args.dry_run or args.json:
            print(plan_to_json(plan), file=out)
        else:
            print(render.plan_text(plan), file=out)
            print(
                "\nNothing was called: --dry-run prints these calls as JSON, --apply makes them.",
                file=out,
            )
        return 0
    return _run_against_aws(args, cfg, plan, out)


def _run_against_aws(args: argparse.Namespace, cfg: ScalingConfig, plan: Any, out: TextIO) -> int:
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    from mangaroute.planning.applier import apply_plan, scaling_status  # noqa: PLC0415

    clients = _clients(args, cfg)
    try:
        if args.status:
            status = scaling_status(cfg, clients)
            emit(args, asdict(status), lambda: render.status_text(status), out)
        else:
            outcomes = apply_plan(plan, clients)
            emit(args, [asdict(o) for o in outcomes], lambda: render.outcomes_text(outcomes), out)
    except (ClientError, BotoCoreError) as exc:
        raise CommandFailed(f"AWS call failed: {exc}") from exc
    finally:
        for client in clients.values():
            client.close()
    return 0


def _schema(args: argparse.Namespace, out: TextIO) -> int:
    out.write(schema_text(PROFILE_DOCUMENT))
    return 0


def _leaf(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    help_text: str,
    handler: Handler,
    flags: Sequence[_Flag],
) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help_text, description=help_text)
    _add_common(parser)
    _add_flags(parser, flags)
    parser.set_defaults(handler=guarded(handler, f"mangaroute plan {name}"))
    return parser


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``plan``, its four planning sub-commands and ``schema`` to a CLI's sub-parsers."""
    plan = subparsers.add_parser(
        "plan",
        help="capacity, recommendation, cost and auto-scaling planning",
        description="Planning toolkit; every sub-command defaults to the MangaAssist profile.",
    )
    plan.set_defaults(handler=print_usage(plan))
    sub = plan.add_subparsers(dest="plan_command", metavar="COMMAND")
    _leaf(
        sub,
        "throughput",
        "traffic -> req/s, tokens/min and sizing per pattern",
        _throughput,
        _TRAFFIC,
    )
    recommend_parser = _leaf(
        sub,
        "recommend",
        "rank deployment patterns by latency fit (seed §1.2)",
        _recommend,
        (*_TRAFFIC, *_RECOMMEND),
    )
    recommend_parser.add_argument(
        "--observed",
        action="append",
        metavar="PATTERN=P50/P90/P99",
        help="live latency (ms) replacing a pattern's prior (repeatable)",
    )
    _leaf(
        sub,
        "tco",
        "monthly total cost of ownership per pattern (seed §3.1)",
        _tco,
        (*_TRAFFIC, *_TCO),
    )
    scaling = _leaf(
        sub,
        "autoscaling",
        "SageMaker auto-scaling plan; --apply makes the calls",
        _autoscaling,
        _AUTOSCALING,
    )
    mode = scaling.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="print every API call as JSON")
    mode.add_argument("--apply", action="store_true", help="make the calls (idempotent)")
    mode.add_argument("--status", action="store_true", help="describe what exists")
    scaling.add_argument("--remove", action="store_true", help="plan the removal instead")
    scaling.add_argument("--endpoint-url", help="AWS endpoint override (e.g. a moto server)")
    scaling.add_argument("--max-attempts", type=int, default=3, help="botocore attempts per call")
    schema_help = (
        "print a planning profile's JSON Schema (draft 2020-12, for editors and validators; "
        "the package ships it as mangaroute/data/planning-profile.schema.json)"
    )
    schema = sub.add_parser("schema", help=schema_help, description=schema_help)
    schema.set_defaults(handler=_schema)


def run(argv: Sequence[str], out: TextIO | None = None) -> int:
    """Parse ``argv`` (starting with ``plan``), run it writing to ``out`` (default stdout),
    and return the exit code."""
    return run_alone(register, argv, out)
