"""Load a router configuration from TOML.

Every error names the file, the key (as a dotted path such as ``targets.ondemand-haiku.
pattern``) and what was expected; unknown keys are errors too, so a typo never silently
falls back to a default. See the README's "Configuration reference" and the shipped
``mangaroute/data/mangaassist.toml``.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar, cast

from mangaroute.core.breaker import BreakerPolicy
from mangaroute.core.errors import ConfigError
from mangaroute.core.fleet import SharedSettings, redact_url
from mangaroute.core.limits import (
    LIMITS,
    RangeError,
    dimension_value_violation,
    section_names,
    violation,
)
from mangaroute.core.policy.base import Filter, Picker, Policy, Ranker
from mangaroute.core.policy.budget import BudgetGuard
from mangaroute.core.policy.canary import Canary
from mangaroute.core.policy.cost import CostUnderSlo
from mangaroute.core.policy.filters import Headroom, Healthy, LatencyCeiling
from mangaroute.core.policy.pickers import Best, PrimaryShare, Uniform, Weighted
from mangaroute.core.policy.prediction import LatencyPredictor, PredictedLatency, Reliable
from mangaroute.core.policy.quality import floor_problem, quality_problem
from mangaroute.core.policy.rankers import (
    CheapestWithinSlo,
    ConfigOrder,
    LiteLlmLatency,
    LowestLatency,
    WeightedScore,
)
from mangaroute.core.policy.schedule import Schedule
from mangaroute.core.policy.spillover import Spillover
from mangaroute.core.policy.switcher import SwitcherSettings
from mangaroute.core.policy.throttle import ThrottleBet
from mangaroute.core.policy.tiers import TierOrder
from mangaroute.core.scoring import ScoreWeights
from mangaroute.core.settings import RequestClass, RouterConfig, WindowSettings
from mangaroute.core.targets import (
    BUILTIN_PROFILES,
    Capacity,
    LatencyProfile,
    Pattern,
    Pricing,
    Target,
)

T = TypeVar("T")
_REQUIRED: Any = object()

DEFAULT_CONFIG_NAME = "mangaassist.toml"


class _Table:
    """One TOML table being read: typed getters, and a check that no key went unread."""

    def __init__(
        self, data: dict[str, Any], source: str, path: str, limits: str | None = None
    ) -> None:
        self.data = data
        self.source = source
        self.path = path
        self.limits = limits  # the section of LIMITS this table's numbers obey
        self._read: set[str] = set()

    def key(self, name: str) -> str:
        if not name:
            return self.path
        return f"{self.path}.{name}" if self.path else name

    def error(self, name: str, message: str) -> ConfigError:
        return ConfigError(message, source=self.source, key=self.key(name))

    def _raw(self, name: str, default: Any) -> Any:
        self._read.add(name)
        if name not in self.data:
            if default is _REQUIRED:
                raise self.error(name, "is required")
            return default
        return self.data[name]

    def text(self, name: str, default: Any = _REQUIRED) -> Any:
        value = self._raw(name, default)
        if value is not default and (not isinstance(value, str) or not value):
            raise self.error(name, f"expected a non-empty string, got {value!r}")
        return value

    def _limit(self, name: str, limit: str | None) -> str | None:
        if limit is None and self.limits is not None:
            limit = f"{self.limits}.{name}"
        return limit

    def _in_range(self, name: str, value: Any, limit: str) -> None:
        reason = violation(limit, value)
        if reason is not None:
            raise self.error(name, reason)

    def number(
        self,
        name: str,
        default: Any = _REQUIRED,
        *,
        minimum: float = 0.0,
        positive: bool = False,
        limit: str | None = None,
    ) -> Any:
        """A number; with a ``limit`` (or a table of ``limits``) its range comes from
        :data:`~mangaroute.core.limits.LIMITS` instead of ``minimum`` / ``positive``."""
        value = self._raw(name, default)
        if value is default:
            return value
        limit = self._limit(name, limit)
        if limit is not None:
            self._in_range(name, value, limit)
            return float(value)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise self.error(name, f"expected a number, got {value!r}")
        if positive and value <= 0:
            raise self.error(name, f"expected a number > 0, got {value!r}")
        if value < minimum:
            raise self.error(name, f"expected a number >= {minimum:g}, got {value!r}")
        return float(value)

    def integer(
        self, name: str, default: Any = _REQUIRED, *, minimum: int = 0, limit: str | None = None
    ) -> Any:
        value = self._raw(name, default)
        if value is default:
            return value
        limit = self._limit(name, limit)
        if limit is not None:
            self._in_range(name, value, limit)
            return value
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.error(name, f"expected an integer >= {minimum}, got {value!r}")
        return value

    def numbers(self, defaults: object) -> dict[str, Any]:
        """Every setting of this table's ``limits`` section that ``defaults`` (a settings
        object of the section's class) has, each defaulting to the value it has there (a
        section can hold keys another class reads: ``headroom``'s throttle bet)."""
        assert self.limits is not None
        values = {}
        for name in section_names(self.limits):
            if not hasattr(defaults, name):
                continue
            read = self.integer if LIMITS[f"{self.limits}.{name}"].integer else self.number
            values[name] = read(name, getattr(defaults, name))
        return values

    def flag(self, name: str, default: Any = _REQUIRED) -> Any:
        value = self._raw(name, default)
        if value is not default and not isinstance(value, bool):
            raise self.error(name, f"expected true or false, got {value!r}")
        return value

    def names(self, name: str, default: Any = _REQUIRED) -> Any:
        value = self._raw(name, default)
        if value is default:
            return value
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.error(name, f"expected a list of names, got {value!r}")
        return tuple(value)

    def table(self, name: str, *, required: bool = False, limits: str | None = None) -> _Table:
        value = self._raw(name, _REQUIRED if required else {})
        if not isinstance(value, dict):
            raise self.error(name, f"expected a table, got {value!r}")
        return _Table(value, self.source, self.key(name), limits)

    def tables(self, name: str, *, limits: str | None = None) -> list[tuple[str, _Table]]:
        outer = self.table(name)
        result = []
        for key in outer.data:
            result.append((key, outer.table(key, limits=limits)))
        return result

    def finish(self) -> None:
        unknown = [key for key in self.data if key not in self._read]
        if unknown:
            expected = ", ".join(sorted(self._read)) or "nothing"
            raise self.error(unknown[0], f"is not a known key (expected one of: {expected})")

    def build(self, name: str, factory: Callable[[], T]) -> T:
        """Run a constructor and turn its ValueError into a ConfigError at ``name`` (at the
        field itself when the constructor names it)."""
        try:
            return factory()
        except ConfigError:
            raise  # already names its key
        except RangeError as exc:
            key = self.key(f"{name}.{exc.field}" if name else exc.field)
            raise ConfigError(exc.reason, source=self.source, key=key) from None
        except ValueError as exc:
            raise ConfigError(str(exc), source=self.source, key=self.key(name)) from None


def load_config(path: str | Path) -> RouterConfig:
    """Read and validate a TOML config file."""
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot be read: {exc.strerror or exc}", source=source) from None
    return parse_config(raw.decode("utf-8", errors="replace"), source=source)


def default_config_text() -> str:
    """The shipped MangaAssist configuration, as TOML text."""
    return resources.files("mangaroute").joinpath("data", DEFAULT_CONFIG_NAME).read_text("utf-8")


def load_default_config() -> RouterConfig:
    """The shipped MangaAssist configuration."""
    return parse_config(default_config_text(), source=f"<mangaroute>/data/{DEFAULT_CONFIG_NAME}")


def read_toml(text: str, *, source: str) -> dict[str, Any]:
    """Parse TOML text, turning every way it can fail into a :class:`ConfigError`.

    ``tomllib`` parses nested arrays and inline tables recursively, so a document nested
    deeper than the interpreter's recursion limit (about 1,000 levels) raises
    ``RecursionError`` rather than ``TOMLDecodeError``; no real config nests more than a few
    levels.
    """
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"is not valid TOML: {exc}", source=source) from None
    except RecursionError:
        raise ConfigError(
            "is not usable TOML: arrays or inline tables are nested too deeply to read "
            "(a config needs a few levels)",
            source=source,
        ) from None


def parse_config(text: str, *, source: str = "<string>") -> RouterConfig:
    """Validate TOML text into a :class:`RouterConfig`."""
    data = read_toml(text, source=source)
    root = _Table(data, source, "")
    router = root.table("router", limits="router")
    default_region = router.text("region", None)
    window = router.build("", lambda: WindowSettings(**router.numbers(WindowSettings())))
    default_class_name = router.text("default_class", None)
    streamed = router.flag("streamed", False)
    quality = router.names("quality", ())
    router.finish()

    breaker = _breaker(root.table("breaker", limits="breaker"))
    profiles = _profiles(root)
    targets = tuple(
        _target(name, table, profiles, default_region)
        for name, table in root.tables("targets", limits="target")
    )
    if not targets:
        raise root.error("targets", "must define at least one target ([targets.NAME])")
    names = [t.name for t in targets]
    problem = quality_problem(quality, [t.tier for t in targets])
    if problem is not None:
        raise router.error("quality", problem)
    switcher = _switcher(root, names)
    policies = _policies(root, switcher, streamed=streamed)
    classes = _classes(root, targets, policies, quality)
    shared = _shared(root)
    root.finish()
    default_class = default_class_name or classes[0].name
    return root.build(
        "",
        lambda: RouterConfig(
            targets=targets,
            classes=classes,
            policies=policies,
            default_class=default_class,
            window=window,
            breaker=breaker,
            switcher=switcher,
            source=source,
            shared=shared,
            quality=quality,
        ),
    )


def _shared(root: _Table) -> SharedSettings | None:
    """``[shared]``: state shared by the replicas of one deployment (Redis)."""
    if "shared" not in root.data:
        root.table("shared")
        return None
    table = root.table("shared", limits="shared")
    backend = table.text("backend", "redis")
    if backend != "redis":
        raise table.error("backend", f'expected "redis" (the only backend), got {backend!r}')
    url = table.text("url")
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise table.error(
            "url", f"expected a redis://, rediss:// or unix:// URL, got {redact_url(url)!r}"
        )
    if "password" in table.data:
        raise table.error(
            "password",
            "is not read from the config file: put the password in an environment variable "
            "and name it with password_env (or in the URL's userinfo for local use)",
        )
    settings = table.build(
        "",
        lambda: SharedSettings(
            url=url,
            deployment=table.text("deployment"),
            **table.numbers(SharedSettings(url="redis://localhost", deployment="x")),
            username=table.text("username", None),
            password_env=table.text("password_env", None),
            tls_ca_file=table.text("tls_ca_file", None),
            tls_verify=table.flag("tls_verify", True),
            replica_id=table.text("replica_id", None),
            cluster=table.flag("cluster", False),
        ),
    )
    table.finish()
    return settings


def _breaker(table: _Table) -> BreakerPolicy:
    policy = table.build("", lambda: BreakerPolicy(**table.numbers(BreakerPolicy())))
    table.finish()
    return policy


def _latency_profile(table: _Table) -> LatencyProfile:
    profile = table.build(
        "",
        lambda: LatencyProfile(
            p50_ms=table.number("p50_ms"),
            p90_ms=table.number("p90_ms"),
            p99_ms=table.number("p99_ms"),
            cold_start_ms=table.number("cold_start_ms", 0.0),
            cold_start_probability=table.number("cold_start_probability", 0.0),
        ),
    )
    table.finish()
    return profile


def _profiles(root: _Table) -> dict[str, LatencyProfile]:
    profiles = dict(BUILTIN_PROFILES)
    for name, table in root.tables("profiles", limits="profile"):
        profiles[name] = _latency_profile(table)
    return profiles


def _target(
    name: str, table: _Table, profiles: dict[str, LatencyProfile], default_region: str | None
) -> Target:
    problem = dimension_value_violation(name)
    if problem is not None:  # every metric and alarm carries it as the Target dimension
        raise table.error("", f"the target name {name!r} {problem}; rename the target")
    pattern_name = table.text("pattern")
    try:
        pattern = Pattern(pattern_name)
    except ValueError:
        choices = ", ".join(p.value for p in Pattern)
        raise table.error("pattern", f"expected one of {choices}, got {pattern_name!r}") from None
    prior_value = table.data.get("prior", pattern.value)
    if isinstance(prior_value, dict):
        prior = _latency_profile(table.table("prior", limits="profile"))
    else:
        prior_name = table.text("prior", pattern.value)
        if prior_name not in profiles:
            raise table.error(
                "prior", f"names no known profile {prior_name!r} (known: {', '.join(profiles)})"
            )
        prior = profiles[prior_name]
    region = table.text("region", default_region)
    if region is None:
        raise table.error("region", "is required (or set [router] region as a default)")
    units = table.integer("model_units", None)
    instances = table.integer("instances", None)
    hourly = table.number("hourly_usd", 0.0)
    per_unit = table.number("hourly_usd_per_unit", None)
    per_instance = table.number("hourly_usd_per_instance", None)
    if per_unit is not None:
        hourly += per_unit * _need(table, units, "model_units", "hourly_usd_per_unit")
    if per_instance is not None:
        hourly += per_instance * _need(table, instances, "instances", "hourly_usd_per_instance")
    pricing = table.build(
        "",
        lambda: Pricing(
            input_per_million_usd=table.number(
                "input_per_million_usd", 0.0, limit="pricing.input_per_million_usd"
            ),
            output_per_million_usd=table.number(
                "output_per_million_usd", 0.0, limit="pricing.output_per_million_usd"
            ),
            hourly_usd=hourly,
            cache_read_per_million_usd=table.number(
                "cache_read_per_million_usd", None, limit="pricing.cache_read_per_million_usd"
            ),
            cache_write_per_million_usd=table.number(
                "cache_write_per_million_usd", None, limit="pricing.cache_write_per_million_usd"
            ),
        ),
    )
    tpm = table.number("tokens_per_minute", None, limit="capacity.tokens_per_minute")
    tpm_per_unit = table.number("tokens_per_minute_per_unit", None)
    if tpm_per_unit is not None:
        tpm = tpm_per_unit * _need(table, units, "model_units", "tokens_per_minute_per_unit")
    rps = table.number("requests_per_second", None, limit="capacity.requests_per_second")
    rps_per_instance = table.number("requests_per_second_per_instance", None)
    if rps_per_instance is not None:
        rps = rps_per_instance * _need(
            table, instances, "instances", "requests_per_second_per_instance"
        )
    capacity = Capacity(
        tokens_per_minute=tpm,
        requests_per_second=rps,
        concurrency=table.integer("concurrency", None, limit="capacity.concurrency"),
    )
    target = table.build(
        "",
        lambda: Target(
            name=name,
            pattern=pattern,
            model_id=table.text("model_id"),
            region=region,
            prior=prior,
            tier=table.text("tier", "custom"),
            pricing=pricing,
            capacity=capacity,
            ops_score=table.number("ops_score", -1.0),
        ),
    )
    table.finish()
    return target


def _need(table: _Table, value: int | None, name: str, because: str) -> int:
    if value is None:
        raise table.error(name, f"is required when {because} is set")
    return value


def _switcher(root: _Table, targets: list[str]) -> SwitcherSettings | None:
    if "switcher" not in root.data:
        root.table("switcher")
        return None
    table = root.table("switcher", limits="switcher")
    defaults = SwitcherSettings(primary=targets[0], order=tuple(targets))
    primary = table.text("primary")
    order = table.names("order", tuple(targets))
    for name in (primary, *order):
        if name not in targets:
            key = "primary" if name == primary else "order"
            raise table.error(key, f"names unknown target {name!r} (known: {', '.join(targets)})")
    settings = table.build(
        "",
        lambda: SwitcherSettings(
            primary=primary,
            order=order,
            **table.numbers(defaults),
        ),
    )
    table.finish()
    return settings


@dataclass(frozen=True, slots=True)
class PartContext:
    """What building one policy part may read besides its own table: the policy's table
    (for errors and nested parts), the config's target names, the policy's latency
    predictor, the switcher's settings, and whether the part sits inside another."""

    policy: _Table
    targets: list[str]
    predictor: LatencyPredictor
    switcher: SwitcherSettings | None
    nested: bool = False


PartBuilder = Callable[[_Table, PartContext], Any]
"""Builds one part from its table (``[policies.NAME.<part>]``) and the context."""

_FILTERS: dict[str, PartBuilder] = {}
_RANKERS: dict[str, PartBuilder] = {}
_PICKERS: dict[str, PartBuilder] = {}
_OUTER_ONLY = {"tier", "budget_guard"}
"""Parts that wrap another part of their kind, so cannot be the inner one."""


def _register(
    registry: dict[str, PartBuilder], name: str, build: PartBuilder
) -> Callable[[], None]:
    if not name or not isinstance(name, str):
        raise ValueError(f"a part needs a name, got {name!r}")
    registry[name] = build

    def unregister() -> None:
        if registry.get(name) is build:
            del registry[name]

    return unregister


def register_filter(name: str, build: PartBuilder) -> Callable[[], None]:
    """Make ``filters = ["<name>"]`` build a filter with ``build(table, context)``; returns a
    function that removes it again."""
    return _register(_FILTERS, name, build)


def register_ranker(name: str, build: PartBuilder) -> Callable[[], None]:
    """Make ``ranker = "<name>"`` build a ranker with ``build(table, context)``; returns a
    function that removes it again."""
    return _register(_RANKERS, name, build)


def register_picker(name: str, build: PartBuilder) -> Callable[[], None]:
    """Make ``picker = "<name>"`` build a picker with ``build(table, context)``; returns a
    function that removes it again."""
    return _register(_PICKERS, name, build)


def _part(
    kind: str, registry: dict[str, PartBuilder], name: str, key: str, context: PartContext
) -> Any:
    """Build the part ``name`` of ``kind`` from the policy's ``[<name>]`` table."""
    policy = context.policy
    params = policy.table(name, limits=name)
    build = registry.get(name)
    if build is None or (context.nested and name in _OUTER_ONLY):
        known = [n for n in registry if not (context.nested and n in _OUTER_ONLY)]
        raise (params if context.nested else policy).error(
            key, f"names unknown {kind} {name!r} (known: {', '.join(known)})"
        )
    part = build(params, context)
    params.finish()
    return part


def _filter(name: str, context: PartContext) -> Filter:
    return cast(Filter, _part("filter", _FILTERS, name, "filters", context))


def _ranker(name: str, context: PartContext) -> Ranker:
    key = "within" if context.nested else "ranker"
    return cast(Ranker, _part("ranker", _RANKERS, name, key, context))


def _picker(name: str, context: PartContext) -> Picker:
    return cast(Picker, _part("picker", _PICKERS, name, "picker", context))


def _schedule(params: _Table, targets: list[str]) -> Schedule:
    offset = params.number("utc_offset_hours", None)
    time_zone = params.text("time_zone", None)
    hours_table = params.table("hours")
    hours: dict[str, tuple[tuple[float, float], ...]] = {}
    for target in list(hours_table.data):
        if target not in targets:
            raise hours_table.error(target, f"is not a known target (known: {', '.join(targets)})")
        hours[target] = _hour_windows(hours_table, target)
    hours_table.finish()
    return params.build(
        "", lambda: Schedule(hours=hours, utc_offset_hours=offset, time_zone=time_zone)
    )


def _hour_windows(table: _Table, name: str) -> tuple[tuple[float, float], ...]:
    """``[start, end]`` or a list of them, local hours in [0, 24]."""
    value = table._raw(name, _REQUIRED)
    windows = value if isinstance(value, list) and value and isinstance(value[0], list) else [value]
    result = []
    for window in windows:
        if not _is_hour_window(window):
            raise table.error(
                name,
                "expected [start, end] local hours (0-24, start != end) or a list of them, "
                f"got {value!r}",
            )
        result.append((float(window[0]), float(window[1])))
    return tuple(result)


def _is_hour_window(window: Any) -> bool:
    return (
        isinstance(window, list)
        and len(window) == 2
        and all(isinstance(h, int | float) and not isinstance(h, bool) for h in window)
        and all(0 <= h <= 24 for h in window)
        and window[0] != window[1]
    )


def _predictor(policy: _Table, *, streamed: bool = False) -> LatencyPredictor:
    params = policy.table("prediction", limits="prediction")
    first_token = params.flag("first_token", streamed)
    predictor = LatencyPredictor(**params.numbers(LatencyPredictor()), first_token=first_token)
    params.finish()
    return predictor


def _cost_under_slo(params: _Table, predictor: LatencyPredictor) -> CostUnderSlo:
    defaults = CostUnderSlo(avg_output_tokens=predictor.avg_output_tokens)
    return CostUnderSlo(**params.numbers(defaults), predictor=predictor)


def _headroom(params: _Table, context: PartContext) -> Headroom | ThrottleBet:
    """``headroom``; with ``throttle_round_trip_ms`` its throttle cut becomes the throttle bet,
    judged within ``slo_p99_ms`` (default: the policy's ``cost_under_slo`` ranker's SLO)."""
    headroom = Headroom(**params.numbers(Headroom()))
    round_trip = params._raw("throttle_round_trip_ms", None)
    slo = params.number("slo_p99_ms", None, limit="headroom.slo_p99_ms")
    if round_trip is None:
        if slo is not None:
            raise params.error(
                "slo_p99_ms",
                "only applies with throttle_round_trip_ms (the throttle bet's latency budget)",
            )
        return headroom
    predictor = context.predictor
    judge = CostUnderSlo(avg_output_tokens=predictor.avg_output_tokens, predictor=predictor)
    slo = _ranker_slo(context.policy) if slo is None else slo
    if slo is not None:
        judge = replace(judge, slo_p99_ms=slo)
    return params.build("", lambda: ThrottleBet(headroom, round_trip, judge))


def _ranker_slo(policy: _Table) -> float | None:
    """The ``slo_p99_ms`` the policy's ``cost_under_slo`` ranker is given, if valid (the
    ranker reports a bad one itself)."""
    if policy.data.get("ranker") != "cost_under_slo":
        return None
    table = policy.data.get("cost_under_slo")
    value = table.get("slo_p99_ms") if isinstance(table, dict) else None
    if value is None or violation("cost_under_slo.slo_p99_ms", value) is not None:
        return None
    return float(value)


def _budget_guard(params: _Table, context: PartContext) -> BudgetGuard:
    predictor = context.predictor
    d = BudgetGuard(daily_usd=1.0)
    pace = params._raw("pace", ())
    if pace != () and (
        not isinstance(pace, list)
        or len(pace) != 24
        or any(violation("budget_guard.pace", v) for v in pace)
        or sum(pace) <= 0
    ):
        raise params.error(
            "pace",
            "expected 24 hourly weights, each "
            f"{LIMITS['budget_guard.pace'].describe()}, not all zero, got {pace!r}",
        )
    inner_name = params.text("picker", "best")
    if inner_name == "budget_guard":
        raise params.error("picker", "cannot be 'budget_guard' itself")
    inner = _picker(inner_name, replace(context, nested=True))
    cheaper = CostUnderSlo(
        slo_p99_ms=params.number("slo_p99_ms", CostUnderSlo().slo_p99_ms),
        avg_output_tokens=predictor.avg_output_tokens,
        predictor=predictor,
    )
    return params.build(
        "",
        lambda: BudgetGuard(
            daily_usd=params.number("daily_usd"),
            inner=inner,
            cheaper=cheaper,
            pace=tuple(float(v) for v in pace),
            utc_offset_hours=params.number("utc_offset_hours", None),
            time_zone=params.text("time_zone", None),
            tolerance=params.number("tolerance", d.tolerance),
            slack=params.number("slack", d.slack),
        ),
    )


def _weighted(params: _Table, context: PartContext) -> Weighted:
    weights_table = params.table("weights", required=True)
    weights = {}
    for target in list(weights_table.data):
        if target not in context.targets:
            raise weights_table.error(target, "is not a known target")
        weights[target] = weights_table.number(target, limit="weighted.weight")
    weights_table.finish()
    sticky = params.flag("sticky", False)
    return params.build("", lambda: Weighted(weights=weights, sticky=sticky))


def _primary(params: _Table, context: PartContext) -> PrimaryShare:
    switcher = context.switcher
    if switcher is None:
        raise context.policy.error(
            "picker", "'primary' needs a [switcher] table naming the primary"
        )
    return PrimaryShare(
        switcher.primary_weight, switcher.canary_weight, sticky=params.flag("sticky", False)
    )


def _canary(params: _Table, context: PartContext) -> Canary:
    candidate = params.text("candidate")
    if candidate not in context.targets:
        raise params.error(
            "candidate",
            f"names unknown target {candidate!r} (known: {', '.join(context.targets)})",
        )
    return Canary(
        candidate, **params.numbers(Canary(candidate)), sticky=params.flag("sticky", True)
    )


def _score(params: _Table, context: PartContext) -> WeightedScore:
    weights = params.table("weights", limits="score.weights")
    score_weights = weights.build("", lambda: ScoreWeights(**weights.numbers(ScoreWeights())))
    weights.finish()
    return WeightedScore(
        **params.numbers(WeightedScore()),
        weights=score_weights,
        seed_exact_latency=params.flag("seed_exact_latency", False),
    )


def _latency(params: _Table, context: PartContext) -> LowestLatency:
    percentile = params.text("percentile", "p99")
    if percentile not in ("p50", "p99"):
        raise params.error("percentile", f"expected 'p50' or 'p99', got {percentile!r}")
    return LowestLatency(percentile)


def _tier(params: _Table, context: PartContext) -> TierOrder:
    order = params.names("order")
    within = params.text("within", "order")
    if within == "tier":
        raise params.error("within", "cannot be 'tier' itself")
    inner = _ranker(within, replace(context, nested=True))
    slo = params.number("slo_p99_ms", None, limit="cost_under_slo.slo_p99_ms")
    if slo is None and not isinstance(inner, CostUnderSlo):
        return TierOrder(order, inner)
    judge = inner if isinstance(inner, CostUnderSlo) else CostUnderSlo(predictor=context.predictor)
    if slo is not None:
        judge = replace(judge, slo_p99_ms=slo)
    return TierOrder(order, inner, judge.fits)


register_filter("healthy", lambda params, context: Healthy())
register_filter("headroom", _headroom)
register_filter(
    "latency_ceiling", lambda params, context: LatencyCeiling(**params.numbers(LatencyCeiling()))
)
register_filter("reliable", lambda params, context: Reliable(**params.numbers(Reliable())))
register_filter("schedule", lambda params, context: _schedule(params, context.targets))
register_ranker("order", lambda params, context: ConfigOrder())
register_ranker("score", _score)
register_ranker("latency", _latency)
register_ranker(
    "cost", lambda params, context: CheapestWithinSlo(**params.numbers(CheapestWithinSlo()))
)
register_ranker("predicted", lambda params, context: PredictedLatency(context.predictor))
register_ranker(
    "cost_under_slo", lambda params, context: _cost_under_slo(params, context.predictor)
)
register_ranker("tier", _tier)
register_ranker("litellm_latency", lambda params, context: LiteLlmLatency())
register_picker("best", lambda params, context: Best())
register_picker("weighted", _weighted)
register_picker("primary", _primary)
register_picker(
    "spillover",
    lambda params, context: Spillover(
        **params.numbers(Spillover()), throttle_backoff=params.flag("throttle_backoff", False)
    ),
)
register_picker("canary", _canary)
register_picker("random", lambda params, context: Uniform())
register_picker("round_robin", lambda params, context: Uniform(rotate=True, name="round_robin"))
register_picker("budget_guard", _budget_guard)

FILTERS = tuple(_FILTERS)
RANKERS = tuple(_RANKERS)
PICKERS = tuple(_PICKERS)
"""The part names the shipped registries know (plugins may add more)."""


def _policies(
    root: _Table, switcher: SwitcherSettings | None, *, streamed: bool = False
) -> dict[str, Policy]:
    targets = [str(name) for name in root.data.get("targets", {})]
    policies: dict[str, Policy] = {}
    for name, table in root.tables("policies"):
        context = PartContext(table, targets, _predictor(table, streamed=streamed), switcher)
        predictor = context.predictor
        filters = tuple(
            _filter(f, context) for f in table.names("filters", ("healthy", "headroom"))
        )
        ranker = _ranker(table.text("ranker", "score"), context)
        picker = _picker(table.text("picker", "best"), context)
        budget = table.flag("budget", True)
        deadline = predictor if table.flag("deadline", False) else None
        last_resort = table.flag("last_resort", False)
        policies[name] = Policy(name, ranker, picker, filters, budget, deadline, last_resort)
        table.finish()
    if not policies:
        policies["default"] = Policy("default", WeightedScore(), Best(), (Healthy(), Headroom()))
    return policies


def _classes(
    root: _Table,
    defined: tuple[Target, ...],
    policies: dict[str, Policy],
    quality: tuple[str, ...] = (),
) -> tuple[RequestClass, ...]:
    targets = [target.name for target in defined]
    tier = {target.name: target.tier for target in defined}
    classes = []
    for name, table in root.tables("classes"):
        members = table.names("targets")
        twice = sorted({member for member in members if members.count(member) > 1})
        if twice:
            raise table.error(
                "targets",
                f"names {', '.join(map(repr, twice))} more than once (each target once, in "
                "order of preference)",
            )
        for member in members:
            if member not in targets:
                raise table.error(
                    "targets", f"names unknown target {member!r} (known: {', '.join(targets)})"
                )
        default_policy = "default" if "default" in policies else next(iter(policies))
        policy = table.text("policy", default_policy)
        if policy not in policies:
            raise table.error(
                "policy", f"names unknown policy {policy!r} (known: {', '.join(policies)})"
            )
        floor = table.text("quality_floor", None)
        if floor is not None:
            problem = floor_problem(floor, quality, [tier[member] for member in members])
            if problem is not None:
                raise table.error("quality_floor", problem)
        classes.append(RequestClass(name, members, policy, floor))
        table.finish()
    if not classes:
        classes.append(RequestClass("default", tuple(targets), next(iter(policies))))
    return tuple(classes)
