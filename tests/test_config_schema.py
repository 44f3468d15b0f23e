"""The config's declared sections, the reader and the JSON Schema agree.

Every table of the shipped config and of every shipped scenario's config (the contenders'
included) is read with one extra key: each declared key it lacks is accepted, an undeclared
key is rejected with its dotted name. So a key the reader reads but nobody declared, or
declares but the reader ignores, fails here.
"""

from __future__ import annotations

import copy
import json
import pathlib
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from importlib import resources
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import mangaroute.simulate.scenario as scenario_module
from mangaroute.config import (
    FILTERS,
    PICKERS,
    RANKERS,
    ROOT,
    config_from_data,
    default_config_text,
    parse_config,
    part_params,
    register_ranker,
)
from mangaroute.config.schema import (
    CONFIG,
    REFERENCE_MARK,
    TomlDocument,
    json_schema,
    published_schema_text,
    schema_text,
    with_reference,
)
from mangaroute.config.sections import Key, Section
from mangaroute.core.errors import ConfigError
from mangaroute.core.limits import LIMITS
from mangaroute.core.policy.filters import Headroom
from mangaroute.core.policy.rankers import ConfigOrder
from mangaroute.core.targets import Pattern
from mangaroute.planning.sections import PROFILE_DOCUMENT
from mangaroute.simulate.engine import Budget
from mangaroute.simulate.fleet import FAULT_KINDS, TargetModel
from mangaroute.simulate.scenario import (
    FAULT_PRESETS,
    builtin_scenarios,
    contender_config,
    load_scenario,
    parse_scenario,
)
from mangaroute.simulate.sections import SCENARIO_DOCUMENT

Path = tuple[str, ...]

EXAMPLES: dict[tuple[str, str], dict[str, Any]] = {
    ("the file", "shared"): {"shared": {"url": "redis://localhost", "deployment": "t"}},
    ("the file", "switcher"): {"switcher": {"primary": "ondemand-haiku"}},
    ("[shared]", "username"): {"username": "router"},
    ("[shared]", "password_env"): {"password_env": "REDIS_PASSWORD"},
    ("[shared]", "tls_ca_file"): {"tls_ca_file": "/etc/ssl/redis-ca.pem"},
    ("[shared]", "replica_id"): {"replica_id": "replica-1"},
    ("[router]", "region"): {"region": "us-east-1"},
    ("[router]", "default_class"): {"default_class": "simple"},
    ("[targets.NAME]", "region"): {"region": "us-east-1"},
    ("[targets.NAME]", "prior"): {"prior": "bedrock_provisioned"},
    ("[targets.NAME]", "model_units"): {"model_units": 3},
    ("[targets.NAME]", "instances"): {"instances": 3},
    ("[targets.NAME]", "hourly_usd_per_unit"): {"hourly_usd_per_unit": 20.0, "model_units": 1},
    ("[targets.NAME]", "hourly_usd_per_instance"): {"hourly_usd_per_instance": 1.5, "instances": 1},
    ("[targets.NAME]", "cache_read_per_million_usd"): {"cache_read_per_million_usd": 0.3},
    ("[targets.NAME]", "cache_write_per_million_usd"): {"cache_write_per_million_usd": 3.75},
    ("[targets.NAME]", "tokens_per_minute"): {"tokens_per_minute": 100_000},
    ("[targets.NAME]", "tokens_per_minute_per_unit"): {
        "tokens_per_minute_per_unit": 40_000,
        "model_units": 1,
    },
    ("[targets.NAME]", "requests_per_second"): {"requests_per_second": 10},
    ("[targets.NAME]", "requests_per_second_per_instance"): {
        "requests_per_second_per_instance": 8,
        "instances": 1,
    },
    ("[targets.NAME]", "concurrency"): {"concurrency": 16},
    ("[targets.NAME]", "ops_score"): {"ops_score": 70},
    ("[classes.NAME]", "policy"): {"policy": "preference"},
    ("[classes.NAME]", "quality_floor"): {"quality_floor": "haiku"},
    ("[switcher]", "order"): {"order": ["provisioned-sonnet", "ondemand-haiku"]},
    ("[policies.NAME.prediction]", "first_token"): {"first_token": True},
    ("[policies.NAME.headroom]", "throttle_round_trip_ms"): {"throttle_round_trip_ms": 120},
    ("[policies.NAME.headroom]", "slo_p99_ms"): {
        "slo_p99_ms": 1500,
        "throttle_round_trip_ms": 120,
    },
    ("[policies.NAME.tier]", "slo_p99_ms"): {"slo_p99_ms": 1500},
    ("[policies.NAME.schedule]", "utc_offset_hours"): {"utc_offset_hours": 9, "time_zone": None},
    ("[policies.NAME.schedule]", "time_zone"): {
        "time_zone": "Asia/Tokyo",
        "utc_offset_hours": None,
    },
    ("[policies.NAME.budget_guard]", "utc_offset_hours"): {
        "utc_offset_hours": 9,
        "time_zone": None,
    },
    ("[policies.NAME.budget_guard]", "time_zone"): {
        "time_zone": "Asia/Tokyo",
        "utc_offset_hours": None,
    },
}
"""A valid value for each declared key without a usable default, with the keys it needs
beside it (``None``: remove that key)."""


def _example(section: Section, key: Key) -> dict[str, Any]:
    found = EXAMPLES.get((section.title, key.name))
    if found is not None:
        return found
    if key.kind in ("table", "tables"):
        return {key.name: {}}
    assert key.default is not None, f"{section.title} {key.name}: add an example to EXAMPLES"
    value = list(key.default) if isinstance(key.default, tuple) else key.default
    return {key.name: value}


def _tables(
    data: dict[str, Any], section: Section, path: Path = ()
) -> Iterator[tuple[Path, Section]]:
    """Every table of ``data`` with a declared section, and that section."""
    yield path, section
    for key in section.keys:
        value = data.get(key.name)
        if not isinstance(value, dict) or key.section is None:
            continue
        if key.kind == "table":
            yield from _tables(value, key.section, (*path, key.name))
        elif key.kind == "tables":
            for name, table in value.items():
                if isinstance(table, dict):
                    yield from _tables(table, key.section, (*path, key.name, name))
    if section.parts:
        for name, value in data.items():
            params = part_params(name)
            if params is not None and isinstance(value, dict) and name not in section.names:
                yield from _tables(value, params, (*path, name))


def _at(data: dict[str, Any], path: Path) -> dict[str, Any]:
    for name in path:
        data = data[name]
    return data


def _shipped_configs() -> dict[str, dict[str, Any]]:
    """The shipped config, every shipped scenario's and every contender's, as parsed data."""
    configs = {"mangaassist.toml": tomllib.loads(default_config_text())}
    with_shared = tomllib.loads(default_config_text())  # the docs' [shared] example
    with_shared["shared"] = {"url": "redis://localhost:6379", "deployment": "mangaassist"}
    configs["mangaassist.toml + [shared]"] = with_shared
    seen: list[str] = []
    real = scenario_module.parse_config

    def capture(text: str, *, source: str = "<string>") -> Any:
        seen.append(text)
        return real(text, source=source)

    for name in builtin_scenarios():
        scenario = load_scenario(name)
        configs[f"scenario {name}"] = tomllib.loads(scenario.config_text)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(scenario_module, "parse_config", capture)
            for contender in scenario.contenders:
                seen.clear()
                contender_config(scenario, contender)
                configs[f"scenario {name} contender {contender.name}"] = tomllib.loads(seen[-1])
    return configs


SHIPPED = _shipped_configs()


def _cases() -> Iterator[Any]:
    unique: dict[str, tuple[dict[str, Any], Path, Section]] = {}
    for data in SHIPPED.values():
        for path, section in _tables(data, ROOT):
            table = _at(data, path)
            fingerprint = repr((path, sorted(table.items(), key=str), section.title))
            unique.setdefault(fingerprint, (data, path, section))
    for data, path, section in unique.values():
        yield pytest.param(data, path, section, id=".".join(path) or "root")


CASES = list(_cases())


def test_the_walk_covers_every_section_the_shipped_files_use() -> None:
    titles = {section.title for _, _, section in (case.values for case in CASES)}
    assert {
        "the file",
        "[router]",
        "[breaker]",
        "[profiles.NAME]",
        "[targets.NAME]",
        "[classes.NAME]",
        "[switcher]",
        "[shared]",
        "[policies.NAME]",
        "[policies.NAME.score]",
        "[policies.NAME.headroom]",
        "[policies.NAME.cost_under_slo]",
        "[policies.NAME.spillover]",
        "[policies.NAME.tier]",
        "[policies.NAME.schedule]",
    } <= titles, sorted(titles)


@pytest.mark.parametrize(("data", "path", "section"), CASES)
def test_the_reader_accepts_exactly_the_declared_keys(
    data: dict[str, Any], path: Path, section: Section
) -> None:
    config_from_data(data)  # the file as shipped reads
    for key in section.keys:
        if key.name in _at(data, path):
            continue
        changed = copy.deepcopy(data)
        table = _at(changed, path)
        for name, value in _example(section, key).items():
            if value is None:
                table.pop(name, None)
            else:
                table[name] = value
        config_from_data(changed, source="t.toml")  # a declared key is read, never rejected
    changed = copy.deepcopy(data)
    _at(changed, path)["colour"] = "blue"
    where = ".".join((*path, "colour"))
    with pytest.raises(ConfigError, match=rf"^t\.toml: \[{where}\] is not a known key") as info:
        config_from_data(changed, source="t.toml")
    expected = str(info.value).split("(expected one of: ")[1].rstrip(")").split(", ")
    assert set(expected) >= section.names


def test_a_declared_range_is_the_one_in_limits() -> None:
    for _, _, section in (case.values for case in CASES):
        for key in section.keys:
            if key.limit is not None:
                assert key.kind == ("integer" if LIMITS[key.limit].integer else "number")


PLUGIN_CONFIG = """
[targets.a]
pattern = "bedrock_on_demand"
model_id = "m"
region = "us-east-1"

[policies.p]
ranker = "reverse"

[policies.p.reverse]
{line}
"""


def test_a_plugin_part_declares_its_table_or_reads_it_as_before() -> None:
    params = Section(
        "[policies.NAME.reverse]",
        "a test plugin",
        "Reverse order.",
        (Key("strength", "number", default=1.0),),
    )
    built: list[float] = []

    def build(table: Any, context: Any) -> ConfigOrder:
        built.append(table.number("strength"))
        return ConfigOrder()

    unregister = register_ranker("reverse", build, params)
    try:
        parse_config(PLUGIN_CONFIG.format(line=""))
        parse_config(PLUGIN_CONFIG.format(line="strength = 3"))
        assert built == [1.0, 3.0]  # the declared default, then the file's value
        with pytest.raises(ConfigError, match=r"\[policies\.p\.reverse\.stength\] is not a known"):
            parse_config(PLUGIN_CONFIG.format(line="stength = 3"))
    finally:
        unregister()
    assert part_params("reverse") is None
    unregister = register_ranker("reverse", lambda table, context: ConfigOrder())
    try:  # no declaration: the keys it reads are the known ones (none here)
        with pytest.raises(ConfigError, match=r"\[policies\.p\.reverse\.strength\] is not a known"):
            parse_config(PLUGIN_CONFIG.format(line="strength = 3"))
    finally:
        unregister()


def test_an_unknown_inner_part_is_named_at_the_part_that_holds_it() -> None:
    text = PLUGIN_CONFIG.format(line="").replace('ranker = "reverse"', 'ranker = "tier"')
    text = text.replace(
        "[policies.p.reverse]", '[policies.p.tier]\norder = ["custom"]\nwithin = "vibes"'
    )
    with pytest.raises(
        ConfigError, match=r"\[policies\.p\.tier\.within\] names unknown ranker 'vibes'"
    ):
        parse_config(text)


SCHEMA = json_schema(shipped_parts_only=True)
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def test_the_published_schema_is_the_generated_one() -> None:
    assert published_schema_text() == schema_text(shipped_parts_only=True), (
        "mangaroute/data/config.schema.json is out of date with the declared sections: "
        "regenerate it with `mangaroute config schema > mangaroute/data/config.schema.json`"
    )
    jsonschema.Draft202012Validator.check_schema(json.loads(published_schema_text()))


@pytest.mark.parametrize(
    ("command", "document"),
    [
        (("config", "schema"), CONFIG),
        (("plan", "schema"), PROFILE_DOCUMENT),
        (("simulate", "--schema"), SCENARIO_DOCUMENT),
    ],
    ids=["config", "planning profile", "simulator scenario"],
)
def test_each_schema_command_prints_its_published_file(
    command: tuple[str, ...], document: TomlDocument
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mangaroute", *command],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == published_schema_text(document)


@pytest.mark.parametrize("label", sorted(SHIPPED))
def test_every_shipped_config_validates(label: str) -> None:
    errors = [
        f"{list(e.absolute_path)}: {e.message}" for e in VALIDATOR.iter_errors(SHIPPED[label])
    ]
    assert errors == []


def test_the_schema_names_what_the_registries_and_enums_know() -> None:
    policy = SCHEMA["properties"]["policies"]["additionalProperties"]["properties"]
    assert policy["ranker"]["enum"] == list(RANKERS)
    assert policy["picker"]["enum"] == list(PICKERS)
    assert policy["filters"]["items"]["enum"] == list(FILTERS)
    within = policy["tier"]["properties"]["within"]["enum"]
    guarded = policy["budget_guard"]["properties"]["picker"]["enum"]
    assert within == [name for name in RANKERS if name != "tier"]
    assert guarded == [name for name in PICKERS if name != "budget_guard"]
    assert policy["headroom"]["properties"]["max_throttle_rate"] == {
        "type": "number",
        "exclusiveMinimum": 0,
        "maximum": 1,
        "description": "drop a target throttling more than this; between 0 (exclusive) and 1",
        "default": Headroom().max_throttle_rate,
    }
    target = SCHEMA["properties"]["targets"]["additionalProperties"]
    assert target["properties"]["pattern"]["enum"] == [p.value for p in Pattern]
    assert target["required"] == ["pattern", "model_id"]
    assert target["additionalProperties"] is False
    window = SCHEMA["properties"]["router"]["properties"]["window_s"]
    assert (window["minimum"], window["maximum"], window["default"]) == (0.02, 86400, 60.0)


BAD = [
    pytest.param(
        ("router",), "widow_s", 60, "[router.widow_s] is not a known key", id="misspelt key"
    ),
    pytest.param(
        ("policies", "switcher", "score"),
        "target_p99",
        1500,
        "[policies.switcher.score.target_p99] is not a known key",
        id="misspelt part key",
    ),
    pytest.param(
        ("breaker",),
        "cooldown_s",
        "30",
        "[breaker.cooldown_s] expected a number, got '30'",
        id="wrong type",
    ),
    pytest.param(
        ("targets", "ondemand-haiku"),
        "tier",
        7,
        "[targets.ondemand-haiku.tier] expected a non-empty string, got 7",
        id="wrong type of text",
    ),
    pytest.param(
        ("router",),
        "relative_error",
        0.5,
        "[router.relative_error] expected a number <= 0.25, got 0.5",
        id="out of range",
    ),
    pytest.param(
        ("targets", "sagemaker-manga"),
        "instances",
        0,
        "[targets.sagemaker-manga.instances] expected an integer >= 1, got 0",
        id="out of range integer",
    ),
    pytest.param(
        ("policies", "score"),
        "ranker",
        "vibes",
        "[policies.score.ranker] names unknown ranker 'vibes'",
        id="unknown part",
    ),
]


@pytest.mark.parametrize(("path", "name", "value", "message"), BAD)
def test_a_bad_key_fails_the_schema_and_the_reader_naming_the_key(
    path: Path, name: str, value: Any, message: str
) -> None:
    data = tomllib.loads(default_config_text())
    _at(data, path)[name] = value
    with pytest.raises(ConfigError) as info:
        config_from_data(data, source="t.toml")
    assert str(info.value).startswith(f"t.toml: {message}")
    errors = list(VALIDATOR.iter_errors(data))
    assert len(errors) == 1, [e.message for e in errors]
    where = [*errors[0].absolute_path]
    assert where == [*path, name] or (where == [*path] and repr(name) in errors[0].message)


DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "config.md"


def test_docs_config_md_lists_every_declared_section_and_key() -> None:
    document = DOC.read_text("utf-8")
    assert REFERENCE_MARK in document
    assert document == with_reference(document), (
        "docs/config.md's reference is out of date with mangaroute/config/sections.py: "
        'regenerate it with python -c "import pathlib; from mangaroute.config.schema import '
        "with_reference as w; p = pathlib.Path('docs/config.md'); "
        'p.write_text(w(p.read_text()))"'
    )
    reference = document.split(REFERENCE_MARK, 1)[1]
    for section in (ROOT, *(case.values[2] for case in CASES)):
        assert f"### `{section.title}`" in reference
        for key in section.keys:
            assert f"| `{key.name}` |" in reference


KEY_NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789-", min_size=1, max_size=24)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=st.sampled_from([case.values for case in CASES]), name=KEY_NAMES)
def test_a_key_name_is_accepted_exactly_when_declared(
    case: tuple[dict[str, Any], Path, Section], name: str
) -> None:
    data, path, section = case
    assume(name not in _at(data, path))
    changed = copy.deepcopy(data)
    table = _at(changed, path)
    if name in section.names:
        example = _example(section, section.get(name)).items()
        table.update({key: value for key, value in example if value is not None})
        config_from_data(changed, source="t.toml")
        assert list(VALIDATOR.iter_errors(changed)) == []
        return
    table[name] = 1  # undeclared (or the table of a part the policy does not use)
    where = re.escape(".".join((*path, name)))
    with pytest.raises(ConfigError, match=rf"^t\.toml: \[{where}\] is not a known key"):
        config_from_data(changed, source="t.toml")
    assert [list(error.absolute_path) for error in VALIDATOR.iter_errors(changed)] in (
        [list(path)],
        [[*path, name]],
    )


SCENARIO_SCHEMA = json_schema(SCENARIO_DOCUMENT)
SCENARIO_VALIDATOR = jsonschema.Draft202012Validator(SCENARIO_SCHEMA)
SHIPPED_CONFIG = str(resources.files("mangaroute").joinpath("data", "mangaassist.toml"))

SCENARIO_TABLES: dict[str, tuple[str, Path]] = {
    "[scenario]": ("", ("scenario",)),
    "[traffic]": ("[traffic]", ("traffic",)),
    "[traffic.tokens.CLASS]": ("[traffic.tokens.simple]", ("traffic", "tokens", "simple")),
    "[[traffic.flash_sales]]": (
        '[[traffic.flash_sales]]\nstart = "21:00"',
        ("traffic", "flash_sales", "0"),
    ),
    "[budget]": ("[budget]", ("budget",)),
    "[fleet.NAME]": ("[fleet.sagemaker-manga]", ("fleet", "sagemaker-manga")),
    "[[faults]]": (
        '[[faults]]\nkind = "outage"\ntarget = "ondemand-haiku"\nstart = "20:00"\nminutes = 10',
        ("faults", "0"),
    ),
}
"""Each declared table of a scenario: the lines that open it in a scenario that reads (after
``[scenario]``), and its dotted path."""

SCENARIO_EXAMPLES: dict[tuple[str, str], str] = {
    ("[scenario]", "config"): f"config = {json.dumps(SHIPPED_CONFIG)}",
    ("[scenario]", "name"): 'name = "t"',
    ("[scenario]", "description"): 'description = "a quiet day"',
    ("[scenario]", "faults"): 'faults = ["quota-cut"]',
    ("[scenario]", "contenders"): 'contenders = ["seed-switcher"]',
    ("[traffic]", "curve"): f"curve = {[1] * 24}",
    ("[traffic]", "mix"): "mix = {simple = 0.7, complex = 0.3}",
    ("[traffic.tokens.CLASS]", "input"): "input = 400",
    ("[traffic.tokens.CLASS]", "output"): "output = 200",
    ("[traffic.tokens.CLASS]", "spread"): "spread = 0.5",
    ("[budget]", "first_token_ms"): "first_token_ms = 800",
    ("[fleet.NAME]", "tokens_per_minute"): "tokens_per_minute = 100000",
    ("[fleet.NAME]", "instances"): "instances = 3",
    ("[fleet.NAME]", "ttft_ms"): "ttft_ms = 300",
    ("[fleet.NAME]", "tokens_per_s"): "tokens_per_s = 60",
    ("[fleet.NAME]", "requests_per_minute"): "requests_per_minute = 600",
    ("[fleet.NAME]", "daily_tokens"): "daily_tokens = 1000000000",
    ("[fleet.NAME]", "burndown"): "burndown = 2",
    ("[fleet.NAME]", "cross_region_ms"): "cross_region_ms = 80",
    ("[fleet.NAME]", "slots_per_instance"): "slots_per_instance = 4",
}
"""A valid line for each declared key without a usable default."""


def _scenario_line(section: Section, key: Key) -> str:
    found = SCENARIO_EXAMPLES.get((section.title, key.name))
    if found is not None:
        return found
    assert key.default is not None, f"{section.title} {key.name}: add a SCENARIO_EXAMPLES line"
    value = list(key.default) if isinstance(key.default, tuple) else key.default
    return f"{key.name} = {json.dumps(value)}"


def _scenario_sections() -> dict[str, Section]:
    found: dict[str, Section] = {}

    def visit(section: Section) -> None:
        for key in section.keys:
            if key.section is not None:
                found[key.section.title] = key.section
                visit(key.section)

    visit(SCENARIO_DOCUMENT.root)
    return found


SCENARIO_SECTIONS = _scenario_sections()


def _scenario_text(title: str, line: str) -> str:
    opening = SCENARIO_TABLES[title][0]
    return "\n".join(part for part in ("[scenario]", opening, line) if part) + "\n"


def test_every_declared_scenario_table_is_tried() -> None:
    assert set(SCENARIO_SECTIONS) == set(SCENARIO_TABLES) | {"[contenders.NAME]"}


def test_the_published_scenario_schema_is_the_generated_one() -> None:
    assert published_schema_text(SCENARIO_DOCUMENT) == schema_text(SCENARIO_DOCUMENT), (
        "mangaroute/data/scenario.schema.json is out of date with the declarations in "
        "mangaroute/simulate/sections.py: regenerate it with "
        "`mangaroute simulate --schema > mangaroute/data/scenario.schema.json`"
    )
    jsonschema.Draft202012Validator.check_schema(SCENARIO_SCHEMA)


@pytest.mark.parametrize("name", builtin_scenarios())
def test_every_shipped_scenario_validates(name: str) -> None:
    text = resources.files("mangaroute").joinpath("data", "scenarios", f"{name}.toml")
    errors = SCENARIO_VALIDATOR.iter_errors(tomllib.loads(text.read_text("utf-8")))
    assert [f"{list(e.absolute_path)}: {e.message}" for e in errors] == []


def test_the_scenario_schema_takes_its_defaults_from_the_simulators_classes() -> None:
    budget = SCENARIO_SCHEMA["properties"]["budget"]["properties"]
    assert budget["deadline_ms"]["default"] == Budget().deadline_ms == 3000.0
    fleet = SCENARIO_SCHEMA["properties"]["fleet"]["additionalProperties"]["properties"]
    assert fleet["max_instances"]["type"] == "integer"
    assert fleet["max_instances"]["default"] == TargetModel().max_instances == 8
    fault = SCENARIO_SCHEMA["properties"]["faults"]["items"]
    assert fault["required"] == ["kind", "target", "start", "minutes"]
    assert fault["properties"]["kind"]["enum"] == list(FAULT_KINDS)
    head = SCENARIO_SCHEMA["properties"]["scenario"]["properties"]
    assert head["faults"]["items"]["enum"] == list(FAULT_PRESETS)
    assert SCENARIO_SCHEMA["required"] == ["scenario"]


SCENARIO_KEYS = [
    pytest.param(title, key, id=f"{title} {key.name}")
    for title, section in SCENARIO_SECTIONS.items()
    if title in SCENARIO_TABLES
    for key in section.keys
    if key.kind not in ("table", "tables", "array") and key.name not in SCENARIO_TABLES[title][0]
]


@pytest.mark.parametrize(("title", "key"), SCENARIO_KEYS)
def test_the_scenario_reader_reads_each_declared_key(title: str, key: Key) -> None:
    text = _scenario_text(title, _scenario_line(SCENARIO_SECTIONS[title], key))
    parse_scenario(text, source="t.toml")  # read, not rejected, not ignored
    assert list(SCENARIO_VALIDATOR.iter_errors(tomllib.loads(text))) == []


SCENARIO_DECLARED = sorted({key.name for s in SCENARIO_SECTIONS.values() for key in s.keys})


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(
    title=st.sampled_from(sorted(SCENARIO_TABLES)),
    name=st.from_regex(r"[a-z_][a-z0-9_]{0,23}", fullmatch=True)
    | st.sampled_from(SCENARIO_DECLARED),
)
def test_an_undeclared_scenario_key_fails_the_schema_and_the_reader(title: str, name: str) -> None:
    assume(name not in SCENARIO_SECTIONS[title].names)
    text = _scenario_text(title, f"{name} = 1")
    path = SCENARIO_TABLES[title][1]
    with pytest.raises(ConfigError) as info:
        parse_scenario(text, source="t.toml")
    assert info.value.key == ".".join((*path, name))
    assert str(info.value).startswith(f"t.toml: [{info.value.key}] is not a known key")
    errors = list(SCENARIO_VALIDATOR.iter_errors(tomllib.loads(text)))
    assert [list(map(str, e.absolute_path)) for e in errors] == [list(path)]
    assert repr(name) in errors[0].message


SCENARIO_BAD = [
    pytest.param("[budget]", 'deadline_ms = "3000"', "expected a number, got '3000'", id="type"),
    pytest.param("[scenario]", 'model = "quantum"', "expected one of published", id="enum"),
    pytest.param("[traffic]", "curve = [1, 2]", "expected 24 hourly weights", id="curve"),
    pytest.param(
        "[[traffic.flash_sales]]",
        'multiplier = "x2"',
        "expected a number, got 'x2'",
        id="flash sale",
    ),
]


@pytest.mark.parametrize(("title", "line", "message"), SCENARIO_BAD)
def test_a_bad_scenario_value_fails_the_schema_and_the_reader_naming_the_key(
    title: str, line: str, message: str
) -> None:
    text = _scenario_text(title, line)
    name = line.split(" = ", maxsplit=1)[0]
    with pytest.raises(ConfigError) as info:
        parse_scenario(text, source="t.toml")
    assert info.value.key == ".".join((*SCENARIO_TABLES[title][1], name))
    assert message in str(info.value)
    errors = list(SCENARIO_VALIDATOR.iter_errors(tomllib.loads(text)))
    assert [list(map(str, e.absolute_path)) for e in errors] == [[*SCENARIO_TABLES[title][1], name]]
