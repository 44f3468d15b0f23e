"""Every section of the router's TOML, declared once.

A :class:`Section` lists its keys: name, kind, whether required, default and range. The
reader (:class:`mangaroute.config.Table`) rejects a key its section does not declare and
refuses to read one it does not declare, so the reader, the JSON Schema
(:mod:`mangaroute.config.schema`) and ``docs/config.md`` cannot drift apart. Defaults come
from the settings dataclass each section fills; numeric ranges come from
:data:`~mangaroute.core.limits.LIMITS`. A policy part's own table (``[policies.NAME.headroom]``)
is declared here too and handed to ``register_filter/_ranker/_picker`` with the part.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mangaroute.core.breaker import BreakerPolicy
from mangaroute.core.fleet import SharedSettings
from mangaroute.core.limits import LIMITS, section_names
from mangaroute.core.policy.base import Policy
from mangaroute.core.policy.budget import BudgetGuard
from mangaroute.core.policy.canary import Canary
from mangaroute.core.policy.cost import CostUnderSlo
from mangaroute.core.policy.filters import Headroom, LatencyCeiling
from mangaroute.core.policy.pickers import PrimaryShare, Weighted
from mangaroute.core.policy.prediction import LatencyPredictor, Reliable
from mangaroute.core.policy.rankers import CheapestWithinSlo, LowestLatency, WeightedScore
from mangaroute.core.policy.spillover import Spillover
from mangaroute.core.policy.switcher import SwitcherSettings
from mangaroute.core.scoring import ScoreWeights
from mangaroute.core.settings import WindowSettings
from mangaroute.core.targets import Capacity, LatencyProfile, Pattern, Pricing, Target

KINDS = (
    "number",
    "integer",
    "string",
    "bool",
    "names",
    "enum",
    "table",
    "tables",
    "array",
    "other",
)
"""``names`` is a list of names; ``table`` one sub-table (its :attr:`Key.section`);
``tables`` a table of named sub-tables, each read by :attr:`Key.section`; ``array`` an array
of tables (``[[NAME]]``), each read by :attr:`Key.section`; ``other`` a shape the others do
not cover, described by :attr:`Key.schema`."""


@dataclass(frozen=True, slots=True)
class Key:
    """One key of a section. ``default`` ``None`` means unset (or computed: ``default_doc``
    says how); ``limit`` names its range in LIMITS; ``choices`` the names an ``enum`` (or
    each entry of ``names``) may take, or a function returning them (registries grow)."""

    name: str
    kind: str
    description: str = ""
    required: bool = False
    default: Any = None
    default_doc: str = ""
    limit: str | None = None
    choices: tuple[str, ...] | Callable[[], tuple[str, ...]] = ()
    section: Section | None = None
    schema: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: unknown kind {self.kind!r}")
        if self.limit is not None and self.limit not in LIMITS:
            raise ValueError(f"{self.name}: no LIMITS entry {self.limit!r}")

    def names(self) -> tuple[str, ...]:
        """The allowed names (``choices`` called when it is a function)."""
        return self.choices() if callable(self.choices) else self.choices


@dataclass(frozen=True, slots=True)
class Section:
    """A TOML table: its keys, what reads it, and whether it may also hold a sub-table for
    each policy part it uses (``parts``, the ``[policies.NAME]`` table)."""

    title: str
    """How the docs name it: ``[router]``, ``[targets.NAME]``, ``[policies.NAME.headroom]``."""
    read_by: str
    description: str
    keys: tuple[Key, ...] = ()
    parts: bool = False

    def __post_init__(self) -> None:
        names = [key.name for key in self.keys]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.title}: a key is declared twice")

    @property
    def names(self) -> frozenset[str]:
        return frozenset(key.name for key in self.keys)

    def get(self, name: str) -> Key:
        for key in self.keys:
            if key.name == name:
                return key
        raise KeyError(name)


def field_default(cls: type, name: str) -> Any:
    """The default of dataclass ``cls``'s field ``name`` (the one place it is written)."""
    for item in dataclasses.fields(cls):
        if item.name == name:
            if item.default is not dataclasses.MISSING:
                return item.default
            if item.default_factory is not dataclasses.MISSING:
                return item.default_factory()
            break
    raise LookupError(f"{cls.__name__}.{name} has no default")


def settings_keys(limits: str, defaults: object, **docs: str) -> tuple[Key, ...]:
    """A key for every setting of LIMITS section ``limits`` that ``defaults`` (an instance of
    the settings class the section fills) has, defaulting to its value there: what
    :meth:`mangaroute.config.Table.numbers` reads."""
    keys = []
    for name in section_names(limits):
        if hasattr(defaults, name):
            limit = f"{limits}.{name}"
            kind = "integer" if LIMITS[limit].integer else "number"
            value = getattr(defaults, name)
            keys.append(Key(name, kind, docs.get(name, ""), default=value, limit=limit))
    return tuple(keys)


_KIND_OF_TYPE = {int: "integer", float: "number", str: "string", bool: "bool"}


def dataclass_keys(cls: type, *, skip: tuple[str, ...] = (), **docs: str) -> tuple[Key, ...]:
    """A key for every plain field of dataclass ``cls`` (int, float, str, bool, or one of
    them or ``None``) but ``skip``, its kind from the field's type and its default from the
    class. A field without a ``None`` option is required: a file that uses the section gives
    it (a planning profile is complete); its default is still declared, for the reference."""
    hints = typing.get_type_hints(cls)
    keys = []
    for item in dataclasses.fields(cls):
        if item.name in skip:
            continue
        hint = hints[item.name]
        options = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
        kind = _KIND_OF_TYPE.get(options[0]) if len(options) == 1 else None
        if kind is None:
            raise TypeError(f"{cls.__name__}.{item.name}: declare {hint!r} by hand")
        optional = len(options) < len(typing.get_args(hint))
        default = field_default(cls, item.name)
        keys.append(Key(item.name, kind, docs.get(item.name, ""), not optional, default))
    return tuple(keys)


def _bool(cls: type, name: str, description: str) -> Key:
    return Key(name, "bool", description, default=field_default(cls, name))


def _number(name: str, limit: str, description: str = "", **more: Any) -> Key:
    kind = "integer" if LIMITS[limit].integer else "number"
    return Key(name, kind, description, limit=limit, **more)


_HOUR_WINDOW = {
    "type": "array",
    "items": {"type": "number", "minimum": 0, "maximum": 24},
    "minItems": 2,
    "maxItems": 2,
}
_TIME_ZONE = Key("time_zone", "string", "an IANA time zone for local hours (e.g. Asia/Tokyo)")

ROUTER = Section(
    "[router]",
    "mangaroute.config.parse_config -> WindowSettings",
    "The sliding window, the decision ledger, and defaults for the whole file.",
    (
        Key("region", "string", "AWS region of any target that does not name its own"),
        Key(
            "default_class",
            "string",
            "request class used when a call names none",
            default_doc="the first [classes.NAME]",
        ),
        Key(
            "streamed",
            "bool",
            "calls are streamed: predictions judge time to first token",
            default=False,
        ),
        Key(
            "quality",
            "names",
            "the targets' tiers ranked by answer quality, lowest first",
            default=(),
        ),
        *settings_keys(
            "router",
            WindowSettings(),
            window_s="sliding window length",
            bucket_s="width of one window bucket",
            relative_error="percentile accuracy of the latency histograms",
            min_samples="samples in the window before observations replace the prior",
            refresh_ms="after a change, the snapshot is rebuilt at most this often",
            decision_ttl_s="how long an unrecorded decision counts as in flight",
            max_outstanding="unrecorded decisions kept at most",
        ),
    ),
)

BREAKER = Section(
    "[breaker]",
    "mangaroute.core.breaker.BreakerPolicy",
    "Each target's circuit breaker (closed -> open -> half-open).",
    settings_keys(
        "breaker",
        BreakerPolicy(),
        consecutive_failures="failures in a row that open the breaker",
        error_rate="failure rate over at least min_requests calls per interval that opens it",
        min_requests="calls per interval before error_rate counts",
        interval_s="the interval error_rate is measured over",
        cooldown_s="first ejection time, doubled per repeated ejection",
        max_cooldown_s="the longest ejection",
        half_open_probes="probe calls in flight at once when half-open",
        probe_timeout_s="when an unreported probe frees its slot",
        successes_to_close="probe successes that close the breaker",
    ),
)

PROFILE = Section(
    "[profiles.NAME]",
    "mangaroute.core.targets.LatencyProfile",
    "A prior latency profile: stands in for a target's observations until it has "
    "min_samples. Also the shape of [targets.NAME.prior] written as a table.",
    (
        _number("p50_ms", "profile.p50_ms", "median latency", required=True),
        _number("p90_ms", "profile.p90_ms", "90th percentile latency", required=True),
        _number("p99_ms", "profile.p99_ms", "99th percentile latency", required=True),
        _number(
            "cold_start_ms",
            "profile.cold_start_ms",
            "latency added by a cold start",
            default=field_default(LatencyProfile, "cold_start_ms"),
        ),
        _number(
            "cold_start_probability",
            "profile.cold_start_probability",
            "share of calls that meet a cold start",
            default=field_default(LatencyProfile, "cold_start_probability"),
        ),
    ),
)


def _pattern_names() -> tuple[str, ...]:
    return tuple(p.value for p in Pattern)


TARGET = Section(
    "[targets.NAME]",
    "mangaroute.core.targets.Target, Pricing, Capacity",
    "One deployment target; NAME is its name in metrics, alarms and decisions.",
    (
        Key("pattern", "enum", "the deployment pattern", required=True, choices=_pattern_names),
        Key(
            "model_id", "string", "model ID, provisioned model ARN or endpoint name", required=True
        ),
        Key("region", "string", "AWS region", default_doc="[router] region"),
        Key(
            "tier",
            "string",
            "quality tier, ranked by [router] quality",
            default=field_default(Target, "tier"),
        ),
        Key(
            "prior",
            "other",
            "a [profiles.NAME] name (built in: the five pattern names) or a profile table",
            default_doc="the built-in profile named after the pattern",
            schema={"oneOf": [{"type": "string", "minLength": 1}, {"$ref": "#/$defs/profile"}]},
        ),
        _number("model_units", "target.model_units", "provisioned model units"),
        _number("instances", "target.instances", "SageMaker instances"),
        _number(
            "hourly_usd",
            "target.hourly_usd",
            "fixed hourly price",
            default=field_default(Pricing, "hourly_usd"),
        ),
        _number(
            "hourly_usd_per_unit",
            "target.hourly_usd_per_unit",
            "hourly price per model unit (needs model_units)",
        ),
        _number(
            "hourly_usd_per_instance",
            "target.hourly_usd_per_instance",
            "hourly price per instance (needs instances)",
        ),
        _number(
            "input_per_million_usd",
            "pricing.input_per_million_usd",
            "on-demand price per 1M input tokens",
            default=field_default(Pricing, "input_per_million_usd"),
        ),
        _number(
            "output_per_million_usd",
            "pricing.output_per_million_usd",
            "on-demand price per 1M output tokens",
            default=field_default(Pricing, "output_per_million_usd"),
        ),
        _number(
            "cache_read_per_million_usd",
            "pricing.cache_read_per_million_usd",
            "price per 1M prompt-cache read tokens",
            default_doc="the input price",
        ),
        _number(
            "cache_write_per_million_usd",
            "pricing.cache_write_per_million_usd",
            "price per 1M prompt-cache write tokens",
            default_doc="the input price",
        ),
        _number(
            "tokens_per_minute",
            "capacity.tokens_per_minute",
            "token capacity",
            default_doc="unbounded",
        ),
        _number(
            "tokens_per_minute_per_unit",
            "target.tokens_per_minute_per_unit",
            "token capacity per model unit (needs model_units)",
        ),
        _number(
            "requests_per_second",
            "capacity.requests_per_second",
            "request capacity",
            default_doc="unbounded",
        ),
        _number(
            "requests_per_second_per_instance",
            "target.requests_per_second_per_instance",
            "request capacity per instance (needs instances)",
        ),
        _number(
            "concurrency",
            "capacity.concurrency",
            "calls in flight at most",
            default=field_default(Capacity, "concurrency"),
            default_doc="unbounded",
        ),
        _number(
            "ops_score",
            "target.ops_score",
            "operations score for the score ranker",
            default_doc="from the pattern (the seed's table)",
        ),
    ),
)

CLASS = Section(
    "[classes.NAME]",
    "mangaroute.core.settings.RequestClass",
    "A request class: which targets may serve it, in order of preference, and its policy.",
    (
        Key("targets", "names", "the targets, in order of preference", required=True),
        Key(
            "policy",
            "string",
            "the [policies.NAME] it routes by",
            default_doc="the policy named default, else the first",
        ),
        Key("quality_floor", "string", "the lowest [router] quality tier it may use"),
    ),
)

SWITCHER = Section(
    "[switcher]",
    "mangaroute.core.policy.switcher.SwitcherSettings",
    "The seed's primary-with-failover switcher (section 5.1), read by the primary picker.",
    (
        Key("primary", "string", "the target that takes primary_weight", required=True),
        Key("order", "names", "failover order", default_doc="every target, in file order"),
        *settings_keys(
            "switcher",
            SwitcherSettings(primary="x", order=("x",)),
            primary_weight="the primary's share of traffic",
            canary_weight="the share sent to the next target, to keep it warm",
            latency_threshold_ms="p99 above this degrades the primary",
            error_rate_threshold="an error rate above this degrades the primary",
            capacity_threshold="utilization above this degrades the primary",
            min_requests="calls in the window before the thresholds count",
            return_after_s="healthy time before returning to the preferred primary",
            history="switch events kept",
            fleet_hold_s="how long an adopted fleet primary holds against local observations",
        ),
    ),
)

SHARED = Section(
    "[shared]",
    "mangaroute.core.fleet.SharedSettings",
    "State shared by the replicas of one deployment (Redis); see docs/shared.md.",
    (
        Key("backend", "enum", "the store", default="redis", choices=("redis",)),
        Key("url", "string", "redis://, rediss:// or unix:// URL", required=True),
        Key("deployment", "string", "the name replicas of one deployment share", required=True),
        *settings_keys(
            "shared",
            SharedSettings(url="redis://localhost", deployment="x"),
            sync_interval_ms="sync period",
            stale_after_ms="a fleet view older than this is dropped (local view only)",
            timeout_ms="Redis round-trip timeout",
            key_ttl_s="keys nobody renews expire after this long",
            spend_every="read the fleet's spend every this many syncs",
        ),
        Key("username", "string", "Redis ACL user"),
        Key("password_env", "string", "environment variable holding the password"),
        Key("tls_ca_file", "string", "CA bundle for rediss://"),
        _bool(SharedSettings, "tls_verify", "verify the server's certificate"),
        Key("replica_id", "string", "this replica's id", default_doc="host name and process id"),
        _bool(SharedSettings, "cluster", "the URL names a Redis Cluster node"),
    ),
)

PREDICTION = Section(
    "[policies.NAME.prediction]",
    "mangaroute.core.policy.prediction.LatencyPredictor",
    "How a policy predicts a call's latency (deadline, predicted ranker, cost_under_slo).",
    (
        Key("first_token", "bool", "predict time to first token", default_doc="[router] streamed"),
        *settings_keys(
            "prediction",
            LatencyPredictor(),
            ttft_share="share of a whole-call p99 taken as time to first token (none observed)",
            avg_output_tokens="output tokens of a call that names none",
            load_knee="utilization above which latency is predicted to grow",
            load_weight="latency growth from the knee to full utilization (x the p99)",
            max_error_rate="cap on the error rate a prediction is divided by (per useful answer)",
        ),
    ),
)

# The policy parts' own tables, [policies.NAME.<part>], handed to register_* with the part.
HEADROOM = Section(
    "[policies.NAME.headroom]",
    "mangaroute.core.policy.filters.Headroom (ThrottleBet with throttle_round_trip_ms)",
    "Capacity headroom filter.",
    (
        *settings_keys(
            "headroom",
            Headroom(),
            max_utilization="drop a target used above this share of its capacity",
            max_throttle_rate="drop a target throttling more than this",
            min_requests="calls in the window before the throttle rate counts",
        ),
        _number(
            "throttle_round_trip_ms",
            "headroom.throttle_round_trip_ms",
            "a throttle's cost: turns the throttle cut into the throttle bet",
        ),
        _number(
            "slo_p99_ms",
            "headroom.slo_p99_ms",
            "the throttle bet's latency budget",
            default_doc="the policy's cost_under_slo SLO",
        ),
    ),
)
LATENCY_CEILING = Section(
    "[policies.NAME.latency_ceiling]",
    "mangaroute.core.policy.filters.LatencyCeiling",
    "Drops targets whose p99 is over a ceiling.",
    settings_keys("latency_ceiling", LatencyCeiling(), max_p99_ms="the ceiling"),
)
RELIABLE = Section(
    "[policies.NAME.reliable]",
    "mangaroute.core.policy.prediction.Reliable",
    "Drops targets failing too often.",
    settings_keys(
        "reliable",
        Reliable(),
        max_error_rate="drop a target failing more than this",
        min_requests="calls in the window before the error rate counts",
    ),
)
SCHEDULE = Section(
    "[policies.NAME.schedule]",
    "mangaroute.core.policy.schedule.Schedule",
    "Targets usable only in given local hours.",
    (
        _number("utc_offset_hours", "schedule.utc_offset_hours", "local time's UTC offset"),
        _TIME_ZONE,
        Key(
            "hours",
            "other",
            "per target: [start, end] local hours or a list of them",
            default={},
            schema={
                "type": "object",
                "additionalProperties": {
                    "oneOf": [_HOUR_WINDOW, {"type": "array", "items": _HOUR_WINDOW, "minItems": 1}]
                },
            },
        ),
    ),
)
SCORE = Section(
    "[policies.NAME.score]",
    "mangaroute.core.policy.rankers.WeightedScore",
    "The seed's weighted score (section 1.2).",
    (
        *settings_keys(
            "score",
            WeightedScore(),
            target_p99_ms="the latency the score aims for",
            required_rps="the peak request rate a target should carry",
            max_monthly_usd="the monthly budget the cost score is read on",
            avg_input_tokens="input tokens of a typical call",
            avg_output_tokens="output tokens of a typical call",
        ),
        Key(
            "weights",
            "table",
            "the score's weights",
            section=Section(
                "[policies.NAME.score.weights]",
                "mangaroute.core.scoring.ScoreWeights",
                "Weights of the four scores.",
                settings_keys(
                    "score.weights",
                    ScoreWeights(),
                    latency="weight of the latency score",
                    throughput="weight of the throughput score",
                    cost="weight of the cost score",
                    ops="weight of the operations score",
                ),
            ),
        ),
        _bool(WeightedScore, "seed_exact_latency", "score latency exactly as the seed does"),
    ),
)
LATENCY = Section(
    "[policies.NAME.latency]",
    "mangaroute.core.policy.rankers.LowestLatency",
    "Lowest observed latency first.",
    (
        Key(
            "percentile",
            "enum",
            "which percentile",
            choices=("p50", "p99"),
            default=field_default(LowestLatency, "percentile"),
        ),
    ),
)
COST = Section(
    "[policies.NAME.cost]",
    "mangaroute.core.policy.rankers.CheapestWithinSlo",
    "Cheapest target within an SLO.",
    settings_keys(
        "cost",
        CheapestWithinSlo(),
        slo_p99_ms="targets with a p99 above this go last",
        avg_input_tokens="uncached input tokens of a typical call",
        avg_output_tokens="output tokens of a typical call",
        avg_cache_read_tokens="prompt-cache read tokens of a typical call",
        avg_cache_write_tokens="prompt-cache write tokens of a typical call",
    ),
)
COST_UNDER_SLO = Section(
    "[policies.NAME.cost_under_slo]",
    "mangaroute.core.policy.cost.CostUnderSlo",
    "Cheapest target whose predicted latency fits the SLO.",
    settings_keys(
        "cost_under_slo",
        CostUnderSlo(),
        slo_p99_ms="the latency a target's predicted p99 must fit",
        avg_input_tokens="uncached input tokens of a typical call",
        avg_output_tokens="output tokens of a typical call (default: the policy's "
        "prediction.avg_output_tokens)",
        avg_cache_read_tokens="prompt-cache read tokens of a typical call",
        avg_cache_write_tokens="prompt-cache write tokens of a typical call",
        paid_headroom="utilization below which hourly-paid capacity counts as free",
    ),
)
WEIGHTED = Section(
    "[policies.NAME.weighted]",
    "mangaroute.core.policy.pickers.Weighted",
    "A weighted split over targets.",
    (
        Key(
            "weights",
            "other",
            "weight per target name",
            required=True,
            schema={
                "type": "object",
                "minProperties": 1,
                "additionalProperties": {
                    "type": "number",
                    "minimum": LIMITS["weighted.weight"].low,
                    "maximum": LIMITS["weighted.weight"].high,
                },
            },
        ),
        _bool(Weighted, "sticky", "a session always lands on the same target"),
    ),
)
PRIMARY = Section(
    "[policies.NAME.primary]",
    "mangaroute.core.policy.pickers.PrimaryShare",
    "The switcher's primary share (needs [switcher]).",
    (_bool(PrimaryShare, "sticky", "a session always lands on the same target"),),
)
SPILLOVER = Section(
    "[policies.NAME.spillover]",
    "mangaroute.core.policy.spillover.Spillover",
    "Fill the best target to a utilization, spill the rest.",
    (
        *settings_keys(
            "spillover",
            Spillover(),
            target_utilization="fill the best target up to this share of its capacity",
        ),
        _bool(Spillover, "throttle_backoff", "cut the share by the target's throttle rate"),
    ),
)
CANARY = Section(
    "[policies.NAME.canary]",
    "mangaroute.core.policy.canary.Canary",
    "A share of traffic to a candidate target.",
    (
        Key("candidate", "string", "the target on trial", required=True),
        *settings_keys("canary", Canary("x"), share="the candidate's share of traffic"),
        _bool(Canary, "sticky", "a session always lands on the same side"),
    ),
)
_BUDGET = BudgetGuard(daily_usd=1.0)


def budget_guard_section(pickers: Callable[[], tuple[str, ...]]) -> Section:
    """``[policies.NAME.budget_guard]``; ``pickers`` names the pickers it may guard."""
    return Section(
        "[policies.NAME.budget_guard]",
        "mangaroute.core.policy.budget.BudgetGuard",
        "Moves to cheaper targets when the day's spend runs ahead of its pace.",
        (
            _number("daily_usd", "budget_guard.daily_usd", "the day's budget", required=True),
            Key(
                "pace",
                "other",
                "24 hourly weights of the day's spend",
                default_doc="even",
                schema={
                    "type": "array",
                    "minItems": 24,
                    "maxItems": 24,
                    "items": {
                        "type": "number",
                        "minimum": LIMITS["budget_guard.pace"].low,
                        "maximum": LIMITS["budget_guard.pace"].high,
                    },
                },
            ),
            Key("picker", "enum", "the picker it guards", default="best", choices=pickers),
            _number(
                "slo_p99_ms",
                "budget_guard.slo_p99_ms",
                "the cheaper ranking's SLO",
                default=field_default(CostUnderSlo, "slo_p99_ms"),
            ),
            _number("utc_offset_hours", "budget_guard.utc_offset_hours", "local time's UTC offset"),
            _TIME_ZONE,
            _number(
                "tolerance",
                "budget_guard.tolerance",
                "how far ahead of pace is allowed",
                default=_BUDGET.tolerance,
            ),
            _number(
                "slack",
                "budget_guard.slack",
                "allowance at the start of the day",
                default=_BUDGET.slack,
            ),
        ),
    )


def tier_section(rankers: Callable[[], tuple[str, ...]]) -> Section:
    """``[policies.NAME.tier]``; ``rankers`` names the rankers that may order within a tier."""
    return Section(
        "[policies.NAME.tier]",
        "mangaroute.core.policy.tiers.TierOrder",
        "Prefers tiers in order, ranking within a tier by another ranker.",
        (
            Key("order", "names", "tiers, most preferred first", required=True),
            Key("within", "enum", "the ranker inside a tier", default="order", choices=rankers),
            _number("slo_p99_ms", "cost_under_slo.slo_p99_ms", "a tier is used when it fits this"),
        ),
    )


def policy_section(
    filters: Callable[[], tuple[str, ...]],
    rankers: Callable[[], tuple[str, ...]],
    pickers: Callable[[], tuple[str, ...]],
) -> Section:
    """``[policies.NAME]``, naming the parts the registries know when asked."""
    return Section(
        "[policies.NAME]",
        "mangaroute.core.policy.base.Policy",
        "A routing policy: filters, then a ranker, then a picker. It may hold a table of "
        "settings for each part it uses ([policies.NAME.<part>]).",
        (
            Key(
                "filters",
                "names",
                "filters, applied in order",
                default=("healthy", "headroom"),
                choices=filters,
            ),
            Key("ranker", "enum", "the ranker", default="score", choices=rankers),
            Key("picker", "enum", "the picker", default="best", choices=pickers),
            Key(
                "budget",
                "bool",
                "drop targets predicted over the call's remaining budget",
                default=field_default(Policy, "budget"),
            ),
            Key(
                "deadline",
                "bool",
                "with budget: judge by each call's predicted p99",
                default=field_default(Policy, "deadline") is not None,
            ),
            Key(
                "last_resort",
                "bool",
                "when every target is filtered out, try them anyway",
                default=field_default(Policy, "last_resort"),
            ),
            Key("prediction", "table", "the latency predictor", section=PREDICTION),
        ),
        parts=True,
    )


def root_section(policy: Section) -> Section:
    """The whole file."""
    return Section(
        "the file",
        "mangaroute.config.parse_config -> RouterConfig",
        "A router configuration.",
        (
            Key("router", "table", "the window and file-wide defaults", section=ROUTER),
            Key("breaker", "table", "each target's circuit breaker", section=BREAKER),
            Key("profiles", "tables", "prior latency profiles by name", section=PROFILE),
            Key("targets", "tables", "deployment targets by name", required=True, section=TARGET),
            Key(
                "classes",
                "tables",
                "request classes by name",
                default_doc="one class 'default' over every target",
                section=CLASS,
            ),
            Key("switcher", "table", "the primary-with-failover switcher", section=SWITCHER),
            Key("shared", "table", "state shared by replicas (off when absent)", section=SHARED),
            Key(
                "policies",
                "tables",
                "routing policies by name",
                default_doc="one policy 'default'",
                section=policy,
            ),
        ),
    )


def empty(part: str) -> Section:
    """The table of a part that takes no settings (any key in it is an error)."""
    return Section(f"[policies.NAME.{part}]", f"the {part} part", "Takes no settings.")
