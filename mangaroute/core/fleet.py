"""What the router knows about the other replicas of its deployment, and what it tells them.

A router alone sees only its own traffic. With shared state (:mod:`mangaroute.shared`) a
background link publishes this replica's deltas and reads the fleet's merged view every
``sync_interval_ms``; the router folds that view into its snapshot at the next rebuild. The
core knows nothing of the transport: it hands out a :class:`LocalSample` and accepts a
:class:`FleetView`, both plain values. ``choose()`` never waits on either.

What is merged, and how:

* **usage** - the other replicas' tokens per minute and requests per second on each target
  are *added* to this replica's own, so capacity filters, spill-over shares and the switcher's
  capacity threshold judge the fleet's load against the target's (fleet-wide) capacity;
* **ejections** - a target another replica's breaker holds open (or is probing) is shown as
  open here too (reason ``fleet:<reason>``) until that replica closes it or stops renewing it;
  the local breaker is untouched, so no replica double-counts an ejection;
* **spend** - the other replicas' pay-per-use spend per quarter hour is added to this
  replica's ledger, so the budget guard paces the fleet's spend against the budget;
* **primary** - a switch decided here becomes a *proposal*; the link settles it with a
  compare-and-set on the shared primary, and only the replica that wins announces it (one
  :class:`~mangaroute.core.snapshot.SwitchEvent` per switch, not one per replica). The others
  adopt the new primary silently.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mangaroute.core.breaker import BreakerState
from mangaroute.core.limits import check_fields
from mangaroute.core.policy.context import CHECKPOINT_S, SpendLedger

_DEPLOYMENT = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***``: the userinfo's (``redis://u:pw@h``)
    and a ``password=`` query argument (redis-py reads both, see ``redis.connection.parse_url``).

    The authority ends at the first ``/``, ``?`` or ``#`` and the userinfo at its last ``@``,
    as :func:`urllib.parse.urlsplit` reads them, so a password holding ``@`` is hidden whole.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return _QUERY_PASSWORD.sub(r"\1***", url)
    ends = [i for i in (rest.find(c) for c in "/?#") if i >= 0]
    end = min(ends, default=len(rest))
    netloc, tail = rest[:end], rest[end:]
    userinfo, at, host = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{userinfo.split(':', 1)[0]}:***@{host}"
    return f"{scheme}://{netloc}" + _QUERY_PASSWORD.sub(r"\1***", tail)


@dataclass(frozen=True, slots=True)
class SharedSettings:
    """The ``[shared]`` table of a config: where the fleet's state lives and how fresh it is."""

    url: str
    """``redis://host:6379/0``, ``rediss://`` for TLS, ``unix:///path/redis.sock``."""
    deployment: str
    """Namespace of every key: replicas share state only with the same deployment name."""
    sync_interval_ms: float = 250.0
    """How often a replica publishes its deltas and reads the merged view."""
    stale_after_ms: float = 2000.0
    """The staleness bound: a fleet view older than this is dropped and the replica routes on
    its local view alone until a sync succeeds again."""
    timeout_ms: float = 200.0
    """Socket timeout of each sync round trip (and of connecting)."""
    key_ttl_s: float = 3600.0
    """Keys nobody renews expire after this long (usage buckets and ejections sooner)."""
    spend_every: int = 8
    """Read the fleet's spend every this many syncs (it moves slowly; usage every sync)."""
    username: str | None = None
    password_env: str | None = None
    """Name of the environment variable holding the password (``AUTH``); the password itself
    never goes into the config file."""
    tls_ca_file: str | None = None
    tls_verify: bool = True
    replica_id: str | None = None
    """Defaults to ``<hostname>-<pid>-<random>``."""
    cluster: bool = False
    """Cluster-mode Redis/Valkey (ElastiCache with cluster mode enabled): ``url`` names one
    node (the configuration endpoint) and the client follows the slots to the others."""

    def __repr__(self) -> str:
        """The fields, with the URL's password hidden (a repr ends up in logs and tracebacks;
        so does the ``RouterConfig`` that holds these settings)."""
        fields = ", ".join(
            f"{name}={redact_url(self.url) if name == 'url' else getattr(self, name)!r}"
            for name in self.__dataclass_fields__
        )
        return f"SharedSettings({fields})"

    def __post_init__(self) -> None:
        if not self.url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(
                f"url must start with redis://, rediss:// or unix://, got {redact_url(self.url)!r}"
            )
        if self.cluster and self.url.startswith("unix://"):
            raise ValueError(
                "cluster = true needs a redis:// or rediss:// URL naming a cluster node, "
                f"got {redact_url(self.url)!r}"
            )
        if not _DEPLOYMENT.match(self.deployment):
            raise ValueError(
                "deployment must be 1-64 characters of letters, digits and _.:-, "
                f"got {self.deployment!r}"
            )
        check_fields(self, "shared")
        if self.stale_after_ms < 2 * self.sync_interval_ms:
            raise ValueError(
                f"stale_after_ms ({self.stale_after_ms:g}) must be at least twice "
                f"sync_interval_ms ({self.sync_interval_ms:g})"
            )

    @property
    def eject_bound_ms(self) -> float:
        """Worst case from one replica's ejection to every replica avoiding the target: the
        ejecting replica publishes at once, the others read within a sync interval, each
        round trip may take up to the timeout, and the next snapshot rebuild applies it."""
        return self.sync_interval_ms + 2 * self.timeout_ms


@dataclass(frozen=True, slots=True)
class LocalBreaker:
    """A breaker of this replica that is not closed."""

    target: str
    state: BreakerState
    reason: str
    reopen_in_s: float
    """Seconds until an open breaker turns half-open (0 when half-open)."""


@dataclass(frozen=True, slots=True)
class LocalSample:
    """This replica's cumulative counters at one instant, for the link to diff."""

    unix_s: float
    tokens: Mapping[str, int]
    """Input + output tokens recorded per target since the router started."""
    requests: Mapping[str, int]
    spend_usd: float
    """Pay-per-use spend since the router started."""
    breakers: tuple[LocalBreaker, ...]
    primary: str | None
    proposal: tuple[str, str, str] | None
    """A switch decided here and not yet settled: ``(from, to, reason)``."""
    primary_epoch: int


@dataclass(frozen=True, slots=True)
class FleetEjection:
    target: str
    replica: str
    state: str
    reason: str


@dataclass(frozen=True, slots=True)
class FleetView:
    """The other replicas' share of the picture, as of ``unix_s``."""

    unix_s: float
    replicas: int
    """Live replicas of the deployment, this one included."""
    tokens_per_minute: Mapping[str, float] = field(default_factory=dict)
    """The other replicas' usage per target (this replica's own is not in it)."""
    requests_per_second: Mapping[str, float] = field(default_factory=dict)
    ejections: tuple[FleetEjection, ...] = ()
    """Targets other replicas hold open or are probing."""
    spend_by_quarter: Mapping[int, float] = field(default_factory=dict)
    """The other replicas' spend (USD) per quarter hour (``int(unix_s // 900)``)."""
    primary: str | None = None
    primary_epoch: int = 0
    primary_reason: str = ""
    """Why the replica that made the fleet's last switch made it."""

    def ejected(self, target: str) -> FleetEjection | None:
        for ejection in self.ejections:
            if ejection.target == target:
                return ejection
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "unix_time": round(self.unix_s, 3),
            "replicas": self.replicas,
            "others_tokens_per_minute": {k: round(v, 1) for k, v in self.tokens_per_minute.items()},
            "others_requests_per_second": {
                k: round(v, 3) for k, v in self.requests_per_second.items()
            },
            "ejections": [
                {"target": e.target, "replica": e.replica, "state": e.state, "reason": e.reason}
                for e in self.ejections
            ],
            "others_spend_usd": round(sum(self.spend_by_quarter.values()), 4),
            "primary": self.primary,
            "primary_epoch": self.primary_epoch,
            "primary_reason": self.primary_reason,
        }


class FleetSpend(SpendLedger):
    """This replica's ledger plus the other replicas' spend per quarter hour."""

    __slots__ = ("_local", "_others")

    def __init__(self, local: SpendLedger, others: Mapping[int, float]) -> None:
        super().__init__()
        self._local = local
        self._others = others
        self.total_usd = local.total_usd + sum(others.values())

    def since(self, unix_s: float) -> float:
        first = math.ceil(unix_s / CHECKPOINT_S - 1e-9)
        others = sum(usd for quarter, usd in self._others.items() if quarter >= first)
        return self._local.since(unix_s) + others
