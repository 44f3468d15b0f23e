"""``mangaroute shared status``: what the fleet shares right now, read-only."""

from __future__ import annotations

import argparse
import time
from typing import Any, TextIO

from mangaroute.cli.options import (
    CONFIG_ENV,
    ConfigNotGiven,
    add_config_option,
    add_json_option,
    config_path,
    laid_out_help,
)
from mangaroute.cli.output import CommandFailed, emit
from mangaroute.config import load_config
from mangaroute.core.errors import ConfigError
from mangaroute.core.fleet import redact_url
from mangaroute.shared.store import (
    DAY_QUARTERS,
    QUARTER_S,
    BadField,
    Ejection,
    StoreUnavailable,
    decode_count,
    parse_ejection,
    spend_quarters,
    usage_cells,
)

redact = redact_url
"""The URL with its password hidden (the sidecar logs the URL it shares state at)."""

DESCRIPTION = """\
Read the shared state of a deployment from Redis without joining it: the live replicas,
the shared primary, the ejections in force, the fleet's usage of each target over the last
window against its capacity, and today's pay-per-use spend (UTC day). Needs a config with a
[shared] table (see docs/shared.md) and the redis extra: pip install 'mangaroute[redis]'.
Exit 0 when Redis answered, 1 when it did not, 2 when it cannot be asked (no [shared]
table, the redis package missing, the password_env variable not set); with --json a failure
is a JSON error object on stdout."""


def register(commands: Any) -> argparse.ArgumentParser:
    """Add ``shared status`` to the main CLI's sub-parsers."""
    shared: argparse.ArgumentParser = commands.add_parser(
        "shared",
        help="inspect the state shared by a deployment's replicas (Redis)",
        description="Inspect the state shared by a deployment's replicas (Redis).",
    )
    actions = shared.add_subparsers(dest="shared_command", metavar="ACTION", required=True)
    status = actions.add_parser(
        "status",
        help="show replicas, primary, ejections, fleet usage and spend (read-only)",
        **laid_out_help(DESCRIPTION),
    )
    add_config_option(status, fallback="none: required", needs=" with a [shared] table")
    add_json_option(status)
    status.set_defaults(handler=cmd_status)
    return status


def read_status(config: Any) -> dict[str, Any]:
    """The deployment's shared state as a JSON-ready dict (raises StoreUnavailable)."""
    from mangaroute.shared.redis_store import RedisStore, key_prefix  # noqa: PLC0415

    settings = config.shared
    store = RedisStore(settings)
    try:
        rtt_ms = store.ping()
        client = store.client
        prefix = key_prefix(settings.deployment)
        now = time.time()
        window = config.window
        pipe = client.pipeline(transaction=False)
        pipe.zrange(prefix + "replicas", 0, -1, withscores=True)
        pipe.hgetall(prefix + "primary")
        pipe.hgetall(prefix + "ejections")
        first = int((now - window.window_s) // window.bucket_s) + 1
        buckets = list(range(first, int(now // window.bucket_s) + 1))
        for bucket in buckets:
            pipe.hgetall(f"{prefix}usage:{bucket}")
        day = int(now // QUARTER_S) // DAY_QUARTERS
        pipe.hgetall(f"{prefix}spend:{day}")
        replies = store.execute(pipe, replies=True)
    finally:
        store.close()
    keys = ["replicas", "primary", "ejections", *(f"usage:{b}" for b in buckets), f"spend:{day}"]
    bad: list[BadField] = []
    results = [_answer(key, reply, bad) for key, reply in zip(keys, replies, strict=True)]
    replicas, primary, ejections = results[0], results[1], results[2]
    usage_rows = results[3 : 3 + len(buckets)]
    spend = spend_quarters(keys[-1], results[-1], bad)
    span_s = max(window.bucket_s, now - first * window.bucket_s)
    totals: dict[str, list[int]] = {}
    for key, row in zip(keys[3:], usage_rows, strict=False):
        for name, (tokens, requests) in usage_cells(key, row, bad).items():
            cell = totals.setdefault(name, [0, 0])
            cell[0] += tokens
            cell[1] += requests
    live_after = now - settings.stale_after_ms / 1000.0
    usage = {}
    for target in config.targets:
        tokens, requests = totals.get(target.name, [0, 0])
        tpm = tokens / span_s * 60.0
        rps = requests / span_s
        capacity = target.capacity
        shares = []
        if capacity.tokens_per_minute:
            shares.append(tpm / capacity.tokens_per_minute)
        if capacity.requests_per_second:
            shares.append(rps / capacity.requests_per_second)
        usage[target.name] = {
            "tokens_per_minute": round(tpm, 1),
            "requests_per_second": round(rps, 3),
            "capacity_tokens_per_minute": capacity.tokens_per_minute,
            "capacity_requests_per_second": capacity.requests_per_second,
            "utilization": round(max(shares), 4) if shares else None,
        }
    return {
        "url": redact(settings.url),
        "deployment": settings.deployment,
        "round_trip_ms": round(rtt_ms, 3),
        "replicas": [
            {"replica": name, "last_sync_s_ago": round(now - at, 3), "live": at >= live_after}
            for name, at in replicas
        ],
        "primary": _primary(primary, bad),
        "ejections": [
            {
                "target": e.target,
                "replica": e.replica,
                "state": e.state,
                "reason": e.reason,
                "expires_in_s": round(e.until_unix - now, 1),
            }
            for e in _ejections(ejections, bad)
            if e.until_unix > now
        ],
        "usage": usage,
        "spend_today_usd": round(sum(spend.values()), 4),
        "undecodable": [str(b) for b in bad],
    }


def _answer(key: str, reply: Any, bad: list[BadField]) -> Any:
    """A read's reply, or an empty one (and a note in ``bad``) when Redis refused it."""
    if isinstance(reply, Exception):
        bad.append(BadField(key, None, None, f"{type(reply).__name__}: {reply}"))
        return [] if key == "replicas" else {}
    return reply


def _primary(row: dict[str, str], bad: list[BadField]) -> dict[str, Any] | None:
    if not row:
        return None
    epoch = decode_count(row.get("epoch", "0"))
    if epoch is None:
        bad.append(BadField("primary", "epoch", row["epoch"]))
    return {
        "target": row.get("name"),
        "epoch": epoch,
        "reason": row.get("reason", ""),
        "by": row.get("replica", ""),
    }


def _ejections(row: dict[str, str], bad: list[BadField]) -> list[Ejection]:
    entries = []
    for field_name, value in row.items():
        entry = parse_ejection(field_name, value)
        if entry is None:
            bad.append(BadField("ejections", field_name, value))
        else:
            entries.append(entry)
    return entries


def cmd_status(args: argparse.Namespace, out: TextIO) -> int:
    path = config_path(args.config)
    if path is None:
        raise ConfigNotGiven(f"shared status needs --config FILE (or {CONFIG_ENV}=FILE)")
    config = load_config(path)
    if config.shared is None:
        raise ConfigError("has no [shared] table (see docs/shared.md)", source=path)
    try:
        status = read_status(config)
    except StoreUnavailable as exc:
        raise CommandFailed(
            f"shared state at {redact(config.shared.url)} is unreachable: {exc}"
        ) from exc
    emit(args, status, lambda: _status_text(status), out)
    return 0


def _status_text(status: dict[str, Any]) -> str:
    live = [r for r in status["replicas"] if r["live"]]
    silent = len(status["replicas"]) - len(live)
    lines = [
        f"deployment {status['deployment']} at {status['url']} "
        f"(round trip {status['round_trip_ms']:.2f} ms)",
        f"replicas: {len(live)} live{f', {silent} silent' if silent else ''}",
    ]
    for row in status["replicas"]:
        lines.append(f"  {row['replica']:<32} last sync {row['last_sync_s_ago']:.1f} s ago")
    primary = status["primary"]
    if primary:
        epoch = "unreadable" if primary["epoch"] is None else primary["epoch"]
        lines.append(
            f"primary: {primary['target']} (epoch {epoch}, by {primary['by']}: {primary['reason']})"
        )
    else:
        lines.append("primary: none switched yet (each replica uses the configured primary)")
    lines.append(f"ejections: {len(status['ejections'])}")
    for e in status["ejections"]:
        lines.append(
            f"  {e['target']:<20} {e['state']:<9} by {e['replica']} ({e['reason']}), "
            f"expires in {e['expires_in_s']:.0f} s unless renewed"
        )
    lines.append("fleet usage over the last window:")
    for name, row in status["usage"].items():
        util = f"{row['utilization']:.0%} of capacity" if row["utilization"] is not None else ""
        lines.append(
            f"  {name:<20} {row['tokens_per_minute']:>12,.0f} tokens/min "
            f"{row['requests_per_second']:>8.2f} req/s  {util}"
        )
    lines.append(f"pay-per-use spend today (UTC): ${status['spend_today_usd']:,.2f}")
    if status["undecodable"]:
        lines.append(
            "undecodable (left out above; the next sync of a replica deletes them): "
            f"{len(status['undecodable'])}"
        )
        lines += [f"  {line}" for line in status["undecodable"]]
    return "\n".join(lines)
