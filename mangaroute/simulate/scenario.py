"""Scenario files: the day to simulate, the fleet's quirks, the faults, the contenders.

A scenario is one TOML file (see ``mangaroute/data/scenarios/default.toml`` and
``docs/simulate.md``). Like the router config, every error names the file, the key and what
was expected - ``bad.toml: [faults.0.kind] expected one of outage, throttle_storm, slowdown,
fast_errors, quota_cut, got 'meltdown'`` - and unknown keys are errors.

Contenders are the policies compared side by side. Each is an overlay on the router config
(``[contenders.NAME.config]`` is merged into the config's TOML before it is parsed), so a
contender can re-point request classes at other policies, define new ``[policies.*]`` and
re-order a class's targets - but not add targets to a class: what a class may be served by is
a quality decision of the base config, and the oracle respects it too. The built-in contenders
live in ``mangaroute/data/scenarios/contenders.toml``.

Its tables are declared once, in :mod:`mangaroute.simulate.sections` (with the
:class:`Scenario` and :class:`Contender` a file fills), and read here by the router config's
reader against those declarations.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import tomllib
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from mangaroute.config import (
    REQUIRED,
    Table,
    default_config_text,
    parse_config,
    read_toml,
)
from mangaroute.core.errors import ConfigError
from mangaroute.core.settings import RouterConfig
from mangaroute.core.targets import Pattern
from mangaroute.simulate.driver import invoke_settings, read_output_estimate
from mangaroute.simulate.engine import Budget
from mangaroute.simulate.fleet import (
    FAULT_KINDS,
    PHYSICS,
    PUBLISHED,
    Fault,
    TargetModel,
    is_cross_region,
)
from mangaroute.simulate.sections import (
    FAULT,
    FAULT_PRESETS,
    FLASH_SALE,
    FLASH_SALE_SECTION,
    SCENARIO_ROOT,
    Contender,
    Scenario,
)
from mangaroute.simulate.traffic import (
    DAY_S,
    DEFAULT_MIX,
    DEFAULT_TOKENS,
    MANGAASSIST_CURVE,
    FlashSale,
    TokenShape,
    TrafficModel,
)

__all__ = [
    "DAY_START_UTC",
    "FAULT_PRESETS",
    "FLASH_SALE",
    "Contender",
    "Scenario",
    "builtin_contenders",
    "builtin_scenarios",
    "contender_config",
    "instances_of",
    "load_scenario",
    "merge",
    "parse_scenario",
    "with_faults",
]

SCENARIO_DIR = ("data", "scenarios")
CONTENDERS_FILE = "contenders.toml"
DAY_START_UTC = 1_736_899_200.0
"""2025-01-15 00:00 UTC (a Wednesday): the simulated day is that date, its midnight local to
``utc_offset_hours`` (JST: 2025-01-14 15:00 UTC)."""


def builtin_scenarios() -> list[str]:
    """Names of the shipped scenario files (``default``, ``bad-day``, ...)."""
    folder = resources.files("mangaroute").joinpath(*SCENARIO_DIR)
    return sorted(
        entry.name.removesuffix(".toml")
        for entry in folder.iterdir()
        if entry.name.endswith(".toml") and entry.name != CONTENDERS_FILE
    )


def load_scenario(name_or_path: str | None = None) -> Scenario:
    """A shipped scenario by name (default ``default``) or a scenario file by path."""
    name = name_or_path or "default"
    if name in builtin_scenarios():
        resource = resources.files("mangaroute").joinpath(*SCENARIO_DIR, f"{name}.toml")
        return parse_scenario(resource.read_text("utf-8"), source=f"<mangaroute>/{name}.toml")
    path = Path(name)
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        known = ", ".join(builtin_scenarios())
        raise ConfigError(
            f"cannot be read: {exc.strerror or exc} (shipped scenarios: {known})", source=name
        ) from None
    return parse_scenario(text, source=str(path), base_dir=path.parent)


def parse_scenario(
    text: str, *, source: str = "<string>", base_dir: Path | None = None
) -> Scenario:
    root = Table(read_toml(text, source=source), source, "", section=SCENARIO_ROOT)
    head = root.table("scenario", required=True)
    config_path = head.text("config", None)
    if config_path is None:
        config_text, config_source = default_config_text(), "<mangaroute>/data/mangaassist.toml"
    else:
        path = (base_dir or Path()) / config_path
        try:
            config_text, config_source = path.read_text("utf-8"), str(path)
        except OSError as exc:
            raise head.error("config", f"cannot be read: {exc.strerror or exc}") from None
    name = head.text("name", Path(source).stem)
    description = head.text("description", "")
    seed = head.integer("seed")
    refresh_ms = head.number("refresh_ms", positive=True)
    offset = head.number("utc_offset_hours", minimum=-23.99)
    preset_names = head.names("faults")
    last_resorts = head.names("last_resorts")
    wanted = head.names("contenders", None)
    physics = head.text("model")
    if physics not in PHYSICS:
        raise head.error("model", f"expected one of {', '.join(PHYSICS)}, got {physics!r}")
    head.finish()
    traffic = _traffic(root.table("traffic"))
    budget = _budget(root.table("budget"))
    config_data = read_toml(config_text, source=config_source)
    overlay = root.table("config").data
    if overlay:  # the scenario's own changes to the router config (a target it adds, ...)
        config_data = merge(config_data, overlay)
        config_text, config_source = _dump(config_data), f"{config_source} + {source} [config]"
        parse_config(config_text, source=config_source)
    known_targets = config_data.get("targets", {})
    for target in last_resorts:
        if target not in known_targets:
            raise head.error(
                "last_resorts",
                f"names unknown target {target!r} (known: {', '.join(known_targets)})",
            )
    fleet, overrides = _fleet(root.tables("fleet"), config_data, physics)
    faults = tuple(_faults(root, config_data))
    contenders = _contenders(root, config_data, wanted, source)
    estimate = read_output_estimate(root.table("output_estimate"), traffic.classes)
    root.finish()
    scenario = Scenario(
        name=name,
        description=description,
        source=source,
        config_text=config_text,
        config_source=config_source,
        seed=seed,
        refresh_ms=refresh_ms,
        traffic=traffic,
        budget=budget,
        fleet=fleet,
        fleet_overrides=overrides,
        faults=faults,
        fault_names=tuple(_label(f) for f in faults),
        contenders=contenders,
        utc_offset_hours=offset,
        model=physics,
        output_estimate=estimate,
        last_resorts=last_resorts,
    )
    return with_faults(scenario, preset_names, key=f"{source}: [scenario.faults]")


def with_faults(scenario: Scenario, names: Sequence[str], *, key: str = "--faults") -> Scenario:
    """The scenario plus named fault presets (``provisioned-outage``, ``flash-sale``, ...)."""
    faults = list(scenario.faults)
    sales = list(scenario.traffic.flash_sales)
    added = list(scenario.fault_names)
    data = tomllib.loads(scenario.config_text)
    for name in names:
        if name not in FAULT_PRESETS:
            raise ConfigError(f"{key}: unknown fault {name!r} (known: {', '.join(FAULT_PRESETS)})")
        if name in added:
            continue
        added.append(name)
        if name == FLASH_SALE:
            sales.append(FlashSale(start_s=21 * 3600.0, minutes=10.0, multiplier=2.0))
        else:
            faults.extend(_preset(name, data, key))
    return dataclasses.replace(
        scenario,
        faults=tuple(faults),
        fault_names=tuple(added),
        traffic=dataclasses.replace(scenario.traffic, flash_sales=tuple(sales)),
    )


def _label(fault: Fault) -> str:
    start = int(fault.start_s)
    minutes = round((fault.end_s - fault.start_s) / 60)
    return f"{fault.kind}:{fault.target}@{start // 3600:02d}:{start % 3600 // 60:02d}+{minutes}min"


def _preset(name: str, config: dict[str, Any], key: str) -> list[Fault]:
    """The named fault(s) on the fitting targets of the config (docs/simulate.md, "Faults",
    says what each one tests)."""
    targets = config.get("targets", {})

    def first(pattern: Pattern, tier: str | None = None) -> str:
        for target, table in targets.items():
            if table.get("pattern") == pattern.value and (
                tier is None or table.get("tier") == tier
            ):
                return str(target)
        wanted = pattern.value + (f" (tier {tier})" if tier else "")
        raise ConfigError(f"{key}: fault {name!r} needs a {wanted} target in the config")

    hour = 3600.0
    if name == "provisioned-outage":
        return [
            Fault("outage", first(Pattern.BEDROCK_PROVISIONED), 20 * hour + 55 * 60, 21.25 * hour)
        ]
    if name == "haiku-throttle-storm":
        haiku = first(Pattern.BEDROCK_ON_DEMAND, "haiku")
        return [
            Fault("throttle_storm", haiku, 19.5 * hour, 20 * hour, factor=0.25, probability=0.3)
        ]
    if name == "sagemaker-slow":
        return [
            Fault("slowdown", first(Pattern.SAGEMAKER_REALTIME), 20 * hour, 21 * hour, factor=4.0)
        ]
    if name == "regional-incident":
        return _regional_incident(targets, key)
    if name == "quota-cut":
        on_demand = [
            str(t) for t, table in targets.items() if table.get("pattern") == "bedrock_on_demand"
        ]
        if not on_demand:
            raise ConfigError(f"{key}: fault 'quota-cut' needs a bedrock_on_demand target")
        return [Fault("quota_cut", t, 18 * hour, 24 * hour - 1, factor=0.5) for t in on_demand]
    sonnet = first(Pattern.BEDROCK_ON_DEMAND, "sonnet")
    return [Fault("fast_errors", sonnet, 19 * hour, 20 * hour, probability=0.3, latency_ms=15.0)]


def _regional_incident(targets: dict[str, Any], key: str) -> list[Fault]:
    """Every target in the region of the config's first target degraded at once, 20:00-20:40:
    calls 3x slower and 20 % failing fast (a cross-Region inference profile, which Bedrock
    serves from other Regions too, is spared)."""
    if not targets:
        raise ConfigError(f"{key}: fault 'regional-incident' needs targets in the config")
    region = next(iter(targets.values())).get("region")
    start, end = 20 * 3600.0, 20 * 3600.0 + 40 * 60
    faults = []
    for target, table in targets.items():
        model_id = str(table.get("model_id", ""))
        if table.get("region") != region or is_cross_region(model_id):
            continue
        faults.append(Fault("slowdown", str(target), start, end, factor=3.0))
        faults.append(Fault("fast_errors", str(target), start, end, probability=0.2))
    return faults


def _time_of_day(table: Table, name: str, default: Any = REQUIRED) -> Any:
    """``"HH:MM"`` (or seconds) after local midnight."""
    value = table._raw(name, default)
    if value is default:
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < DAY_S:
        return float(value)
    if isinstance(value, str):
        parts = value.split(":")
        if len(parts) == 2 and all(p.isdigit() for p in parts):
            hours, minutes = int(parts[0]), int(parts[1])
            if hours < 24 and minutes < 60:
                return hours * 3600.0 + minutes * 60.0
    raise table.error(name, f'expected a local time "HH:MM" (00:00-23:59), got {value!r}')


def _traffic(table: Table) -> TrafficModel:
    messages = table.integer("messages", minimum=1)
    curve = table._raw("curve", MANGAASSIST_CURVE)
    if curve is not MANGAASSIST_CURVE and (
        not isinstance(curve, list)
        or len(curve) != 24
        or not all(isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 for v in curve)
        or sum(curve) <= 0
    ):
        raise table.error("curve", f"expected 24 hourly weights >= 0, not all zero, got {curve!r}")
    mix_table = table.table("mix")
    mix = dict(DEFAULT_MIX)
    if mix_table.data:
        mix = {name: mix_table.number(name) for name in list(mix_table.data)}
        if sum(mix.values()) <= 0:
            raise mix_table.error("", "shares must not all be zero")
    mix_table.finish()
    tokens = dict(DEFAULT_TOKENS)
    for name, shape in table.tables("tokens"):
        tokens[name] = _token_shape(shape, DEFAULT_TOKENS.get(name))
    sales = []
    raw_sales = table._raw("flash_sales", [])
    if not isinstance(raw_sales, list):
        raise table.error("flash_sales", f"expected an array of tables, got {raw_sales!r}")
    for index, raw in enumerate(raw_sales):
        if not isinstance(raw, dict):
            raise table.error(f"flash_sales.{index}", f"expected a table, got {raw!r}")
        where = table.key(f"flash_sales.{index}")
        sales.append(_flash_sale(Table(raw, table.source, where, section=FLASH_SALE_SECTION)))
    return table.finish_with(
        lambda: TrafficModel(
            messages=messages,
            curve=tuple(float(v) for v in curve),
            mix=mix,
            tokens=tokens,
            messages_per_session=table.number("messages_per_session", minimum=1.0),
            flash_sales=tuple(sales),
        )
    )


def _token_shape(shape: Table, base: TokenShape | None) -> TokenShape:
    base = base or TokenShape()
    return shape.finish_with(
        lambda: TokenShape(
            input_mean=shape.number("input", base.input_mean, positive=True),
            output_mean=shape.number("output", base.output_mean, positive=True),
            spread=shape.number("spread", base.spread),
        )
    )


def _flash_sale(sale: Table) -> FlashSale:
    return sale.finish_with(
        lambda: FlashSale(
            start_s=_time_of_day(sale, "start"),
            minutes=sale.number("minutes", positive=True),
            multiplier=sale.number("multiplier", positive=True),
        )
    )


def _budget(table: Table) -> Budget:
    d = Budget()
    return table.finish_with(
        lambda: Budget(
            deadline_ms=table.number("deadline_ms", d.deadline_ms, positive=True),
            inference_ms=table.number("inference_ms", d.inference_ms, positive=True),
            pre_ms=table.number("pre_ms", d.pre_ms),
            post_ms=table.number("post_ms", d.post_ms),
            first_token_ms=table.number("first_token_ms", None, positive=True),
            streaming=table.flag("streaming", False),
        )
    )


_CONFIG_KEYS = ("tokens_per_minute", "instances")
"""Fleet keys that change the router config too (the router must know the real capacity)."""


def _fleet(
    tables: list[tuple[str, Table]], config: dict[str, Any], physics: str = PUBLISHED
) -> tuple[dict[str, TargetModel], dict[str, dict[str, Any]]]:
    """Every config target's model (the scenario's physics; ``[fleet.NAME]`` tunes one)
    and the capacity changes the router must be told about."""
    targets = config.get("targets", {})
    models = {str(name): TargetModel(physics=physics) for name in targets}
    overrides: dict[str, dict[str, Any]] = {}
    for name, entry in tables:
        if name not in targets:
            raise entry.error("", f"is not a target of the config (known: {', '.join(targets)})")
        tpm = entry.number("tokens_per_minute", None, positive=True)
        instances = entry.integer("instances", None, minimum=1)
        models[name] = _target_model(entry, physics)
        change: dict[str, Any] = {}
        if tpm is not None:
            change["tokens_per_minute"] = tpm
        if instances is not None:
            if "instances" not in targets[name]:
                raise entry.error("instances", "the config's target has no instances to change")
            change["instances"] = instances
        if change:
            overrides[name] = change
        entry.finish()
    return models, overrides


def _target_model(entry: Table, physics: str = PUBLISHED) -> TargetModel:
    d = TargetModel()
    return entry.build(
        "",
        lambda: TargetModel(
            physics=physics,
            ttft_share=entry.number("ttft_share", d.ttft_share),
            reference_output_tokens=entry.integer(
                "reference_output_tokens", d.reference_output_tokens, minimum=1
            ),
            error_latency_ms=entry.number("error_latency_ms", d.error_latency_ms, positive=True),
            throttle_latency_ms=entry.number(
                "throttle_latency_ms", d.throttle_latency_ms, positive=True
            ),
            idle_cold_s=entry.number("idle_cold_s", d.idle_cold_s, positive=True),
            max_instances=entry.integer("max_instances", d.max_instances, minimum=1),
            target_utilization=entry.number(
                "target_utilization", d.target_utilization, positive=True
            ),
            scale_out_lag_s=entry.number("scale_out_lag_s", d.scale_out_lag_s),
            scale_out_cooldown_s=entry.number("scale_out_cooldown_s", d.scale_out_cooldown_s),
            scale_in_cooldown_s=entry.number("scale_in_cooldown_s", d.scale_in_cooldown_s),
            ttft_ms=entry.number("ttft_ms", None, positive=True),
            ttft_per_1k_input_ms=entry.number("ttft_per_1k_input_ms", d.ttft_per_1k_input_ms),
            tokens_per_s=entry.number("tokens_per_s", None, positive=True),
            tps_sigma=entry.number("tps_sigma", d.tps_sigma),
            error_rate=entry.number("error_rate", d.error_rate),
            requests_per_minute=entry.number("requests_per_minute", None, positive=True),
            daily_tokens=entry.number("daily_tokens", None, positive=True),
            burndown=entry.number("burndown", None, minimum=1.0),
            cross_region_ms=entry.number("cross_region_ms", None),
            slots_per_instance=entry.integer("slots_per_instance", None, minimum=1),
            cache_read_price=entry.number("cache_read_price", d.cache_read_price),
        ),
    )


def _faults(root: Table, config: dict[str, Any]) -> list[Fault]:
    raw_faults = root._raw("faults", [])
    if not isinstance(raw_faults, list):
        raise root.error("faults", f"expected an array of tables ([[faults]]), got {raw_faults!r}")
    targets = config.get("targets", {})
    faults = []
    for index, raw in enumerate(raw_faults):
        if not isinstance(raw, dict):
            raise root.error(f"faults.{index}", f"expected a table, got {raw!r}")
        table = Table(raw, root.source, f"faults.{index}", section=FAULT)
        kind = table.text("kind")
        if kind not in FAULT_KINDS:
            raise table.error("kind", f"expected one of {', '.join(FAULT_KINDS)}, got {kind!r}")
        target = table.text("target")
        if target not in targets:
            raise table.error(
                "target", f"names unknown target {target!r} (known: {', '.join(targets)})"
            )
        faults.append(_fault(table, kind, target))
        table.finish()
    return faults


def _fault(table: Table, kind: str, target: str) -> Fault:
    start = _time_of_day(table, "start")
    minutes = table.number("minutes", positive=True)
    return table.build(
        "",
        lambda: Fault(
            kind=kind,
            target=target,
            start_s=start,
            end_s=min(float(DAY_S), start + minutes * 60.0),
            factor=table.number("factor", positive=True),
            probability=table.number("probability"),
            latency_ms=table.number("latency_ms", positive=True),
        ),
    )


def builtin_contenders() -> dict[str, Contender]:
    text = resources.files("mangaroute").joinpath(*SCENARIO_DIR, CONTENDERS_FILE).read_text("utf-8")
    root = Table(tomllib.loads(text), f"<mangaroute>/{CONTENDERS_FILE}", "")
    found = _contender_tables(root)
    root.finish()
    return found


def _contender_tables(root: Table) -> dict[str, Contender]:
    found = {}
    for name, table in root.tables("contenders"):
        overlay = table.table("config").data
        invoke = invoke_settings(table.table("invoke"))
        description = table.text("description", "")
        found[name] = Contender(name, description, copy.deepcopy(overlay), invoke)
        table.finish()
    return found


def _contenders(
    root: Table, config: dict[str, Any], wanted: tuple[str, ...] | None, source: str
) -> tuple[Contender, ...]:
    known = builtin_contenders()
    known.update(_contender_tables(root))
    names = list(wanted) if wanted is not None else list(known)
    for name in names:
        if name not in known:
            raise ConfigError(
                f"names unknown contender {name!r} (known: {', '.join(known)})",
                source=source,
                key="scenario.contenders",
            )
    return tuple(known[name] for name in names)


def merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """``overlay`` merged into a copy of ``base``: tables merge key by key, values replace."""
    merged = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def contender_config(scenario: Scenario, contender: Contender, scale: float = 1.0) -> RouterConfig:
    """The router config a contender runs on: the scenario's base config with the fleet's
    capacity overrides, the scenario's rebuild interval, the contender's overlay and, for a
    scaled-down day, capacity and hourly prices scaled by ``scale``."""
    base = tomllib.loads(scenario.config_text)
    data = merge(base, contender.overlay)
    source = f"{scenario.source}: contender {contender.name}"
    _check_classes(base, data, source)
    _keep_last_resorts(base, data, scenario.last_resorts)
    data.setdefault("router", {})["refresh_ms"] = scenario.refresh_ms
    policies = data.get("policies", {})
    used = {table.get("policy", "default") for table in data.get("classes", {}).values()}
    if not any(policies.get(name, {}).get("picker") == "primary" for name in used):
        data.pop("switcher", None)  # no class follows a primary: no switcher to run
        for name in [n for n, table in policies.items() if table.get("picker") == "primary"]:
            del policies[name]
    for name, change in scenario.fleet_overrides.items():
        table = data["targets"][name]
        if "tokens_per_minute" in change:
            table.pop("tokens_per_minute_per_unit", None)
            table["tokens_per_minute"] = change["tokens_per_minute"]
        if "instances" in change:
            table["instances"] = change["instances"]
    if scale != 1.0:
        for table in data.get("targets", {}).values():
            _scale_target(table, scale)
    return parse_config(_dump(data), source=source)


def _check_classes(base: dict[str, Any], data: dict[str, Any], source: str) -> None:
    base_classes = base.get("classes", {})
    for name, table in data.get("classes", {}).items():
        allowed = base_classes.get(name, {}).get("targets")
        if allowed is None:
            raise ConfigError(
                f"adds request class {name!r}, which the base config does not define",
                source=source,
                key=f"config.classes.{name}",
            )
        extra = [t for t in table.get("targets", []) if t not in allowed]
        if extra:
            raise ConfigError(
                f"may only use the targets the base config allows for class {name!r} "
                f"({', '.join(allowed)}), got {', '.join(extra)}",
                source=source,
                key=f"config.classes.{name}.targets",
            )


def _keep_last_resorts(
    base: dict[str, Any], data: dict[str, Any], last_resorts: tuple[str, ...]
) -> None:
    """Append each of the scenario's last resorts to a class whose contender dropped it
    (the base config's class lists it)."""
    for name, table in data.get("classes", {}).items():
        allowed = base.get("classes", {}).get(name, {}).get("targets", [])
        targets = table.get("targets")
        if targets is None:
            continue  # the base config's list, last resorts included
        table["targets"] = [
            *targets,
            *(t for t in last_resorts if t in allowed and t not in targets),
        ]


_SCALED = (
    "tokens_per_minute",
    "tokens_per_minute_per_unit",
    "requests_per_second",
    "requests_per_second_per_instance",
    "hourly_usd",
    "hourly_usd_per_unit",
    "hourly_usd_per_instance",
)


def _scale_target(table: dict[str, Any], scale: float) -> None:
    for key in _SCALED:
        if key in table:
            table[key] = table[key] * scale
    if "concurrency" in table:
        table["concurrency"] = max(1, round(table["concurrency"] * scale))


def instances_of(scenario: Scenario, contender: Contender) -> dict[str, int]:
    """Instances per target as the config states them (the fleet scales from there)."""
    data = merge(tomllib.loads(scenario.config_text), contender.overlay)
    counts = {}
    for name, table in data.get("targets", {}).items():
        count = scenario.fleet_overrides.get(name, {}).get("instances", table.get("instances"))
        if isinstance(count, int):
            counts[name] = count
    return counts


def _dump(data: dict[str, Any]) -> str:
    """Minimal TOML writer for config data (tables, strings, numbers, booleans, arrays)."""
    lines: list[str] = []
    _dump_table(data, [], lines)
    return "\n".join(lines) + "\n"


def _dump_table(table: dict[str, Any], path: list[str], lines: list[str]) -> None:
    scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in table.items() if isinstance(v, dict)}
    if path and (scalars or not tables):
        lines.append("[" + ".".join(_key(p) for p in path) + "]")
    for key, value in scalars.items():
        lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in tables.items():
        _dump_table(value, [*path, key], lines)


def _key(key: str) -> str:
    return key if key.replace("-", "").replace("_", "").isalnum() else _value(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):  # a JSON string is a TOML basic string, once DEL is escaped
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")
