"""Scenario files: the shipped ones, presets, contenders, and errors that name the field."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mangaroute import ConfigError
from mangaroute.config.schema import with_reference
from mangaroute.simulate.fleet import Fleet
from mangaroute.simulate.run import limits_of
from mangaroute.simulate.scenario import (
    FAULT_PRESETS,
    Contender,
    builtin_scenarios,
    contender_config,
    load_scenario,
    merge,
    parse_scenario,
    with_faults,
)
from mangaroute.simulate.scenario import _dump as dump
from mangaroute.simulate.sections import SCENARIO_DOCUMENT


def test_the_shipped_scenarios_and_contenders_load() -> None:
    assert {"default", "bad-day"} <= set(builtin_scenarios())
    default = load_scenario()
    assert default.name == "default" and default.traffic.messages == 1_000_000
    assert default.faults == () and default.refresh_ms == 2000
    names = [c.name for c in default.contenders]
    assert names[:3] == ["seed-switcher", "seed-score", "seed-hybrid"]
    assert "mangaroute" in names
    for contender in default.contenders:
        config = contender_config(default, contender)
        assert config.target("ondemand-sonnet").capacity.tokens_per_minute == 2_000_000
    bad = load_scenario("bad-day")
    assert bad.fault_names == ("provisioned-outage", "flash-sale")
    assert [(f.kind, f.target) for f in bad.faults] == [("outage", "provisioned-sonnet")]
    assert bad.faults[0].end_s - bad.faults[0].start_s == 20 * 60
    assert bad.traffic.flash_sales[0].multiplier == 2.0


def test_fault_presets_combine_and_are_not_added_twice() -> None:
    scenario = with_faults(
        load_scenario("bad-day"), ["haiku-throttle-storm", "sagemaker-slow", "fast-errors"]
    )
    kinds = [(f.kind, f.target) for f in scenario.faults]
    assert kinds == [
        ("outage", "provisioned-sonnet"),
        ("throttle_storm", "ondemand-haiku"),
        ("slowdown", "sagemaker-manga"),
        ("fast_errors", "ondemand-sonnet"),
    ]
    again = with_faults(scenario, ["flash-sale", "provisioned-outage"])
    assert again.faults == scenario.faults
    assert len(again.traffic.flash_sales) == 1
    with pytest.raises(ConfigError, match="--faults: unknown fault 'meteor'"):
        with_faults(scenario, ["meteor"])


def test_switcher_only_runs_for_contenders_that_follow_a_primary() -> None:
    scenario = load_scenario()
    by_name = {c.name: c for c in scenario.contenders}
    assert contender_config(scenario, by_name["seed-switcher"]).switcher is not None
    assert contender_config(scenario, by_name["mangaroute"]).switcher is None


def test_a_scale_model_scales_capacity_and_hourly_prices_alike() -> None:
    scenario = load_scenario()
    config = contender_config(scenario, scenario.contenders[0], scale=0.1)
    pt = config.target("provisioned-sonnet")
    assert pt.capacity.tokens_per_minute == pytest.approx(8_000)
    assert pt.pricing.hourly_usd == pytest.approx(4.6)
    sm = config.target("sagemaker-manga")
    assert sm.capacity.requests_per_second == pytest.approx(1.6)
    assert config.target("ondemand-haiku").pricing.input_per_million_usd == 0.25


SCENARIO = """
[scenario]
name = "tiny"
seed = 3
contenders = ["mangaroute"]

[traffic]
messages = 50_000
curve = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
messages_per_session = 4

[traffic.mix]
simple = 0.7
complex = 0.3

[traffic.tokens.simple]
input = 300
output = 100

[[traffic.flash_sales]]
start = "12:00"
minutes = 5

[fleet.sagemaker-manga]
instances = 3
scale_out_lag_s = 600

[[faults]]
kind = "slowdown"
target = "sagemaker-manga"
start = "09:30"
minutes = 30
factor = 3
"""


def test_a_scenario_file_sets_traffic_fleet_faults_and_contenders() -> None:
    scenario = parse_scenario(SCENARIO, source="tiny.toml")
    assert scenario.seed == 3 and [c.name for c in scenario.contenders] == ["mangaroute"]
    assert dict(scenario.traffic.mix) == {"simple": 0.7, "complex": 0.3}
    assert scenario.traffic.tokens["simple"].input_mean == 300
    assert scenario.traffic.tokens["simple"].output_mean == 100
    assert scenario.traffic.flash_sales[0].start_s == 12 * 3600
    assert scenario.fleet["sagemaker-manga"].scale_out_lag_s == 600
    assert scenario.fleet_overrides == {"sagemaker-manga": {"instances": 3}}
    fault = scenario.faults[0]
    assert (fault.start_s, fault.end_s, fault.factor) == (34_200, 36_000, 3.0)
    assert scenario.fault_names == ("slowdown:sagemaker-manga@09:30+30min",)
    config = contender_config(scenario, scenario.contenders[0])
    assert config.target("sagemaker-manga").capacity.requests_per_second == 24


def test_the_model_is_published_unless_a_scenario_asks_for_the_seeds_profiles() -> None:
    scenario = parse_scenario(SCENARIO, source="tiny.toml")
    assert scenario.model == "published"
    targets = ["provisioned-sonnet", "ondemand-haiku", "ondemand-sonnet", "sagemaker-manga"]
    assert sorted(scenario.fleet) == sorted(targets)  # every target, tuned or not
    assert {m.physics for m in scenario.fleet.values()} == {"published"}
    tuned = SCENARIO.replace(
        "scale_out_lag_s = 600",
        "scale_out_lag_s = 600\ntokens_per_s = 30\nttft_ms = 400\nslots_per_instance = 6\n"
        "[fleet.ondemand-sonnet]\nrequests_per_minute = 600\ndaily_tokens = 1e8\n"
        "burndown = 5\ncross_region_ms = 80\nerror_rate = 0.002\ncache_read_price = 0.1",
    )
    fleet = parse_scenario(tuned, source="tiny.toml").fleet
    sm, sonnet = fleet["sagemaker-manga"], fleet["ondemand-sonnet"]
    assert (sm.tokens_per_s, sm.ttft_ms, sm.slots_per_instance) == (30, 400, 6)
    assert (sonnet.requests_per_minute, sonnet.daily_tokens, sonnet.burndown) == (600, 1e8, 5)
    assert (sonnet.cross_region_ms, sonnet.error_rate) == (80, 0.002)
    seed = parse_scenario(SCENARIO.replace("seed = 3", 'seed = 3\nmodel = "seed-profiles"'))
    assert seed.model == "seed-profiles"
    assert {m.physics for m in seed.fleet.values()} == {"seed-profiles"}


def test_a_regional_incident_degrades_every_target_of_the_region_and_a_quota_cut_on_demand() -> (
    None
):
    scenario = with_faults(load_scenario(), ["regional-incident", "quota-cut"])
    assert scenario.fault_names == ("regional-incident", "quota-cut")
    incident = [(f.kind, f.target) for f in scenario.faults if f.kind != "quota_cut"]
    targets = ["provisioned-sonnet", "ondemand-haiku", "ondemand-sonnet", "sagemaker-manga"]
    assert incident == [(kind, t) for t in targets for kind in ("slowdown", "fast_errors")]
    assert {(f.start_s, f.end_s) for f in scenario.faults[:8]} == {(72_000.0, 74_400.0)}
    cuts = [(f.target, f.factor, f.start_s) for f in scenario.faults if f.kind == "quota_cut"]
    assert cuts == [("ondemand-haiku", 0.5, 64_800.0), ("ondemand-sonnet", 0.5, 64_800.0)]


def test_a_scenario_may_name_its_own_router_config(tmp_path: Path) -> None:
    config = tmp_path / "router.toml"
    config.write_text(
        '[targets.only]\npattern = "bedrock_on_demand"\nmodel_id = "m"\n'
        'region = "ap-northeast-1"\n[classes.simple]\ntargets = ["only"]\n'
    )
    path = tmp_path / "s.toml"
    path.write_text(
        '[scenario]\nconfig = "router.toml"\ncontenders = ["plain"]\n'
        "[traffic.mix]\nsimple = 1.0\n[contenders.plain]\ndescription = 'as is'\n"
    )
    scenario = load_scenario(str(path))
    assert scenario.config_source == str(config)
    assert [t.name for t in contender_config(scenario, scenario.contenders[0]).targets] == ["only"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("seed = 3", "seed = -1"), "tiny.toml: [scenario.seed] expected an integer >= 0, got -1"),
        (("seed = 3", "sead = 3"), "tiny.toml: [scenario.sead] is not a known key"),
        (
            ('contenders = ["mangaroute"]', 'contenders = ["magic"]'),
            "tiny.toml: [scenario.contenders] names unknown contender 'magic'",
        ),
        (
            (
                "curve = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]",
                "curve = [1, 2]",
            ),
            "tiny.toml: [traffic.curve] expected 24 hourly weights >= 0, not all zero, got [1, 2]",
        ),
        (
            ("messages = 50_000", "messages = 0"),
            "tiny.toml: [traffic.messages] expected an integer >= 1",
        ),
        (("simple = 0.7", "simple = -1"), "tiny.toml: [traffic.mix.simple] expected a number >= 0"),
        (
            ("input = 300", "input = 0"),
            "tiny.toml: [traffic.tokens.simple.input] expected a number > 0",
        ),
        (
            ('start = "12:00"', 'start = "25:00"'),
            'tiny.toml: [traffic.flash_sales.0.start] expected a local time "HH:MM"',
        ),
        (
            ("[fleet.sagemaker-manga]", "[fleet.ec2]"),
            "tiny.toml: [fleet.ec2] is not a target of the config",
        ),
        (
            ("scale_out_lag_s = 600", "scale_out_lag_s = -5"),
            "tiny.toml: [fleet.sagemaker-manga.scale_out_lag_s] expected a number >= 0",
        ),
        (
            ('kind = "slowdown"', 'kind = "meltdown"'),
            "tiny.toml: [faults.0.kind] expected one of outage, throttle_storm, slowdown, "
            "fast_errors, quota_cut, got 'meltdown'",
        ),
        (
            ('target = "sagemaker-manga"', 'target = "lambda"'),
            "tiny.toml: [faults.0.target] names unknown target 'lambda'",
        ),
        (
            ("minutes = 30", "minutes = 0"),
            "tiny.toml: [faults.0.minutes] expected a number > 0, got 0",
        ),
        (("factor = 3", "factor = 3\nwhy = 1"), "tiny.toml: [faults.0.why] is not a known key"),
        (
            ("seed = 3", 'seed = 3\nmodel = "quantum"'),
            "tiny.toml: [scenario.model] expected one of published, seed-profiles, got 'quantum'",
        ),
        (
            ("scale_out_lag_s = 600", "scale_out_lag_s = 600\nerror_rate = 2"),
            "tiny.toml: [fleet.sagemaker-manga] error_rate must be in [0, 1), got 2.0",
        ),
        (
            ("scale_out_lag_s = 600", "scale_out_lag_s = 600\nslots_per_instance = 0"),
            "tiny.toml: [fleet.sagemaker-manga.slots_per_instance] expected an integer >= 1",
        ),
        (
            ("[traffic]", "[budget]\ndeadline_ms = 400\n[traffic]"),
            "tiny.toml: [budget] deadline_ms (400.0) leaves no time for inference",
        ),
    ],
)
def test_bad_scenarios_name_the_field(change: tuple[str, str], message: str) -> None:
    old, new = change
    assert old in SCENARIO
    with pytest.raises(ConfigError) as caught:
        parse_scenario(SCENARIO.replace(old, new, 1), source="tiny.toml")
    assert str(caught.value).startswith(message)


def test_other_scenario_mistakes() -> None:
    with pytest.raises(ConfigError, match=r"x.toml: \[scenario\] is required"):
        parse_scenario("[traffic]\n", source="x.toml")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        parse_scenario("[scenario\n", source="x.toml")
    with pytest.raises(
        ConfigError,
        match=r"cannot be read.*shipped scenarios: bad-day, cross-region, default, seed",
    ):
        load_scenario("/no/such/file.toml")


def test_a_contender_may_not_widen_what_a_class_is_served_by() -> None:
    scenario = load_scenario()
    sneaky = Contender("sneaky", "", {"classes": {"complex": {"targets": ["ondemand-haiku"]}}})
    with pytest.raises(ConfigError) as caught:
        contender_config(scenario, sneaky)
    assert "contender sneaky: [config.classes.complex.targets] may only use the targets" in str(
        caught.value
    )
    broken = Contender("broken", "", {"policies": {"p": {"ranker": "vibes"}}})
    with pytest.raises(ConfigError, match=r"contender broken: \[policies.p.ranker\] names unknown"):
        contender_config(scenario, broken)


keys = st.text("abcdefgh-_", min_size=1, max_size=6)
scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(10**9), max_value=10**9),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(max_size=8),
)
values = st.one_of(scalars, st.lists(st.integers(0, 99), max_size=4))
tables = st.recursive(
    st.dictionaries(keys, values, max_size=4),
    lambda inner: st.dictionaries(keys, st.one_of(values, inner), max_size=4),
    max_leaves=12,
)


@given(tables)
def test_config_data_survives_the_toml_writer(data: dict[str, Any]) -> None:
    assert tomllib.loads(dump(data)) == data


@given(tables, tables)
def test_an_overlay_wins_and_keeps_the_rest(base: dict[str, Any], overlay: dict[str, Any]) -> None:
    merged = merge(base, overlay)
    for key, value in overlay.items():
        if not isinstance(value, dict):
            assert merged[key] == value
    for key in base:
        assert key in merged


DOCS = Path(__file__).resolve().parents[2] / "docs" / "simulate.md"


def test_the_docs_say_what_every_shipped_scenario_and_preset_tests() -> None:
    text = DOCS.read_text("utf-8")
    faults = text[text.index("## Faults") : text.index("### What each one shows")]
    rows = {
        line.split("|")[1].strip().split()[0].strip("`"): line.split("|")[3].strip()
        for line in faults.splitlines()
        if line.startswith("| `")
    }
    for name in (*FAULT_PRESETS, *builtin_scenarios()):
        assert len(rows.get(name, "")) > 40, f"{name}: docs/simulate.md does not say what it tests"
    shown = text[text.index("### What each one shows") : text.index("## Scenario files")]
    for name in (*FAULT_PRESETS, *builtin_scenarios()):
        assert f"| `{name}`" in shown, f"{name}: no measured spread in docs/simulate.md"


def test_the_scenario_reference_is_generated_from_the_declarations() -> None:
    doc = DOCS.read_text("utf-8")
    assert doc == with_reference(doc, SCENARIO_DOCUMENT), (
        "docs/simulate.md's scenario reference is out of date with mangaroute/simulate/"
        'sections.py: regenerate it with python -c "import pathlib; from mangaroute.config.'
        "schema import with_reference as w; from mangaroute.simulate.sections import "
        "SCENARIO_DOCUMENT as d; p = pathlib.Path('docs/simulate.md'); "
        'p.write_text(w(p.read_text(), d))"'
    )
    section = doc[doc.index("## Scenario files") : doc.index("## Replaying traffic")]
    assert "#:schema ./scenario.schema.json" in section
    assert "$ mangaroute simulate --schema > scenario.schema.json" in section
    reference = section[section.index(SCENARIO_DOCUMENT.mark) :]
    rows = [line for line in reference.splitlines() if line.startswith("| `")]
    unexplained = [row.split(" | ")[0] for row in rows if not row.split("|")[-2].strip()]
    assert len(rows) > 60 and unexplained == []
    for title in ("[budget]", "[fleet.NAME]", "[[faults]]", "[contenders.NAME]"):
        assert f"### `{title}`" in reference


def test_the_cross_region_day_adds_a_profile_the_regional_incident_spares() -> None:
    scenario = load_scenario("cross-region")
    assert scenario.config_source.endswith("cross-region.toml [config]")
    config = contender_config(scenario, scenario.contenders[0])
    profile = config.target("xr-sonnet")
    assert profile.model_id.startswith("apac.") and profile.capacity.tokens_per_minute == 1e6
    assert {c.name: c.targets[-1] for c in config.classes} == dict.fromkeys(
        ("simple", "complex", "manga"), "xr-sonnet"
    )
    hit = {f.target for f in scenario.faults}
    assert hit == {"provisioned-sonnet", "ondemand-haiku", "ondemand-sonnet", "sagemaker-manga"}
    fleet = Fleet.build(config.targets, scenario.fleet, scenario.faults)
    assert fleet.by_name["xr-sonnet"].cross_region_ms == 60.0
    assert fleet.by_name["ondemand-sonnet"].cross_region_ms == 0.0


def test_a_scenario_config_table_changes_the_router_config_and_names_its_mistakes() -> None:
    bad = SCENARIO + '\n[config.targets.ondemand-haiku]\npattern = "carrier_pigeon"\n'
    with pytest.raises(ConfigError, match=r"tiny.toml \[config\].*targets.ondemand-haiku"):
        parse_scenario(bad, source="tiny.toml")


def test_the_default_day_streams_because_only_first_tokens_fit_the_deadline() -> None:
    scenario = load_scenario("default")
    assert scenario.model == "published" and scenario.budget.streaming
    config = contender_config(scenario, scenario.contenders[0])
    fleet = Fleet.build(config.targets, scenario.fleet, scenario.faults)
    cutoff = scenario.budget.cutoff_ms
    for sim in fleet.targets:  # a median message (500 in, 300 out) on an idle, warm target
        full, first = sim.earliest_answer(0, 0.5, 500, 300, horizon_ms=0) or (0.0, 0.0)
        assert first < cutoff / 2 < cutoff < full, sim.name
    # so the bound counts a message answerable by its first token there; the seed's day
    # (whole-call profiles) is answered whole
    assert limits_of(scenario).streaming and not limits_of(load_scenario("seed")).streaming
    for name in ("bad-day", "cross-region"):
        shipped = load_scenario(name)
        assert shipped.model == "published" and shipped.budget.streaming, name
    assert load_scenario("seed").model == "seed-profiles"


LAST_RESORT = """
[scenario]
contenders = ["narrow"]
last_resorts = ["xr-sonnet"]

[config.targets.xr-sonnet]
pattern = "bedrock_on_demand"
model_id = "apac.anthropic.claude-3-sonnet-20240229-v1:0"
region = "ap-northeast-1"
tier = "sonnet"
prior = "bedrock_ondemand_sonnet"
input_per_million_usd = 3.0
output_per_million_usd = 15.0
tokens_per_minute = 1000000

[config.classes.simple]
targets = ["provisioned-sonnet", "ondemand-haiku", "ondemand-sonnet", "xr-sonnet"]
[config.classes.complex]
targets = ["provisioned-sonnet", "ondemand-sonnet"]

[contenders.narrow]
description = "simple questions on Haiku, then on-demand Sonnet only"
[contenders.narrow.config.classes.simple]
targets = ["ondemand-haiku", "ondemand-sonnet"]
"""


def test_a_last_resort_stays_at_the_end_of_a_class_a_contender_narrows() -> None:
    scenario = parse_scenario(LAST_RESORT, source="xr.toml")
    assert scenario.last_resorts == ("xr-sonnet",)
    config = contender_config(scenario, scenario.contenders[0])
    classes = {c.name: c.targets for c in config.classes}
    assert classes["simple"] == ("ondemand-haiku", "ondemand-sonnet", "xr-sonnet")
    assert classes["complex"] == ("provisioned-sonnet", "ondemand-sonnet")  # never listed it
    without = parse_scenario(LAST_RESORT.replace('last_resorts = ["xr-sonnet"]\n', ""))
    narrowed = contender_config(without, without.contenders[0])
    assert {c.name: c.targets for c in narrowed.classes}["simple"] == (
        "ondemand-haiku",
        "ondemand-sonnet",
    )


def test_a_last_resort_must_be_a_target_of_the_config() -> None:
    text = LAST_RESORT.replace('last_resorts = ["xr-sonnet"]', 'last_resorts = ["xr-opus"]')
    with pytest.raises(
        ConfigError,
        match=r"xr.toml: \[scenario.last_resorts\] names unknown target 'xr-opus' \(known: ",
    ):
        parse_scenario(text, source="xr.toml")
