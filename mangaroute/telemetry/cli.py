"""``mangaroute telemetry``: the CloudWatch dashboard and alarms, as code.

:func:`register` adds the ``telemetry`` group (alias ``cloudwatch``) to the main CLI's
sub-parsers; every leaf sets ``handler(args, out) -> int``, the main CLI's convention::

    mangaroute telemetry dashboard              # what would be created, as text
    mangaroute telemetry dashboard --json       # the dashboard body
    mangaroute telemetry dashboard --dry-run    # the put_dashboard call as JSON
    mangaroute telemetry dashboard --apply      # make it (boto3; --endpoint-url for moto)
    mangaroute telemetry alarms [--dry-run | --apply] [--alarm-action ARN ...]

Exit codes: 0 done, 1 an AWS call failed, 2 bad input (:mod:`mangaroute.cli.output`, as for
every command; under ``--json`` a failure is a JSON error object).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any, TextIO

from mangaroute.cli.options import add_config_option, add_json_option, router_config
from mangaroute.cli.output import CommandFailed, emit, guarded, print_usage, run_alone, write_json
from mangaroute.telemetry import cloudwatch as cw
from mangaroute.telemetry import dashboard as board

__all__ = ["register", "run"]

PROG = "mangaroute telemetry"


def _settings(args: argparse.Namespace) -> tuple[Any, board.AlarmSettings]:
    config = router_config(args.config)
    settings = board.settings_for(
        config,
        budget_ms=args.budget_ms,
        daily_budget_usd=args.daily_budget_usd,
        max_switches=getattr(args, "max_switches", None),
        prefix=getattr(args, "prefix", None),
        actions=tuple(getattr(args, "alarm_actions", None) or ()) or None,
    )
    return config, settings


def _region(args: argparse.Namespace, config: Any) -> str:
    return str(args.region or config.targets[0].region)


def _dashboard(args: argparse.Namespace, out: TextIO) -> int:
    config, settings = _settings(args)
    region = _region(args, config)
    call = board.dashboard_call(
        config, name=args.name, namespace=args.namespace, region=region, settings=settings
    )
    if args.apply:
        return _apply(args, [call], region, out)
    if args.dry_run:
        write_json([call.to_dict()], out)
    elif args.json:
        write_json(json.loads(call.params["DashboardBody"]), out)
    else:
        body = json.loads(call.params["DashboardBody"])
        print(f"dashboard {args.name} in {region}, namespace {args.namespace}:", file=out)
        for widget in body["widgets"]:
            props = widget["properties"]
            print(f"  {props['title']}  [{props['stat']}, {props['period']} s]", file=out)
        _nothing_called(out)
    return 0


def _alarms(args: argparse.Namespace, out: TextIO) -> int:
    config, settings = _settings(args)
    calls = board.alarm_calls(config, namespace=args.namespace, settings=settings)
    if args.apply:
        return _apply(args, calls, _region(args, config), out)
    if args.dry_run:
        write_json([call.to_dict() for call in calls], out)
    elif args.json:
        write_json([call.params for call in calls], out)
    else:
        for call in calls:
            p = call.params
            stat = p.get("ExtendedStatistic") or p.get("Statistic")
            op = {"GreaterThanThreshold": ">", "LessThanThreshold": "<"}[p["ComparisonOperator"]]
            print(
                f"{p['AlarmName']}: {p['MetricName']} {stat} {op} {p['Threshold']:g} "
                f"({p['Period']} s x {p['EvaluationPeriods']})",
                file=out,
            )
        _nothing_called(out)
    return 0


def _nothing_called(out: TextIO) -> None:
    print("\nNothing was called: --dry-run prints the calls as JSON, --apply makes them.", file=out)


def _apply(
    args: argparse.Namespace, calls: Sequence[board.CloudWatchCall], region: str, out: TextIO
) -> int:
    import boto3  # noqa: PLC0415 - only --apply needs the AWS SDK
    from botocore.config import Config  # noqa: PLC0415
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    client = boto3.client(
        "cloudwatch",
        region_name=region,
        endpoint_url=args.endpoint_url,
        config=Config(retries={"mode": "standard", "max_attempts": args.max_attempts}),
    )
    try:
        done = board.apply(calls, client)
    except (ClientError, BotoCoreError) as exc:
        raise CommandFailed(f"AWS call failed: {exc}") from exc
    finally:
        client.close()
    emit(
        args,
        done,
        lambda: "\n".join(f"{i['operation']} {i['name']}: HTTP {i['status']}" for i in done),
        out,
    )
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    add_config_option(parser)
    parser.add_argument(
        "--namespace",
        default=cw.DEFAULT_NAMESPACE,
        help=f"CloudWatch namespace (default {cw.DEFAULT_NAMESPACE})",
    )
    parser.add_argument("--region", help="AWS region (default: the first target's)")
    parser.add_argument(
        "--budget-ms", type=float, help="p99 latency budget (default: the config's, else 1500)"
    )
    parser.add_argument(
        "--daily-budget-usd",
        type=float,
        help="daily spend budget (default: the config's monthly ceiling / 30, else 2000)",
    )
    add_json_option(parser)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="print the API calls as JSON")
    mode.add_argument("--apply", action="store_true", help="make the calls (idempotent)")
    parser.add_argument("--endpoint-url", help="AWS endpoint override (e.g. a moto server)")
    parser.add_argument("--max-attempts", type=int, default=3, help="botocore attempts per call")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``telemetry`` (alias ``cloudwatch``) with ``dashboard`` and ``alarms``."""
    group = subparsers.add_parser(
        "telemetry",
        aliases=["cloudwatch"],
        help="CloudWatch dashboard and alarms for the configured targets",
        description="CloudWatch dashboard and alarms as code; nothing is called without --apply.",
    )
    group.set_defaults(handler=print_usage(group))
    sub = group.add_subparsers(dest="telemetry_command", metavar="COMMAND")
    text = "the dashboard: decisions, p99 latency, success, cost, switches, breakers"
    dash = sub.add_parser("dashboard", help=text, description=text)
    _common(dash)
    dash.add_argument("--name", default="MangaAssist-Deployment", help="dashboard name")
    dash.set_defaults(handler=guarded(_dashboard, PROG))
    text = "the alarms: p99 over budget, error rate, switch storms, spend pace"
    alarm = sub.add_parser("alarms", help=text, description=text)
    _common(alarm)
    alarm.add_argument("--prefix", help="alarm name prefix (default mangaroute)")
    alarm.add_argument(
        "--max-switches", type=int, help="switches allowed in 15 minutes (default 3)"
    )
    alarm.add_argument(
        "--alarm-action",
        dest="alarm_actions",
        action="append",
        metavar="ARN",
        help="notify this ARN (e.g. an SNS topic) when an alarm fires (repeatable)",
    )
    alarm.set_defaults(handler=guarded(_alarms, PROG))


def run(argv: Sequence[str], out: TextIO | None = None) -> int:
    """Parse ``argv`` (starting with ``telemetry``), run it, return the exit code."""
    return run_alone(register, argv, out)
