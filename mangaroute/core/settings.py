"""The router's configuration as typed, validated values (what a TOML file turns into)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from mangaroute.core.breaker import BreakerPolicy
from mangaroute.core.fleet import SharedSettings
from mangaroute.core.limits import MAX_WINDOW_BUCKETS, RangeError, check_fields
from mangaroute.core.policy.base import Policy
from mangaroute.core.policy.quality import floor_problem, floor_tiers, quality_problem
from mangaroute.core.policy.switcher import SwitcherSettings
from mangaroute.core.targets import Target


@dataclass(frozen=True, slots=True)
class WindowSettings:
    """Sliding-window shape and the statistics derived from it."""

    window_s: float = 60.0
    bucket_s: float = 5.0
    relative_error: float = 0.01
    min_samples: int = 20
    refresh_ms: float = 50.0
    """After a change (a call recorded or handed out), the snapshot is rebuilt at most this
    often; a breaker move, an ejection or a fleet change rebuilds at once. 50 ms: see
    docs/architecture.md, *Rebuild on change*, for why not 5."""
    decision_ttl_s: float = 300.0
    """A decision that is never recorded stops counting as in flight after this long."""
    max_outstanding: int = 10_000
    """At most this many unrecorded decisions are tracked; the oldest are dropped first."""

    def __post_init__(self) -> None:
        check_fields(self, "router")
        if self.window_s < 2 * self.bucket_s:
            raise RangeError(
                "window_s",
                f"= {self.window_s:g} must hold at least 2 buckets of bucket_s = {self.bucket_s:g}",
            )
        if self.window_s / self.bucket_s > MAX_WINDOW_BUCKETS + 0.5:
            raise RangeError(
                "bucket_s",
                f"= {self.bucket_s:g} cuts window_s = {self.window_s:g} into "
                f"{self.window_s / self.bucket_s:.0f} buckets: at most {MAX_WINDOW_BUCKETS} "
                "(every bucket of every target is allocated up front)",
            )

    @property
    def buckets(self) -> int:
        return max(2, round(self.window_s / self.bucket_s))


@dataclass(frozen=True, slots=True)
class RequestClass:
    """A kind of request and the targets allowed to serve it, in order of preference."""

    name: str
    targets: tuple[str, ...]
    policy: str
    quality_floor: str | None = None
    """The lowest tier (on :attr:`RouterConfig.quality`) whose answers are good enough for
    this class; targets below it are fallbacks only (``None``: every tier is)."""

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for name in self.targets:
            if name in seen:
                raise ValueError(
                    f"request class {self.name!r} lists target {name!r} twice (each target "
                    "once, in order of preference)"
                )
            seen.add(name)


@dataclass(frozen=True, slots=True)
class RouterConfig:
    """Everything a :class:`~mangaroute.core.router.Router` is built from."""

    targets: tuple[Target, ...]
    classes: tuple[RequestClass, ...]
    policies: dict[str, Policy]
    default_class: str
    window: WindowSettings = field(default_factory=WindowSettings)
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    switcher: SwitcherSettings | None = None
    source: str = "<memory>"
    shared: SharedSettings | None = None
    """Shared state across replicas (``[shared]``), or ``None`` for a lone router."""
    quality: tuple[str, ...] = ()
    """The targets' tiers from lowest to highest answer quality (``[router] quality``): the
    ladder the classes' quality floors are read on. Empty: no class has a floor."""

    def __post_init__(self) -> None:
        names = [t.name for t in self.targets]
        if not names:
            raise ValueError("a router needs at least one target")
        if len(set(names)) != len(names):
            raise ValueError(f"target names must be unique, got {names}")
        known = set(names)
        class_names = [c.name for c in self.classes]
        if len(set(class_names)) != len(class_names):
            raise ValueError(f"request class names must be unique, got {class_names}")
        for request_class in self.classes:
            if not request_class.targets:
                raise ValueError(f"request class {request_class.name!r} lists no targets")
            for name in request_class.targets:
                if name not in known:
                    raise ValueError(
                        f"request class {request_class.name!r} names unknown target {name!r}"
                    )
            if request_class.policy not in self.policies:
                raise ValueError(
                    f"request class {request_class.name!r} uses unknown policy "
                    f"{request_class.policy!r}"
                )
        if self.default_class not in class_names:
            raise ValueError(f"default_class {self.default_class!r} is not a configured class")
        if self.switcher is not None:
            for name in self.switcher.order:
                if name not in known:
                    raise ValueError(f"switcher order names unknown target {name!r}")
        self._apply_quality_floors()

    def _apply_quality_floors(self) -> None:
        """Hand each policy the tiers that meet the floor of every class it serves (checked
        here too, for configs built in code rather than read from TOML)."""
        problem = quality_problem(self.quality, [t.tier for t in self.targets])
        if problem is not None:
            raise ValueError(f"quality {problem}")
        floors: dict[str, list[tuple[str, frozenset[str]]]] = {}
        for request_class in self.classes:
            floor = request_class.quality_floor
            if floor is None:
                continue
            tiers = [self.target(name).tier for name in request_class.targets]
            problem = floor_problem(floor, self.quality, tiers)
            if problem is not None:
                raise ValueError(f"request class {request_class.name!r} quality_floor {problem}")
            floors.setdefault(request_class.policy, []).append(
                (request_class.name, floor_tiers(self.quality, floor))
            )
        if floors or any(policy.floors for policy in self.policies.values()):
            policies = {
                name: replace(policy, floors=tuple(floors.get(name, ())))
                for name, policy in self.policies.items()
            }
            object.__setattr__(self, "policies", policies)

    def target(self, name: str) -> Target:
        for target in self.targets:
            if target.name == name:
                return target
        raise KeyError(name)
