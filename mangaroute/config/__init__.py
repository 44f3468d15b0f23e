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

from mangaroute.config import sections
from mangaroute.config.sections import PROFILE, Section, field_default
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
REQUIRED = _REQUIRED
"""A getter's default meaning "the key must be there" (for tables read without a section)."""
_DECLARED: Any = object()

DEFAULT_CONFIG_NAME = "mangaassist.toml"


class Table:
    """One TOML table being read: typed getters, and a check that no key went unread.

    With a :class:`~mangaroute.config.sections.Section` the table's known keys are the
    declared ones: a getter called without a default takes the declared default (or
    requires the key when it is declared required), reading an undeclared key is a bug in
    the reader, and :meth:`finish` rejects every key the section does not declare. Without
    one (the simulator's own tables), the keys read are the known ones.
    """

    def __init__(
        self,
        data: dict[str, Any],
        source: str,
        path: str,
        limits: str | None = None,
        section: Section | None = None,
    ) -> None:
        self.data = data
        self.source = source
        self.path = path
        self.limits = limits  # the section of LIMITS this table's numbers obey
        self.section = section
        self._read: set[str] = set()
        self._parts: set[str] = set()  # sub-tables of the policy parts a policy uses

    def key(self, name: str) -> str:
        if not name:
            return self.path
        return f"{self.path}.{name}" if self.path else name

    def error(self, name: str, message: str) -> ConfigError:
        return ConfigError(message, source=self.source, key=self.key(name))

    def _get(self, name: str, default: Any) -> tuple[Any, bool]:
        """The value and whether it was missing (then the value is the default)."""
        self._read.add(name)
        if self.section is not None and name not in self.section.names | self._parts:
            raise AssertionError(f"the reader of {self.section.title} reads undeclared {name!r}")
        if default is _DECLARED:
            default = _REQUIRED
            if self.section is not None:
                declared = self.section.get(name)
                default = _REQUIRED if declared.required else declared.default
        if name not in self.data:
            if default is _REQUIRED:
                raise self.error(name, "is required")
            return default, True
        return self.data[name], False

    def _raw(self, name: str, default: Any = _DECLARED) -> Any:
        return self._get(name, default)[0]

    def text(self, name: str, default: Any = _DECLARED) -> Any:
        value, missing = self._get(name, default)
        if not missing and (not isinstance(value, str) or not value):
            raise self.error(name, f"expected a non-empty string, got {value!r}")
        return value

    def _limit(self, name: str, limit: str | None) -> str | None:
        """The LIMITS key ``name``'s range is read from: the one given, else the declared
        one, else ``<limits>.<name>`` for a table of ``limits`` (a plugin part's own number
        without either takes ``minimum`` / ``positive``)."""
        if limit is not None:
            return limit
        if self.section is not None and name in self.section.names:
            return self.section.get(name).limit
        if self.limits is not None and f"{self.limits}.{name}" in LIMITS:
            return f"{self.limits}.{name}"
        return None

    def _within_limit(self, name: str, value: Any, limit: str | None) -> bool:
        """Check ``value`` against the LIMITS range ``name`` is read from (:meth:`_limit`);
        False when it has none, and the caller checks the value itself."""
        limit = self._limit(name, limit)
        if limit is None:
            return False
        reason = violation(limit, value)
        if reason is not None:
            raise self.error(name, reason)
        return True

    def number(
        self,
        name: str,
        default: Any = _DECLARED,
        *,
        minimum: float = 0.0,
        positive: bool = False,
        limit: str | None = None,
    ) -> Any:
        """A number; with a ``limit`` (or a table of ``limits``) its range comes from
        :data:`~mangaroute.core.limits.LIMITS` instead of ``minimum`` / ``positive``."""
        value, missing = self._get(name, default)
        if missing:
            return value
        if self._within_limit(name, value, limit):
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
        self, name: str, default: Any = _DECLARED, *, minimum: int = 0, limit: str | None = None
    ) -> Any:
        value, missing = self._get(name, default)
        if missing or self._within_limit(name, value, limit):
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

    def settings(self, cls: type[T]) -> T:
        """A ``cls`` built from :meth:`numbers`: each setting from this table, or ``cls()``'s."""
        return cls(**self.numbers(cls()))

    def values(self, *, skip: tuple[str, ...] = ()) -> dict[str, Any]:
        """Every declared number, integer, string, flag and list of names of this table but
        ``skip``, each read by its kind with its declared default (left out when unset)."""
        assert self.section is not None
        read = {
            "number": self.number,
            "integer": self.integer,
            "string": self.text,
            "bool": self.flag,
            "names": self.names,
        }
        found = {}
        for key in self.section.keys:
            if key.name in skip or key.kind not in read:
                continue
            value = read[key.kind](key.name)
            if value is not None:
                found[key.name] = value
        return found

    def flag(self, name: str, default: Any = _DECLARED) -> Any:
        value, missing = self._get(name, default)
        if not missing and not isinstance(value, bool):
            raise self.error(name, f"expected true or false, got {value!r}")
        return value

    def names(self, name: str, default: Any = _DECLARED) -> Any:
        value, missing = self._get(name, default)
        if missing:
            return value
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.error(name, f"expected a list of names, got {value!r}")
        return tuple(value)

    def _sub(self, name: str) -> Section | None:
        if self.section is None or name not in self.section.names:
            return None
        return self.section.get(name).section

    def table(
        self,
        name: str,
        *,
        required: bool = False,
        limits: str | None = None,
        section: Section | None = None,
        part: bool = False,
    ) -> Table:
        """The sub-table ``name``; its section is the declared one unless given. A ``part``
        table is a policy part's own ``[policies.NAME.<part>]``, known while it is used."""
        if part:
            self._parts.add(name)
        value = self._raw(name, _REQUIRED if required else {})
        if not isinstance(value, dict):
            raise self.error(name, f"expected a table, got {value!r}")
        return Table(value, self.source, self.key(name), limits, section or self._sub(name))

    def tables(self, name: str, *, limits: str | None = None) -> list[tuple[str, Table]]:
        outer = self.table(name)
        outer.section = None  # its keys are the names the file chooses
        each = self._sub(name)
        result = []
        for key in outer.data:
            result.append((key, outer.table(key, limits=limits, section=each)))
        return result

    def reject_unknown(self) -> None:
        """Reject a key nobody reads: with a section, one it does not declare. Called
        before reading, a misspelt key is named instead of the key it misspells missing."""
        known = self._read if self.section is None else self.section.names | self._parts
        unknown = [key for key in self.data if key not in known]
        if unknown:
            expected = ", ".join(sorted(known)) or "nothing"
            raise self.error(unknown[0], f"is not a known key (expected one of: {expected})")

    def finish(self) -> None:
        """Reject a key nobody reads (:meth:`reject_unknown`) and fail on one that is
        declared but was not read (a bug in the reader)."""
        self.reject_unknown()
        ignored = [key for key in self.data if key not in self._read]
        if ignored:
            raise AssertionError(f"the reader of {self.key('')!r} ignores declared {ignored}")

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

    def finish_with(self, factory: Callable[[], T], *, name: str = "") -> T:
        """A whole table's reader ends here: :meth:`build` its object (errors at ``name``),
        then :meth:`finish` the table."""
        built = self.build(name, factory)
        self.finish()
        return built


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
    return config_from_data(read_toml(text, source=source), source=source)


def config_from_data(data: dict[str, Any], *, source: str = "<data>") -> RouterConfig:
    """Validate parsed TOML (nested dicts, as ``tomllib`` returns) into a
    :class:`RouterConfig`."""
    root = Table(data, source, "", section=ROOT)
    router = root.table("router", limits="router")
    default_region = router.text("region")
    window = router.build("", lambda: router.settings(WindowSettings))
    default_class_name = router.text("default_class")
    streamed = router.flag("streamed")
    quality = router.names("quality")
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


def _shared(root: Table) -> SharedSettings | None:
    """``[shared]``: state shared by the replicas of one deployment (Redis)."""
    if "shared" not in root.data:
        root.table("shared")
        return None
    table = root.table("shared", limits="shared")
    backend = table.text("backend")
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
    return table.finish_with(
        lambda: SharedSettings(url=url, **table.values(skip=("backend", "url")))
    )


def _breaker(table: Table) -> BreakerPolicy:
    return table.finish_with(lambda: table.settings(BreakerPolicy))


def _latency_profile(table: Table) -> LatencyProfile:
    return table.finish_with(lambda: LatencyProfile(**table.values()))


def _profiles(root: Table) -> dict[str, LatencyProfile]:
    profiles = dict(BUILTIN_PROFILES)
    for name, table in root.tables("profiles", limits="profile"):
        profiles[name] = _latency_profile(table)
    return profiles


def _target(
    name: str, table: Table, profiles: dict[str, LatencyProfile], default_region: str | None
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
        prior = _latency_profile(table.table("prior", limits="profile", section=PROFILE))
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
    units = table.integer("model_units")
    instances = table.integer("instances")
    hourly = table.number("hourly_usd")
    per_unit = table.number("hourly_usd_per_unit")
    per_instance = table.number("hourly_usd_per_instance")
    if per_unit is not None:
        hourly += per_unit * _need(table, units, "model_units", "hourly_usd_per_unit")
    if per_instance is not None:
        hourly += per_instance * _need(table, instances, "instances", "hourly_usd_per_instance")
    pricing = table.build(
        "",
        lambda: Pricing(
            input_per_million_usd=table.number("input_per_million_usd"),
            output_per_million_usd=table.number("output_per_million_usd"),
            hourly_usd=hourly,
            cache_read_per_million_usd=table.number("cache_read_per_million_usd"),
            cache_write_per_million_usd=table.number("cache_write_per_million_usd"),
        ),
    )
    tpm = table.number("tokens_per_minute")
    tpm_per_unit = table.number("tokens_per_minute_per_unit")
    if tpm_per_unit is not None:
        tpm = tpm_per_unit * _need(table, units, "model_units", "tokens_per_minute_per_unit")
    rps = table.number("requests_per_second")
    rps_per_instance = table.number("requests_per_second_per_instance")
    if rps_per_instance is not None:
        rps = rps_per_instance * _need(
            table, instances, "instances", "requests_per_second_per_instance"
        )
    capacity = Capacity(
        tokens_per_minute=tpm,
        requests_per_second=rps,
        concurrency=table.integer("concurrency"),
    )
    return table.finish_with(
        lambda: Target(
            name=name,
            pattern=pattern,
            model_id=table.text("model_id"),
            region=region,
            prior=prior,
            tier=table.text("tier"),
            pricing=pricing,
            capacity=capacity,
            ops_score=table.number("ops_score", field_default(Target, "ops_score")),
        )
    )


def _need(table: Table, value: int | None, name: str, because: str) -> int:
    if value is None:
        raise table.error(name, f"is required when {because} is set")
    return value


def _switcher(root: Table, targets: list[str]) -> SwitcherSettings | None:
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
    return table.finish_with(
        lambda: SwitcherSettings(
            primary=primary,
            order=order,
            **table.numbers(defaults),
        )
    )


@dataclass(frozen=True, slots=True)
class PartContext:
    """What building one policy part may read besides its own table: the policy's table
    (for errors and nested parts), the config's target names, the policy's latency
    predictor, the switcher's settings, and whether the part sits inside another."""

    policy: Table
    targets: list[str]
    predictor: LatencyPredictor
    switcher: SwitcherSettings | None
    nested: bool = False
    outer: str = ""
    """The part a nested part sits inside (``budget_guard``, ``tier``)."""


PartBuilder = Callable[[Table, PartContext], Any]
"""Builds one part from its table (``[policies.NAME.<part>]``) and the context."""

_FILTERS: dict[str, PartBuilder] = {}
_RANKERS: dict[str, PartBuilder] = {}
_PICKERS: dict[str, PartBuilder] = {}
_OUTER_ONLY = {"tier", "budget_guard"}
"""Parts that wrap another part of their kind, so cannot be the inner one."""


def _register(
    registry: dict[str, PartBuilder], name: str, build: PartBuilder, params: Section | None
) -> Callable[[], None]:
    if not name or not isinstance(name, str):
        raise ValueError(f"a part needs a name, got {name!r}")
    registry[name] = build
    if params is None:
        _PARAMS.pop(name, None)
    else:
        _PARAMS[name] = params

    def unregister() -> None:
        if registry.get(name) is build:
            del registry[name]
            if _PARAMS.get(name) is params:
                _PARAMS.pop(name, None)

    return unregister


_PARAMS: dict[str, Section] = {}
"""The declared table ``[policies.NAME.<part>]`` of each part registered with one; a part
registered without reads its table undeclared (the keys it reads are the known ones, and the
JSON Schema allows any)."""


def register_filter(
    name: str, build: PartBuilder, params: Section | None = None
) -> Callable[[], None]:
    """Make ``filters = ["<name>"]`` build a filter with ``build(table, context)``; ``params``
    declares its table's keys. Returns a function that removes it again."""
    return _register(_FILTERS, name, build, params)


def register_ranker(
    name: str, build: PartBuilder, params: Section | None = None
) -> Callable[[], None]:
    """Make ``ranker = "<name>"`` build a ranker with ``build(table, context)``; ``params``
    declares its table's keys. Returns a function that removes it again."""
    return _register(_RANKERS, name, build, params)


def register_picker(
    name: str, build: PartBuilder, params: Section | None = None
) -> Callable[[], None]:
    """Make ``picker = "<name>"`` build a picker with ``build(table, context)``; ``params``
    declares its table's keys. Returns a function that removes it again."""
    return _register(_PICKERS, name, build, params)


def part_params(name: str) -> Section | None:
    """The declared table of the registered part ``name``, if it declared one."""
    return _PARAMS.get(name)


def _part(
    kind: str, registry: dict[str, PartBuilder], name: str, key: str, context: PartContext
) -> Any:
    """Build the part ``name`` of ``kind`` from the policy's ``[<name>]`` table."""
    policy = context.policy
    build = registry.get(name)
    if build is None or (context.nested and name in _OUTER_ONLY):
        known = _inner(registry) if context.nested else tuple(registry)
        where = f"{context.outer}.{key}" if context.nested else key
        raise policy.error(where, f"names unknown {kind} {name!r} (known: {', '.join(known)})")
    params = policy.table(name, limits=name, section=_PARAMS.get(name), part=True)
    part = build(params, context)
    params.finish()
    return part


def _inner(registry: dict[str, PartBuilder]) -> tuple[str, ...]:
    """The parts of ``registry`` that may sit inside another (``tier``, ``budget_guard``)."""
    return tuple(name for name in registry if name not in _OUTER_ONLY)


def _filter(name: str, context: PartContext) -> Filter:
    return cast(Filter, _part("filter", _FILTERS, name, "filters", context))


def _ranker(name: str, context: PartContext) -> Ranker:
    key = "within" if context.nested else "ranker"
    return cast(Ranker, _part("ranker", _RANKERS, name, key, context))


def _picker(name: str, context: PartContext) -> Picker:
    return cast(Picker, _part("picker", _PICKERS, name, "picker", context))


def _schedule(params: Table, targets: list[str]) -> Schedule:
    offset = params.number("utc_offset_hours")
    time_zone = params.text("time_zone")
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


def _hour_windows(table: Table, name: str) -> tuple[tuple[float, float], ...]:
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


def _predictor(policy: Table, *, streamed: bool = False) -> LatencyPredictor:
    params = policy.table("prediction", limits="prediction")
    first_token = params.flag("first_token", streamed)
    predictor = LatencyPredictor(**params.numbers(LatencyPredictor()), first_token=first_token)
    params.finish()
    return predictor


def _cost_under_slo(params: Table, predictor: LatencyPredictor) -> CostUnderSlo:
    defaults = CostUnderSlo(avg_output_tokens=predictor.avg_output_tokens)
    return CostUnderSlo(**params.numbers(defaults), predictor=predictor)


def _headroom(params: Table, context: PartContext) -> Headroom | ThrottleBet:
    """``headroom``; with ``throttle_round_trip_ms`` its throttle cut becomes the throttle bet,
    judged within ``slo_p99_ms`` (default: the policy's ``cost_under_slo`` ranker's SLO)."""
    headroom = params.settings(Headroom)
    round_trip = params._raw("throttle_round_trip_ms")
    slo = params.number("slo_p99_ms")
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


def _ranker_slo(policy: Table) -> float | None:
    """The ``slo_p99_ms`` the policy's ``cost_under_slo`` ranker is given, if valid (the
    ranker reports a bad one itself)."""
    if policy.data.get("ranker") != "cost_under_slo":
        return None
    table = policy.data.get("cost_under_slo")
    value = table.get("slo_p99_ms") if isinstance(table, dict) else None
    if value is None or violation("cost_under_slo.slo_p99_ms", value) is not None:
        return None
    return float(value)


def _budget_guard(params: Table, context: PartContext) -> BudgetGuard:
    predictor = context.predictor
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
    inner_name = params.text("picker")
    if inner_name == "budget_guard":
        raise params.error("picker", "cannot be 'budget_guard' itself")
    inner = _picker(inner_name, replace(context, nested=True, outer="budget_guard"))
    cheaper = CostUnderSlo(
        slo_p99_ms=params.number("slo_p99_ms"),
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
            utc_offset_hours=params.number("utc_offset_hours"),
            time_zone=params.text("time_zone"),
            tolerance=params.number("tolerance"),
            slack=params.number("slack"),
        ),
    )


def _weighted(params: Table, context: PartContext) -> Weighted:
    weights_table = params.table("weights", required=True)
    weights = {}
    for target in list(weights_table.data):
        if target not in context.targets:
            raise weights_table.error(target, "is not a known target")
        weights[target] = weights_table.number(target, limit="weighted.weight")
    weights_table.finish()
    sticky = params.flag("sticky")
    return params.build("", lambda: Weighted(weights=weights, sticky=sticky))


def _primary(params: Table, context: PartContext) -> PrimaryShare:
    switcher = context.switcher
    if switcher is None:
        raise context.policy.error(
            "picker", "'primary' needs a [switcher] table naming the primary"
        )
    return PrimaryShare(
        switcher.primary_weight, switcher.canary_weight, sticky=params.flag("sticky")
    )


def _canary(params: Table, context: PartContext) -> Canary:
    candidate = params.text("candidate")
    if candidate not in context.targets:
        raise params.error(
            "candidate",
            f"names unknown target {candidate!r} (known: {', '.join(context.targets)})",
        )
    return Canary(candidate, **params.numbers(Canary(candidate)), sticky=params.flag("sticky"))


def _score(params: Table, context: PartContext) -> WeightedScore:
    weights = params.table("weights", limits="score.weights")
    score_weights = weights.build("", lambda: weights.settings(ScoreWeights))
    weights.finish()
    return WeightedScore(
        **params.numbers(WeightedScore()),
        weights=score_weights,
        seed_exact_latency=params.flag("seed_exact_latency"),
    )


def _latency(params: Table, context: PartContext) -> LowestLatency:
    percentile = params.text("percentile")
    if percentile not in ("p50", "p99"):
        raise params.error("percentile", f"expected 'p50' or 'p99', got {percentile!r}")
    return LowestLatency(percentile)


def _tier(params: Table, context: PartContext) -> TierOrder:
    order = params.names("order")
    within = params.text("within")
    if within == "tier":
        raise params.error("within", "cannot be 'tier' itself")
    inner = _ranker(within, replace(context, nested=True, outer="tier"))
    slo = params.number("slo_p99_ms")
    if slo is None and not isinstance(inner, CostUnderSlo):
        return TierOrder(order, inner)
    judge = inner if isinstance(inner, CostUnderSlo) else CostUnderSlo(predictor=context.predictor)
    if slo is not None:
        judge = replace(judge, slo_p99_ms=slo)
    return TierOrder(order, inner, judge.fits)


register_filter("healthy", lambda params, context: Healthy(), sections.empty("healthy"))
register_filter("headroom", _headroom, sections.HEADROOM)
register_filter(
    "latency_ceiling",
    lambda params, context: params.settings(LatencyCeiling),
    sections.LATENCY_CEILING,
)
register_filter("reliable", lambda params, context: params.settings(Reliable), sections.RELIABLE)
register_filter(
    "schedule", lambda params, context: _schedule(params, context.targets), sections.SCHEDULE
)
register_ranker("order", lambda params, context: ConfigOrder(), sections.empty("order"))
register_ranker("score", _score, sections.SCORE)
register_ranker("latency", _latency, sections.LATENCY)
register_ranker("cost", lambda params, context: params.settings(CheapestWithinSlo), sections.COST)
register_ranker(
    "predicted",
    lambda params, context: PredictedLatency(context.predictor),
    sections.empty("predicted"),
)
register_ranker(
    "cost_under_slo",
    lambda params, context: _cost_under_slo(params, context.predictor),
    sections.COST_UNDER_SLO,
)
register_ranker("tier", _tier, sections.tier_section(lambda: _inner(_RANKERS)))
register_ranker(
    "litellm_latency",
    lambda params, context: LiteLlmLatency(),
    sections.empty("litellm_latency"),
)
register_picker("best", lambda params, context: Best(), sections.empty("best"))
register_picker("weighted", _weighted, sections.WEIGHTED)
register_picker("primary", _primary, sections.PRIMARY)
register_picker(
    "spillover",
    lambda params, context: Spillover(
        **params.numbers(Spillover()), throttle_backoff=params.flag("throttle_backoff")
    ),
    sections.SPILLOVER,
)
register_picker("canary", _canary, sections.CANARY)
register_picker("random", lambda params, context: Uniform(), sections.empty("random"))
register_picker(
    "round_robin",
    lambda params, context: Uniform(rotate=True, name="round_robin"),
    sections.empty("round_robin"),
)
register_picker(
    "budget_guard", _budget_guard, sections.budget_guard_section(lambda: _inner(_PICKERS))
)

FILTERS = tuple(_FILTERS)
RANKERS = tuple(_RANKERS)
PICKERS = tuple(_PICKERS)
"""The part names the shipped registries know (plugins may add more)."""

POLICY = sections.policy_section(
    lambda: tuple(_FILTERS), lambda: tuple(_RANKERS), lambda: tuple(_PICKERS)
)
ROOT = sections.root_section(POLICY)
"""The whole file's declaration; the policy parts' names are the registries' at the time."""


def _policies(
    root: Table, switcher: SwitcherSettings | None, *, streamed: bool = False
) -> dict[str, Policy]:
    targets = [str(name) for name in root.data.get("targets", {})]
    policies: dict[str, Policy] = {}
    for name, table in root.tables("policies"):
        context = PartContext(table, targets, _predictor(table, streamed=streamed), switcher)
        predictor = context.predictor
        filters = tuple(_filter(f, context) for f in table.names("filters"))
        ranker = _ranker(table.text("ranker"), context)
        picker = _picker(table.text("picker"), context)
        budget = table.flag("budget")
        deadline = predictor if table.flag("deadline") else None
        last_resort = table.flag("last_resort")
        policies[name] = Policy(name, ranker, picker, filters, budget, deadline, last_resort)
        table.finish()
    if not policies:
        policies["default"] = Policy("default", WeightedScore(), Best(), (Healthy(), Headroom()))
    return policies


def _classes(
    root: Table,
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
        floor = table.text("quality_floor")
        if floor is not None:
            problem = floor_problem(floor, quality, [tier[member] for member in members])
            if problem is not None:
                raise table.error("quality_floor", problem)
        classes.append(RequestClass(name, members, policy, floor))
        table.finish()
    if not classes:
        classes.append(RequestClass("default", tuple(targets), next(iter(policies))))
    return tuple(classes)
