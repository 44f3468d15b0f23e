"""The shared store on Redis (ElastiCache for Redis / Valkey): one pipeline per sync.

Every sync is a single non-transactional pipeline - one network round trip - holding the
replica's writes and the reads of the merged state. Counters are ``HINCRBY`` /
``HINCRBYFLOAT`` (atomic on their own); the two places where replicas could race run as
server-side Lua scripts: claiming an ejection (write the entry and only ever *extend* the
hash's expiry) and the compare-and-set of the primary (a switch wins only against the epoch
its replica last saw, so concurrent proposals yield one winner and one announcement).

Delivery is at-least-once: a round trip that times out after Redis applied it is sent again,
counting that interval's usage twice - an error on the safe side (less traffic for a paid
target, an earlier budget guard), and bounded by one sync's deltas.

Data this version cannot decode (``primary.epoch = "x"``, a usage count ``"not-a-number"``,
bytes that are not UTF-8, a key of the wrong type) never raises: the field is skipped and
reported in :attr:`Inbound.undecodable` (the link counts the sync as failed), an increment
Redis refused is handed back to be sent again, the primary's expiry is not renewed while its
epoch is unreadable, and the next sync deletes each bad field *if it still holds the value
that was read* - a compare-and-delete, so a value another replica repaired or rewrote since
is left alone. What a deleted field counted is lost (at most one bucket of one target's
usage, one quarter hour of spend, or the primary's epoch, which restarts at 0 like a store
that lost its data).

Needs the ``redis`` extra: ``pip install 'mangaroute[redis]'``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mangaroute.core.errors import MangarouteError
from mangaroute.core.fleet import SharedSettings
from mangaroute.shared.store import (
    DAY_QUARTERS,
    BadField,
    Inbound,
    Outbound,
    StoreUnavailable,
    decode_count,
    encode_ejection,
    parse_ejection,
    spend_quarters,
    usage_cells,
)

CLAIM_EJECTION = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return 1
"""

SWITCH_PRIMARY = """
local current = redis.call('HGET', KEYS[1], 'name')
local epoch = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '0')
if current == ARGV[2] or epoch ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'name', ARGV[2], 'epoch', epoch + 1, 'reason', ARGV[3],
           'replica', ARGV[4], 'at', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return 1
"""

RENEW_PRIMARY = """
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if epoch and epoch ~= '0' and not string.match(epoch, '^[1-9]%d*$') then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[1])
"""
"""Renew the primary's expiry unless its epoch is unreadable (then it is left to expire or
to the repair, never kept alive)."""

DELETE_IF_EQUAL = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""

SCRIPTS = (CLAIM_EJECTION, SWITCH_PRIMARY, RENEW_PRIMARY, DELETE_IF_EQUAL)
"""Every script a sync may run; each touches exactly one key (``KEYS[1]``), so a script never
spans two cluster slots whatever the deployment's hash tag."""

SHA1 = {script: hashlib.sha1(script.encode()).hexdigest() for script in SCRIPTS}
"""``EVALSHA`` names a script by the SHA-1 of its text, as ``SCRIPT LOAD`` computes it."""

READS = frozenset(("usage", "spend", "ejections", "primary", "replicas"))
"""The kinds of command whose reply is the merged state read back (sent again after a
``NOSCRIPT`` retry, so they read what the retried scripts wrote)."""


class SharedSetupError(MangarouteError, ValueError):
    """Shared state cannot start: something a person must fix before it can (the CLI says
    what and exits 2, without a traceback)."""


class RedisUnavailable(SharedSetupError, RuntimeError):
    """The ``redis`` package is not installed."""


def key_prefix(deployment: str) -> str:
    """``mangaroute:{<deployment>}:`` - the braces keep a deployment in one cluster slot."""
    return f"mangaroute:{{{deployment}}}:"


def connect(settings: SharedSettings) -> Callable[[], Any]:
    """A factory of the redis-py client for ``settings``: no retries (the next sync is the
    retry), socket and connect timeouts of ``timeout_ms``, TLS for ``rediss://`` URLs, the
    password from the environment variable ``password_env``.

    What a person must fix (the package missing, the password variable unset) raises
    :class:`SharedSetupError` here, at once; the network is touched only when the factory is
    called. ``cluster = true`` yields a ``redis.cluster.RedisCluster``, which asks the node
    in ``url`` for the slot map as soon as it is built - hence a factory, called by the first
    sync, so a replica starts (on its local view) while the cluster is unreachable."""
    try:
        import redis  # noqa: PLC0415 - optional dependency
        from redis.backoff import NoBackoff  # noqa: PLC0415
        from redis.cluster import RedisCluster  # noqa: PLC0415
        from redis.retry import Retry  # noqa: PLC0415
    except ImportError:
        raise RedisUnavailable(
            "shared state on Redis needs the redis package: pip install 'mangaroute[redis]'"
        ) from None
    timeout = settings.timeout_ms / 1000.0
    options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 0),
        "decode_responses": True,
        "encoding_errors": "surrogateescape",  # bytes that are not UTF-8 stay bad data
        "client_name": "mangaroute",
    }
    if settings.username is not None:
        options["username"] = settings.username
    if settings.password_env is not None:
        password = os.environ.get(settings.password_env)
        if password is None:
            raise SharedSetupError(
                f"[shared] password_env names the environment variable "
                f"{settings.password_env!r}, which is not set: export it with the Redis password"
            )
        options["password"] = password
    if settings.url.startswith("rediss://"):
        if settings.tls_ca_file is not None:
            options["ssl_ca_certs"] = settings.tls_ca_file
        if not settings.tls_verify:
            options["ssl_cert_reqs"] = "none"
            options["ssl_check_hostname"] = False
    url = settings.url
    if settings.cluster:
        # ``retry`` (none) is the cluster client's own; MOVED and ASK are still followed
        return lambda: RedisCluster.from_url(url, **options)
    options["health_check_interval"] = 0
    client = redis.Redis.from_url(url, **options)
    return lambda: client


@dataclass(frozen=True, slots=True)
class _Command:
    """One command of a sync's pipeline: what its reply means (``kind``, ``arg``) and how to
    queue it (a pipeline method and its arguments), so it can be queued again."""

    kind: str
    arg: Any
    method: str
    args: tuple[Any, ...]


class RedisStore:
    """Shared state of one deployment in Redis; see the module docstring.

    The Lua scripts run by ``EVALSHA``: their text crosses the network only when Redis does
    not know them - the first sync against a fresh server, or after a restart, a failover or
    ``SCRIPT FLUSH`` emptied its script cache. Then the commands answered ``NOSCRIPT`` are
    sent again after ``SCRIPT LOAD`` (to every primary of a cluster), together with the reads,
    so the merged state read back includes what the scripts wrote; nothing else is sent
    twice, so no increment counts twice.
    """

    def __init__(self, settings: SharedSettings, client: Any | None = None) -> None:
        self.settings = settings
        self._factory = connect(settings) if client is None else lambda: client
        self._client: Any | None = None
        self.prefix = key_prefix(settings.deployment)
        from redis.exceptions import (  # noqa: PLC0415 - optional dependency
            NoScriptError,
            RedisClusterException,
            RedisError,
        )

        # RedisClusterException (no node reachable, no slot map) is not a RedisError
        self._errors: tuple[type[BaseException], ...] = (
            RedisError,
            RedisClusterException,
            OSError,
        )
        self._no_script = NoScriptError
        self._repairs: list[BadField] = []
        self.script_loads = 0
        """How many times the scripts were loaded (once per server that lost them)."""

    @property
    def client(self) -> Any:
        """The redis-py client, built on first use (raises StoreUnavailable)."""
        if self._client is None:
            try:
                self._client = self._factory()
            except self._errors as exc:
                raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc
        return self._client

    def exchange(self, out: Outbound) -> Inbound:
        p = self.prefix
        commands: list[_Command] = []

        def add(kind: str, arg: Any, method: str, *args: Any) -> None:
            commands.append(_Command(kind, arg, method, args))

        def script(kind: str, arg: Any, text: str, key: str, *args: Any) -> None:
            # execute_command: redis-py's cluster pipeline blocks its ``evalsha`` method
            # (not the command), and routes EVALSHA by its key like any other
            add(kind, arg, "execute_command", "EVALSHA", SHA1[text], 1, key, *args)

        for bad in self._repairs:
            script("write", bad.key, DELETE_IF_EQUAL, p + bad.key, bad.field, bad.value)
        ejections_key = p + "ejections"
        primary_key = p + "primary"
        replicas_key = p + "replicas"
        key_ttl_ms = round(out.key_ttl_s * 1000)
        if out.proposal is not None:
            q = out.proposal
            script(
                "proposal",
                None,
                SWITCH_PRIMARY,
                primary_key,
                q.expected_epoch,
                q.to_target,
                q.reason,
                out.replica,
                f"{out.unix_s:.3f}",
                key_ttl_ms,
            )
        usage_ttl_ms = round(out.usage_ttl_s * 1000)
        for bucket, cells in out.usage.items():
            key = f"{p}usage:{bucket}"
            for name, (d_tokens, d_requests) in cells.items():
                if d_tokens:
                    add(
                        "add_usage",
                        (bucket, name, 0, d_tokens),
                        "hincrby",
                        key,
                        f"{name}|tok",
                        d_tokens,
                    )
                if d_requests:
                    add(
                        "add_usage",
                        (bucket, name, 1, d_requests),
                        "hincrby",
                        key,
                        f"{name}|req",
                        d_requests,
                    )
            add("write", f"usage:{bucket}", "pexpire", key, usage_ttl_ms)
        for quarter, usd in out.spend.items():
            day = quarter // DAY_QUARTERS
            key = f"{p}spend:{day}"
            add("add_spend", (quarter, usd), "hincrbyfloat", key, str(quarter), usd)
            add("write", f"spend:{day}", "expire", key, 3 * 86_400)
        for claim in out.claims:
            ttl_ms = max(1, round((claim.until_unix - out.unix_s) * 1000))
            field_name = f"{claim.target}|{out.replica}"
            entry = encode_ejection(claim)
            script("write", "ejections", CLAIM_EJECTION, ejections_key, field_name, entry, ttl_ms)
        gone = [f"{target}|{out.replica}" for target in out.released] + list(out.expired)
        if gone:
            add("write", "ejections", "hdel", ejections_key, *gone)
        add("write", "replicas", "zadd", replicas_key, {out.replica: out.unix_s})
        add(
            "write",
            "replicas",
            "zremrangebyscore",
            replicas_key,
            "-inf",
            out.unix_s - out.key_ttl_s,
        )
        add("write", "replicas", "pexpire", replicas_key, key_ttl_ms)
        script("write", "primary", RENEW_PRIMARY, primary_key, key_ttl_ms)
        for bucket in out.read_buckets:
            add("usage", bucket, "hgetall", f"{p}usage:{bucket}")
        for day in out.read_spend_days:
            add("spend", day, "hgetall", f"{p}spend:{day}")
        add("ejections", None, "hgetall", ejections_key)
        add("primary", None, "hgetall", primary_key)
        add("replicas", None, "zcount", replicas_key, out.live_after_unix, "+inf")
        results, sent = self._send(commands)
        inbound = self._parse(commands, results, out)
        inbound.commands = sent
        self._repairs = [b for b in inbound.undecodable if b.value is not None and b.field]
        return inbound

    def _send(self, commands: list[_Command]) -> tuple[list[Any], int]:
        """The replies to ``commands`` in one round trip - two when Redis had lost the
        scripts (see the class docstring) - and the number of commands sent."""
        results = self._run(commands)
        lost = {i for i, value in enumerate(results) if isinstance(value, self._no_script)}
        if lost:
            self.load_scripts()
            again = [i for i, c in enumerate(commands) if i in lost or c.kind in READS]
            for i, value in zip(again, self._run([commands[i] for i in again]), strict=True):
                results[i] = value
            return results, len(commands) + len(again) + len(SCRIPTS)
        return results, len(commands)

    def _run(self, commands: list[_Command]) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for command in commands:
            getattr(pipe, command.method)(*command.args)
        return self.execute(pipe, replies=True)

    def load_scripts(self) -> None:
        """``SCRIPT LOAD`` every script (a cluster client sends it to every primary)."""
        try:
            for text in SCRIPTS:
                self.client.script_load(text)
        except self._errors as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc
        self.script_loads += 1

    def execute(self, pipe: Any, *, replies: bool = False) -> list[Any]:
        """Send a pipeline built on :attr:`client`; a connection error or a timeout becomes
        :class:`StoreUnavailable`, and so does an error reply unless ``replies`` (then the
        error takes the command's place in the result)."""
        try:
            return list(pipe.execute(raise_on_error=not replies))
        except self._errors as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc
        finally:
            pipe.reset()

    def _parse(self, commands: list[_Command], results: list[Any], out: Outbound) -> Inbound:
        inbound = Inbound(commands=len(results))
        bad = inbound.undecodable
        if out.read_spend_days:
            inbound.spend = {}
        for command, value in zip(commands, results, strict=True):
            kind, arg = command.kind, command.arg
            if isinstance(value, Exception):
                self._refused(kind, arg, value, inbound)
            elif kind == "usage":
                inbound.usage[arg] = usage_cells(f"usage:{arg}", value, bad)
            elif kind == "spend":
                assert inbound.spend is not None
                inbound.spend.update(spend_quarters(f"spend:{arg}", value, bad))
            elif kind == "ejections":
                for field_name, entry in value.items():
                    parsed = parse_ejection(field_name, entry)
                    if parsed is None:
                        bad.append(BadField("ejections", field_name, entry))
                    else:
                        inbound.ejections.append(parsed)
            elif kind == "primary":
                epoch = decode_count(value.get("epoch", "0"))
                if epoch is None:
                    bad.append(BadField("primary", "epoch", value["epoch"]))
                else:
                    inbound.primary = value.get("name") or None
                    inbound.primary_epoch = epoch
                    inbound.primary_reason = value.get("reason", "")
            elif kind == "replicas":
                inbound.replicas = max(1, int(value))
            elif kind == "proposal":
                inbound.proposal_won = bool(value)
        return inbound

    @staticmethod
    def _refused(kind: str, arg: Any, error: Exception, inbound: Inbound) -> None:
        """Redis answered one command with an error (a field that is not a number, a key
        of the wrong type): hand a refused increment back, report the command as bad data."""
        reason = f"{type(error).__name__}: {error}"
        if kind == "add_usage":
            bucket, name, axis, delta = arg
            cell = inbound.rejected_usage.setdefault(bucket, {}).setdefault(name, [0, 0])
            cell[axis] += delta
            field_name = f"{name}|{('tok', 'req')[axis]}"
            inbound.undecodable.append(BadField(f"usage:{bucket}", field_name, None, reason))
        elif kind == "add_spend":
            quarter, usd = arg
            inbound.rejected_spend[quarter] = inbound.rejected_spend.get(quarter, 0.0) + usd
            key = f"spend:{quarter // DAY_QUARTERS}"
            inbound.undecodable.append(BadField(key, str(quarter), None, reason))
        else:
            keys = {"usage": f"usage:{arg}", "spend": f"spend:{arg}", "proposal": "primary"}
            where = arg if kind == "write" else keys.get(kind, kind)
            inbound.undecodable.append(BadField(where, None, None, reason))

    def ping(self) -> float:
        """Round-trip time of one ``PING`` in milliseconds (raises StoreUnavailable)."""
        import time  # noqa: PLC0415

        start = time.perf_counter()
        try:
            self.client.ping()
        except self._errors as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc
        return (time.perf_counter() - start) * 1000.0

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
