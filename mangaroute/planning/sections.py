"""Every section of a planning profile's TOML, declared once, as the router's are.

The declarations (:class:`mangaroute.config.sections.Section`) are what
:func:`mangaroute.planning.profile.load_profile` reads with the config's reader
(:class:`mangaroute.config.Table`): a key a section does not declare is rejected with the
router config's words, each key is read by its kind, and every default comes from the
dataclass the section fills, which also judges the ranges. A profile is complete, so every
key without a ``None`` option is required; its default is declared for the reference
(docs/planning.md) and the JSON Schema, both generated from these declarations
(:data:`PROFILE_DOCUMENT`).
"""

from __future__ import annotations

from typing import Any

from mangaroute.config.schema import TomlDocument
from mangaroute.config.sections import PROFILE, Key, Section, dataclass_keys
from mangaroute.planning.autoscaling import ScalingConfig
from mangaroute.planning.prices import Prices
from mangaroute.planning.recommend import RecommendSettings
from mangaroute.planning.tco import TcoAssumptions
from mangaroute.planning.traffic import CapacityAssumptions, TrafficProfile

__all__ = ["OBSERVED", "PROFILE_DOCUMENT", "PROFILE_ROOT", "SECTIONS"]

OBSERVED = Section(
    "[recommend.observed.PATTERN]",
    "mangaroute.planning.recommend.observed_profile",
    "Live latency of a deployment pattern, replacing its prior (as --observed does).",
    tuple(PROFILE.get(name) for name in ("p50_ms", "p90_ms", "p99_ms")),
)


def _declare(
    name: str,
    cls: type[Any],
    description: str,
    *extra: Key,
    skip: tuple[str, ...] = (),
    **docs: str,
) -> tuple[str, tuple[type[Any], Section]]:
    """Section ``[name]``, filled by dataclass ``cls``: its plain fields, then ``extra``."""
    keys = (*dataclass_keys(cls, skip=skip, **docs), *extra)
    read_by = f"{cls.__module__}.{cls.__qualname__}"
    return name, (cls, Section(f"[{name}]", read_by, description, keys))


SECTIONS: dict[str, tuple[type[Any], Section]] = dict(
    (
        _declare("traffic", TrafficProfile, "A day of chatbot traffic (seed section 2.2)."),
        _declare(
            "capacity",
            CapacityAssumptions,
            "Per-unit capacity figures (seed section 2.2).",
            Key(
                "sagemaker_instance_rps",
                "other",
                "requests/s one instance sustains, by instance type",
                required=True,
                schema={
                    "type": "object",
                    "minProperties": 1,
                    "additionalProperties": {"type": "number", "exclusiveMinimum": 0},
                },
            ),
            skip=("sagemaker_instance_rps",),
        ),
        _declare("prices", Prices, "Unit prices in USD (seed section 3.1)."),
        _declare(
            "tco",
            TcoAssumptions,
            "Volumes, splits and operating effort behind the TCO (seed section 3.1).",
        ),
        _declare(
            "recommend",
            RecommendSettings,
            "The latency-fit recommendation's requirement (seed section 1.2).",
            Key("observed", "tables", "live latency by pattern name", section=OBSERVED),
            skip=("observed",),
            min_throughput_rps="required req/s (absent: the traffic's peak req/s)",
        ),
        _declare(
            "autoscaling",
            ScalingConfig,
            "One SageMaker endpoint variant's auto-scaling (seed section 4.2).",
        ),
    )
)
"""Each section's name, the dataclass it fills and its declaration, in the shipped order."""

PROFILE_ROOT = Section(
    "the profile",
    "mangaroute.planning.load_profile -> Profile",
    "A planning profile; each sub-command needs some of its sections.",
    tuple(
        Key(name, "table", section.description, section=section)
        for name, (_, section) in SECTIONS.items()
    ),
)

PROFILE_DOCUMENT = TomlDocument(
    PROFILE_ROOT,
    "mangaroute planning profile",
    "A mangaroute planning profile (TOML). Reference: docs/planning.md.",
    "planning-profile.schema.json",
    "<!-- generated from mangaroute/planning/sections.py: do not edit -->",
    "<!-- end of the generated profile reference -->",
)
"""A planning profile as its JSON Schema (shipped as mangaroute/data/planning-profile.schema
.json, printed by ``mangaroute plan schema``) and its reference in docs/planning.md (between
the two lines) present it; :mod:`mangaroute.config.schema` builds both, as the config's."""
