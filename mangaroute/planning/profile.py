"""Planning inputs from a TOML profile, read by the config's one reader.

The sections are declared in :mod:`mangaroute.planning.sections` and read by
:class:`mangaroute.config.Table`, as the router's config and the simulator's scenarios are: a
profile is complete (every key of every section it has must be present; the shipped
``mangaassist.toml`` is the template to copy), unknown keys are errors in the router config's
words, and each error names the file, the section and the key. Command-line values are applied
to the parsed TOML *before* validation, so a bad flag gets the same message (plus the flag that
set it).
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from mangaroute.config import REQUIRED, Table, read_toml
from mangaroute.core.errors import ConfigError, echo
from mangaroute.planning.autoscaling import ScalingConfig
from mangaroute.planning.errors import PlanningInputError
from mangaroute.planning.prices import Prices
from mangaroute.planning.recommend import RecommendSettings
from mangaroute.planning.sections import PROFILE_ROOT, SECTIONS
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


def _instance_rps(table: Table) -> Mapping[str, float]:
    """``[capacity.sagemaker_instance_rps]``: a number per instance type the file names."""
    rps = table.table("sagemaker_instance_rps", required=True)
    values = {name: rps.number(name, REQUIRED) for name in list(rps.data)}
    rps.finish()
    return MappingProxyType(values)


def _observed(table: Table) -> Mapping[str, Mapping[str, float]] | None:
    """``[recommend.observed.PATTERN]`` tables, or ``None`` when there are none."""
    if "observed" not in table.data:
        return None
    found = {}
    for pattern, numbers in table.tables("observed"):
        numbers.reject_unknown()
        found[pattern] = MappingProxyType(numbers.values())
        numbers.finish()
    return MappingProxyType(found)


_READ_APART: dict[str, dict[str, Callable[[Table], Any]]] = {
    "capacity": {"sagemaker_instance_rps": _instance_rps},
    "recommend": {"observed": _observed},
}
"""The keys of a section that are tables, each with its reader."""


def _origin(origins: Mapping[str, str], key: str) -> str | None:
    """The flag that set ``key`` or the table holding it, else one that set a key in it."""
    parts = key.split(".")
    for end in range(len(parts), 0, -1):
        found = origins.get(".".join(parts[:end]))
        if found is not None:
            return found
    inside = [origin for path, origin in origins.items() if key and path.startswith(f"{key}.")]
    return inside[0] if inside else None


def _section(name: str, table: Table, origins: Mapping[str, str]) -> Any:
    cls = SECTIONS[name][0]
    apart = _READ_APART.get(name, {})
    table.reject_unknown()
    values = table.values(skip=tuple(apart))
    for key, read in apart.items():
        values[key] = read(table)
    table.finish()
    try:
        return cls(**values)
    except PlanningInputError as exc:
        key = f"{name}.{exc.field}"
        raise ProfileError(table.source, key, exc.message, _origin(origins, key)) from None


def _as_profile_error(exc: ConfigError, origins: Mapping[str, str]) -> ProfileError:
    """The reader's error as a :class:`ProfileError`: same words, plus the flag that set it."""
    where = f"{exc.source}: [{exc.key}] " if exc.key else f"{exc.source} "
    message = str(exc).removeprefix(where)
    return ProfileError(exc.source, exc.key, message, _origin(origins, exc.key))


def load_profile(
    path: str | Path | None = None,
    *,
    overrides: Sequence[Override] = (),
    required: Iterable[str] = (),
) -> Profile:
    """Read, override and validate a profile; ``None`` reads the shipped MangaAssist profile."""
    source, text = _read(path)
    origins: dict[str, str] = {}
    try:
        raw = read_toml(text, source=source)
        origins = _apply(raw, overrides, source)
        root = Table(raw, source, "", section=PROFILE_ROOT)
        root.reject_unknown()
        needed = set(required)
        tables = {
            name: root.table(name, required=True)
            for name in SECTIONS
            if name in raw or name in needed
        }
        root.finish()
        parsed = {name: _section(name, table, origins) for name, table in tables.items()}
    except ProfileError:
        raise
    except ConfigError as exc:
        raise _as_profile_error(exc, origins) from None
    return Profile(source=source, **parsed)


def need(value: T | None, section: str, profile: Profile) -> T:
    """The section's value, or a :class:`ProfileError` naming the missing section."""
    if value is None:
        raise ProfileError(profile.source, section, "is required")
    return value
