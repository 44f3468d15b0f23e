"""Planning inputs from a TOML profile (stdlib ``tomllib``), strictly validated.

A profile is complete: every key of every section it has must be present (the shipped
``mangaassist.toml`` is the template to copy), unknown keys are errors, and each error names
the file, the section and the key. Command-line values are applied to the parsed TOML *before*
validation, so a bad flag gets the same message (plus the flag that set it).
"""

from __future__ import annotations

import tomllib
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from mangaroute.core.errors import ConfigError, echo
from mangaroute.planning.autoscaling import ScalingConfig
from mangaroute.planning.errors import PlanningInputError, check_positive
from mangaroute.planning.prices import Prices
from mangaroute.planning.recommend import REFERENCE_CANDIDATES, observed_profile
from mangaroute.planning.tco import TcoAssumptions
from mangaroute.planning.traffic import CapacityAssumptions, TrafficProfile

__all__ = [
    "SHIPPED_PROFILE",
    "Override",
    "Profile",
    "ProfileError",
    "RecommendSettings",
    "load_profile",
    "parse_assignment",
    "parse_observed",
]

SHIPPED_PROFILE = "mangaassist.toml"
T = TypeVar("T")


class ProfileError(ConfigError, PlanningInputError):
    """A profile (or a flag applied to it) is invalid; the message names file and key.

    A :class:`~mangaroute.core.errors.ConfigError` like every invalid file (``source`` the
    file, ``key`` the dotted key such as ``traffic.peak_multiplier``), and still a
    :class:`PlanningInputError` (``field``, ``message``) for callers written before that.
    """

    def __init__(self, source: str, field: str, message: str, origin: str | None = None) -> None:
        section, dot, key = field.partition(".")
        where = f"[{section}] {key}: " if dot else f"[{section}]: " if section else ""
        suffix = f" (set by {origin})" if origin else ""
        self.source = source
        self.key = field
        self.field = field or "file"
        self.message = message
        self.text = f"{source}: {where}{message}{suffix}"
        Exception.__init__(self, self.text)

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class RecommendSettings:
    """The ``[recommend]`` section.

    ``max_p99_ms`` 1500 is the FM-inference share of MangaAssist's 3 s budget (seed §1.1).
    ``max_monthly_cost_usd`` 50,000 is our assumption (the seed names no budget).
    ``min_throughput_rps`` absent means "the traffic profile's peak req/s". ``observed`` maps a
    pattern to live ``p50_ms`` / ``p90_ms`` / ``p99_ms`` numbers that replace its prior.
    """

    max_p99_ms: float = 1500.0
    max_monthly_cost_usd: float = 50_000.0
    needs_custom_model: bool = False
    seed_exact_latency_score: bool = False
    min_throughput_rps: float | None = None
    observed: Mapping[str, Mapping[str, float]] | None = None

    def __post_init__(self) -> None:
        check_positive("max_p99_ms", self.max_p99_ms)
        check_positive("max_monthly_cost_usd", self.max_monthly_cost_usd)
        if self.min_throughput_rps is not None:
            check_positive("min_throughput_rps", self.min_throughput_rps)
        known = {c.pattern for c in REFERENCE_CANDIDATES}
        for pattern, numbers in (self.observed or {}).items():
            if pattern not in known:
                raise PlanningInputError(
                    f"observed.{pattern}", f"unknown pattern (known: {', '.join(sorted(known))})"
                )
            try:
                observed_profile(pattern, numbers)
            except PlanningInputError as exc:
                field = "observed." + exc.field.removeprefix("profiles.")
                raise PlanningInputError(field, exc.message) from exc


_SECTIONS: dict[str, type[Any]] = {
    "traffic": TrafficProfile,
    "capacity": CapacityAssumptions,
    "prices": Prices,
    "tco": TcoAssumptions,
    "recommend": RecommendSettings,
    "autoscaling": ScalingConfig,
}


@dataclass(frozen=True)
class Profile:
    """The validated sections of a profile; a section the file lacks is ``None``."""

    source: str
    traffic: TrafficProfile | None = None
    capacity: CapacityAssumptions | None = None
    prices: Prices | None = None
    tco: TcoAssumptions | None = None
    recommend: RecommendSettings | None = None
    autoscaling: ScalingConfig | None = None


@dataclass(frozen=True)
class Override:
    """A command-line value: dotted ``path`` (``traffic.peak_multiplier``), value, flag."""

    path: tuple[str, ...]
    value: Any
    origin: str


def parse_assignment(text: str) -> tuple[tuple[str, ...], Any]:
    """Parse ``section.key=value`` (``--set``). The value is read as a TOML value, falling back
    to a plain string, so ``3.5`` is a float, ``true`` a bool and ``Asia/Tokyo`` a string."""
    key, sep, raw = text.partition("=")
    path = tuple(part.strip() for part in key.split("."))
    if not sep or len(path) < 2 or not all(path):
        raise PlanningInputError("--set", f"expected SECTION.KEY=VALUE, got {text!r}")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    except RecursionError:
        raise PlanningInputError("--set", f"{echo(raw)} is nested too deeply to read") from None
    return path, value


def parse_observed(text: str) -> tuple[str, dict[str, float]]:
    """Parse ``PATTERN=P50/P90/P99`` (``--observed``), milliseconds."""
    pattern, sep, raw = text.partition("=")
    parts = raw.split("/")
    if not sep or not pattern.strip() or len(parts) != 3:
        raise PlanningInputError("--observed", f"expected PATTERN=P50/P90/P99, got {text!r}")
    try:
        numbers = [float(p) for p in parts]
    except ValueError as exc:
        raise PlanningInputError("--observed", f"latencies must be numbers, got {raw!r}") from exc
    return pattern.strip(), dict(zip(("p50_ms", "p90_ms", "p99_ms"), numbers, strict=True))


def _field_types(cls: type[Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls)}


def _is_optional(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType) and type(
        None
    ) in typing.get_args(hint)


def _coerce(hint: Any, value: Any) -> Any:
    """Check a TOML value against a field type; raise ``ValueError`` with the reason."""
    if _is_optional(hint):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    origin = typing.get_origin(hint)
    if hint is bool:
        if not isinstance(value, bool):
            raise ValueError(f"must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ValueError(f"must be a string, got {value!r}")
        return value
    if origin is not None and issubclass(origin, Mapping):
        if not isinstance(value, Mapping):
            raise ValueError(f"must be a table, got {value!r}")
        inner = typing.get_args(hint)[1]
        return types.MappingProxyType({str(k): _coerce(inner, v) for k, v in value.items()})
    raise TypeError(f"unsupported field type {hint!r}")  # pragma: no cover - programming error


def _parse_section(name: str, table: Any, source: str, origins: Mapping[str, str]) -> Any:
    if not isinstance(table, Mapping):
        raise ProfileError(source, name, "must be a table")
    cls = _SECTIONS[name]
    types_ = _field_types(cls)
    unknown = sorted(set(table) - set(types_))
    if unknown:
        key = unknown[0]
        raise ProfileError(
            source,
            f"{name}.{key}",
            f"unknown key (expected one of: {', '.join(types_)})",
            origins.get(f"{name}.{key}"),
        )
    kwargs: dict[str, Any] = {}
    for key, hint in types_.items():
        where = f"{name}.{key}"
        if key not in table:
            if _is_optional(hint):
                continue
            raise ProfileError(source, where, "missing (a profile must give every key)")
        try:
            kwargs[key] = _coerce(hint, table[key])
        except ValueError as exc:
            raise ProfileError(source, where, str(exc), origins.get(where)) from exc
    try:
        return cls(**kwargs)
    except PlanningInputError as exc:
        where = f"{name}.{exc.field}"
        origin = origins.get(where) or origins.get(where.rsplit(".", 1)[0])
        raise ProfileError(source, where, exc.message, origin) from exc


def _read(path: str | Path | None) -> tuple[str, str]:
    if path is None:
        text = resources.files("mangaroute.planning").joinpath(SHIPPED_PROFILE).read_text("utf-8")
        return f"{SHIPPED_PROFILE} (shipped MangaAssist profile)", text
    try:
        return str(path), Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(str(path), "", f"cannot be read: {exc.strerror or exc}") from exc


def _apply(raw: dict[str, Any], overrides: Sequence[Override], source: str) -> dict[str, str]:
    origins: dict[str, str] = {}
    for o in overrides:
        node = raw
        for i, part in enumerate(o.path[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ProfileError(source, ".".join(o.path[: i + 1]), "is not a table", o.origin)
            node = child
        node[o.path[-1]] = o.value
        origins[".".join(o.path)] = o.origin
    return origins


def load_profile(
    path: str | Path | None = None,
    *,
    overrides: Sequence[Override] = (),
    required: Iterable[str] = (),
) -> Profile:
    """Read, override and validate a profile; ``None`` reads the shipped MangaAssist profile."""
    source, text = _read(path)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(source, "", f"not valid TOML: {exc}") from exc
    except RecursionError:
        raise ProfileError(
            source, "", "not usable TOML: arrays or inline tables are nested too deeply to read"
        ) from None
    origins = _apply(raw, overrides, source)
    unknown = sorted(set(raw) - set(_SECTIONS))
    if unknown:
        raise ProfileError(
            source, unknown[0], f"unknown section (expected one of: {', '.join(_SECTIONS)})"
        )
    for name in required:
        if name not in raw:
            raise ProfileError(source, name, "missing section")
    parsed = {name: _parse_section(name, raw[name], source, origins) for name in raw}
    return Profile(source=source, **parsed)


def need(value: T | None, section: str, profile: Profile) -> T:
    """The section's value, or a :class:`ProfileError` naming the missing section."""
    if value is None:
        raise ProfileError(profile.source, section, "missing section")
    return value
