"""Every table of a simulator scenario's TOML, declared once, as the router config's are.

The declarations (:data:`SCENARIO_ROOT` and the sections under it) are what
:func:`mangaroute.simulate.scenario.parse_scenario` reads with the config's reader
(:class:`mangaroute.config.Table`): a key a section does not declare is rejected with the
router config's words, and every default comes from the simulator's dataclasses (the
:class:`Scenario` a file fills is declared here for that reason). The same declarations give
the scenario's JSON Schema (``mangaroute/data/scenario.schema.json``, printed by
``mangaroute simulate --schema``) and its reference in docs/simulate.md
(:data:`SCENARIO_DOCUMENT`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from mangaroute.config.schema import TomlDocument
from mangaroute.config.sections import Key, Section, dataclass_keys, field_default
from mangaroute.invoke.client import InvokeSettings
from mangaroute.simulate.engine import Budget
from mangaroute.simulate.fleet import FAULT_KINDS, PHYSICS, PUBLISHED, Fault, TargetModel
from mangaroute.simulate.traffic import DAY_S, FlashSale, TrafficModel

__all__ = [
    "FAULT_PRESETS",
    "FLASH_SALE",
    "PRESETS",
    "SCENARIO_DOCUMENT",
    "SCENARIO_ROOT",
    "Contender",
    "Scenario",
]

PRESETS = (
    "provisioned-outage",
    "haiku-throttle-storm",
    "sagemaker-slow",
    "fast-errors",
    "regional-incident",
    "quota-cut",
)
FLASH_SALE = "flash-sale"
FAULT_PRESETS = (*PRESETS, FLASH_SALE)
"""Named faults for ``--faults`` and ``scenario.faults``."""


@dataclass(frozen=True, slots=True)
class Contender:
    name: str
    description: str
    overlay: dict[str, Any] = field(default_factory=dict)
    invoke: InvokeSettings = field(default_factory=InvokeSettings)
    """Its routed calls' settings (``[contenders.NAME.invoke]``: fit, hedging)."""


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    source: str
    config_text: str
    config_source: str
    seed: int = 7
    refresh_ms: float = 2000.0
    traffic: TrafficModel = field(default_factory=TrafficModel)
    budget: Budget = field(default_factory=Budget)
    fleet: dict[str, TargetModel] = field(default_factory=dict)
    fleet_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: tuple[Fault, ...] = ()
    fault_names: tuple[str, ...] = ()
    contenders: tuple[Contender, ...] = ()
    utc_offset_hours: float = 9.0
    model: str = PUBLISHED
    output_estimate: dict[str, int] = field(default_factory=dict)
    """``[output_estimate]``: output tokens the router is told to expect, per class."""
    last_resorts: tuple[str, ...] = ()
    """Targets every contender keeps at the end of each class whose list in the scenario's
    config has them, even a contender that narrows the class (a way out the scenario adds
    for everyone)."""
    """The targets' physics: ``published`` (cited defaults) or ``seed-profiles``."""


def _optional(keys: tuple[Key, ...]) -> tuple[Key, ...]:
    """``keys`` with none required: a scenario gives only what it changes."""
    return tuple(dataclasses.replace(key, required=False) for key in keys)


_TIME_OF_DAY = {
    "oneOf": [
        {"type": "string", "pattern": "^0*(1?[0-9]|2[0-3]):0*[0-5]?[0-9]$"},
        {"type": "number", "minimum": 0, "exclusiveMaximum": DAY_S},
    ]
}
_OBJECT = {"type": "object"}
_START = Key(
    "start", "other", 'local time "HH:MM" (or seconds after midnight)', True, schema=_TIME_OF_DAY
)


def _numbers(kind: str) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": {"type": kind, "minimum": 0}}


HEAD = Section(
    "[scenario]",
    "mangaroute.simulate.parse_scenario -> Scenario",
    "What the scenario is, the router config it runs and the day's settings.",
    (
        Key(
            "config",
            "string",
            "router config file, relative to the scenario's folder",
            default_doc="the shipped MangaAssist config",
        ),
        Key("name", "string", "the scenario's name", default_doc="the file's name"),
        Key("description", "string", "one line for reports", default_doc="none"),
        Key("seed", "integer", "random seed of the day", default=field_default(Scenario, "seed")),
        Key(
            "refresh_ms",
            "number",
            "the router's rebuild interval (ms), > 0",
            default=field_default(Scenario, "refresh_ms"),
        ),
        Key(
            "utc_offset_hours",
            "number",
            "local time of the day's clock, >= -23.99",
            default=field_default(Scenario, "utc_offset_hours"),
        ),
        Key("faults", "names", "named fault presets to add", default=(), choices=FAULT_PRESETS),
        Key(
            "last_resorts",
            "names",
            "targets of the scenario's config every contender keeps at the end of each class "
            "that lists them, even one whose contender narrows the class",
            default=(),
        ),
        Key(
            "contenders",
            "names",
            "the contenders to compare",
            default_doc="every built-in and file contender",
        ),
        Key("model", "enum", "the targets' physics", default=PUBLISHED, choices=PHYSICS),
    ),
)
TOKENS = Section(
    "[traffic.tokens.CLASS]",
    "mangaroute.simulate.traffic.TokenShape",
    "A request class's token counts (absent keys: the class's shipped shape).",
    (
        Key("input", "number", "mean input tokens, >= 1"),
        Key("output", "number", "mean output tokens, >= 1"),
        Key("spread", "number", "log-normal spread, 0-2"),
    ),
)
FLASH_SALE_SECTION = Section(
    "[[traffic.flash_sales]]",
    "mangaroute.simulate.traffic.FlashSale",
    "A burst of traffic on top of the curve.",
    (
        _START,
        *_optional(
            dataclass_keys(
                FlashSale,
                skip=("start_s",),
                minutes="how long, > 0",
                multiplier="traffic x this, > 0",
            )
        ),
    ),
)
TRAFFIC = Section(
    "[traffic]",
    "mangaroute.simulate.traffic.TrafficModel",
    "The simulated day's messages: volume, shape over the day, classes and tokens.",
    (
        Key(
            "messages",
            "integer",
            "messages in the day, >= 1",
            default=field_default(TrafficModel, "messages"),
        ),
        Key(
            "curve",
            "other",
            "24 hourly weights (local time), not all zero",
            default_doc="the MangaAssist curve",
            schema={
                "type": "array",
                "items": {"type": "number", "minimum": 0},
                "minItems": 24,
                "maxItems": 24,
            },
        ),
        Key(
            "mix",
            "other",
            "share of each request class",
            default_doc="the MangaAssist mix",
            schema=_numbers("number"),
        ),
        Key("tokens", "tables", "token shape by request class", section=TOKENS),
        Key(
            "messages_per_session",
            "number",
            "messages a session sends, >= 1",
            default=field_default(TrafficModel, "messages_per_session"),
        ),
        Key("flash_sales", "array", "bursts of traffic", section=FLASH_SALE_SECTION),
    ),
)
BUDGET = Section(
    "[budget]",
    "mangaroute.simulate.engine.Budget",
    "A message's latency budget and how its answer is delivered.",
    _optional(
        dataclass_keys(
            Budget,
            deadline_ms="a message's whole budget (ms), pre + inference + post",
            inference_ms="the inference SLO (ms) the report's inference <= SLO figure uses, > 0",
            pre_ms="the orchestrator's work before inference (ms), >= 0",
            post_ms="the orchestrator's work after inference (ms), >= 0",
            first_token_ms="a streamed answer's first-token SLO (ms); absent: inference_ms",
            streaming="answered at the first token (ConverseStream)",
        )
    ),
)
FLEET = Section(
    "[fleet.NAME]",
    "mangaroute.simulate.fleet.TargetModel",
    "One config target's simulated behaviour; tokens_per_minute and instances change the "
    "router config too.",
    (
        Key("tokens_per_minute", "number", "the target's quota (tokens/min), > 0"),
        Key("instances", "integer", "instances of a target the config gives instances, >= 1"),
        *_optional(
            dataclass_keys(
                TargetModel,
                skip=("physics",),
                ttft_share="seed-profiles: share of the median to the first token, 0-1",
                reference_output_tokens="seed-profiles: the profile's answer length, >= 1",
                error_latency_ms="how fast a baseline error returns (ms), > 0",
                throttle_latency_ms="how fast a throttle returns (ms), > 0",
                idle_cold_s="a call after this long idle starts cold (s), > 0",
                max_instances="SageMaker auto-scaling: most instances, >= 1",
                target_utilization="SageMaker auto-scaling: target share of slots busy, 0-1",
                scale_out_lag_s="SageMaker: a new instance serves this long after it is asked",
                scale_out_cooldown_s="SageMaker auto-scaling: wait between scale-outs (s)",
                scale_in_cooldown_s="SageMaker auto-scaling: wait between scale-ins (s)",
                ttft_ms="published: median first token at no input (ms); absent: the tier's",
                ttft_per_1k_input_ms="published: first token's added ms per 1,000 input tokens",
                tokens_per_s="published: median output rate; absent: the tier's",
                tps_sigma="published: log-normal spread of the output rate, >= 0",
                error_rate="published: baseline share of calls failing, 0-1",
                requests_per_minute="on-demand: requests-per-minute quota; absent: none",
                daily_tokens="on-demand: daily token quota; absent: tokens_per_minute x 1,440",
                burndown="on-demand: output tokens count x this, >= 1; absent: by model id",
                cross_region_ms="added latency (ms); absent: 60 for a geo-prefixed model id",
                slots_per_instance="SageMaker: concurrent requests per instance, >= 1",
                cache_read_price="cached input tokens cost this x the input price, >= 0",
            )
        ),
    ),
)
FAULT = Section(
    "[[faults]]",
    "mangaroute.simulate.fleet.Fault",
    "A fault on one target for a while.",
    (
        Key("kind", "enum", "what goes wrong", required=True, choices=FAULT_KINDS),
        Key("target", "string", "a target of the config", required=True),
        _START,
        Key("minutes", "number", "how long, > 0", required=True),
        *_optional(
            dataclass_keys(
                Fault,
                skip=("kind", "target", "start_s", "end_s"),
                factor="strength (kind's meaning), > 0",
                probability="share of calls hit",
                latency_ms="a fast error's latency, > 0",
            )
        ),
    ),
)
CONTENDER = Section(
    "[contenders.NAME]",
    "mangaroute.simulate.scenario.Contender",
    "A policy compared side by side: an overlay on the router config.",
    (
        Key("description", "string", "one line for reports", default_doc="none"),
        Key("config", "other", "merged into the router config before it is read", schema=_OBJECT),
        Key("invoke", "other", "its routed calls' settings (docs/simulate.md)", schema=_OBJECT),
    ),
)
SCENARIO_ROOT = Section(
    "the scenario",
    "mangaroute.simulate.load_scenario -> Scenario",
    "A simulator scenario: the day, the fleet's quirks, the faults, the contenders.",
    (
        Key("scenario", "table", HEAD.description, required=True, section=HEAD),
        Key("traffic", "table", TRAFFIC.description, section=TRAFFIC),
        Key("budget", "table", BUDGET.description, section=BUDGET),
        Key(
            "config",
            "other",
            "changes merged into the router config (a target it adds, ...)",
            schema=_OBJECT,
        ),
        Key("fleet", "tables", "simulated behaviour by config target", section=FLEET),
        Key("faults", "array", "faults on targets", section=FAULT),
        Key("contenders", "tables", "contenders beside the built-in ones", section=CONTENDER),
        Key(
            "output_estimate",
            "other",
            "output tokens the router is told to expect, by request class",
            schema=_numbers("integer"),
        ),
    ),
)
SCENARIO_DOCUMENT = TomlDocument(
    SCENARIO_ROOT,
    "mangaroute simulator scenario",
    "A mangaroute simulator scenario (TOML). Reference: docs/simulate.md.",
    "scenario.schema.json",
    "<!-- generated from mangaroute/simulate/sections.py: do not edit -->",
    "<!-- end of the generated scenario reference -->",
)
"""A scenario file as its JSON Schema (shipped as mangaroute/data/scenario.schema.json,
printed by ``mangaroute simulate --schema``) and its reference in docs/simulate.md (between
the two lines) present it; :func:`mangaroute.simulate.scenario.parse_scenario` reads exactly
these declarations."""
