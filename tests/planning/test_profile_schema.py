"""A planning profile's JSON Schema is generated from its declared sections, as the router
config's is, and agrees with the reader: the shipped profile passes both, and a misspelt key
or a value of the wrong kind fails both, each naming the key."""

from __future__ import annotations

import io
import json
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mangaroute.config.schema import json_schema, published_schema_text, schema_text
from mangaroute.core.errors import ConfigError
from mangaroute.planning.cli import run
from mangaroute.planning.profile import load_profile
from mangaroute.planning.sections import PROFILE_DOCUMENT, SECTIONS

SHIPPED = resources.files("mangaroute.planning").joinpath("mangaassist.toml").read_text("utf-8")
SCHEMA = json_schema(PROFILE_DOCUMENT)
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def _errors(text: str) -> list[tuple[list[Any], str]]:
    found = VALIDATOR.iter_errors(tomllib.loads(text))
    return [(list(error.absolute_path), error.message) for error in found]


def _reader_error(text: str, directory: Path) -> ConfigError:
    path = directory / "shop.toml"
    path.write_text(text, "utf-8")
    with pytest.raises(ConfigError) as info:
        load_profile(path)
    return info.value


def test_the_published_schema_is_the_generated_one() -> None:
    assert published_schema_text(PROFILE_DOCUMENT) == schema_text(PROFILE_DOCUMENT), (
        "mangaroute/data/planning-profile.schema.json is out of date with the declared "
        "sections in mangaroute/planning/sections.py: regenerate it with "
        "`mangaroute plan schema > mangaroute/data/planning-profile.schema.json`"
    )
    jsonschema.Draft202012Validator.check_schema(
        json.loads(published_schema_text(PROFILE_DOCUMENT))
    )


def test_plan_schema_prints_it() -> None:  # and through `python -m mangaroute`:
    out = io.StringIO()  # tests/test_config_schema.py runs each schema command
    assert run(["plan", "schema"], out) == 0
    assert out.getvalue() == published_schema_text(PROFILE_DOCUMENT)


def test_the_shipped_profile_validates_and_reads() -> None:
    assert _errors(SHIPPED) == []
    load_profile()  # and the reader takes it


def test_the_schema_states_every_section_and_what_a_profile_requires() -> None:
    assert SCHEMA["title"] == "mangaroute planning profile"
    assert list(SCHEMA["properties"]) == list(SECTIONS)
    assert "required" not in SCHEMA  # each sub-command needs only some sections
    for name, (_, section) in SECTIONS.items():
        table = SCHEMA["properties"][name]
        assert table["additionalProperties"] is False
        assert list(table["properties"]) == [key.name for key in section.keys]
        assert table["required"] == [key.name for key in section.keys if key.required]
    recommend = SCHEMA["properties"]["recommend"]
    assert "min_throughput_rps" not in recommend["required"]
    assert "observed" not in recommend["required"]
    observed = recommend["properties"]["observed"]["additionalProperties"]
    assert observed["required"] == ["p50_ms", "p90_ms", "p99_ms"]
    assert observed["properties"]["p99_ms"]["maximum"] == 3_600_000
    rps = SCHEMA["properties"]["capacity"]["properties"]["sagemaker_instance_rps"]
    assert rps["additionalProperties"] == {"type": "number", "exclusiveMinimum": 0}
    traffic = SCHEMA["properties"]["traffic"]["properties"]
    assert traffic["daily_messages"] == {"type": "integer", "default": 1_000_000}
    assert traffic["peak_multiplier"] == {"type": "number", "default": 3.5}


BAD = [
    pytest.param(
        ("peak_hours = 6", "peak_hours = 6\npeak_hour = 6"),
        ["traffic"],
        "'peak_hour' was unexpected",
        "traffic.peak_hour",
        "[traffic] peak_hour: is not a known key (expected one of: ",
        id="misspelt key",
    ),
    pytest.param(
        ("[tco]", "[ttco]"),
        [],
        "'ttco' was unexpected",
        "ttco",
        "[ttco]: is not a known key (expected one of: ",
        id="misspelt section",
    ),
    pytest.param(
        ("peak_hours = 6", 'peak_hours = "6"'),
        ["traffic", "peak_hours"],
        "'6' is not of type 'integer'",
        "traffic.peak_hours",
        "[traffic] peak_hours: expected an integer >= 0, got '6'",
        id="wrong type",
    ),
    pytest.param(
        ("use_sized_sonnet_mus = false", "use_sized_sonnet_mus = 0"),
        ["tco", "use_sized_sonnet_mus"],
        "0 is not of type 'boolean'",
        "tco.use_sized_sonnet_mus",
        "[tco] use_sized_sonnet_mus: expected true or false, got 0",
        id="wrong type of flag",
    ),
    pytest.param(
        ('"ml.g5.xlarge" = 5', '"ml.g5.xlarge" = "fast"'),
        ["capacity", "sagemaker_instance_rps", "ml.g5.xlarge"],
        "'fast' is not of type 'number'",
        "capacity.sagemaker_instance_rps.ml.g5.xlarge",
        "[capacity] sagemaker_instance_rps.ml.g5.xlarge: expected a number, got 'fast'",
        id="wrong type in a table of numbers",
    ),
    pytest.param(
        ('region = "ap-northeast-1"\n', ""),
        ["autoscaling"],
        "'region' is a required property",
        "autoscaling.region",
        "[autoscaling] region: is required",
        id="missing key",
    ),
]


@pytest.mark.parametrize(("edit", "where", "schema_says", "key", "reader_says"), BAD)
def test_a_bad_key_fails_the_schema_and_the_reader_naming_the_key(
    tmp_path: Path,
    edit: tuple[str, str],
    where: list[str],
    schema_says: str,
    key: str,
    reader_says: str,
) -> None:
    assert SHIPPED.count(edit[0]) == 1
    text = SHIPPED.replace(edit[0], edit[1])
    assert _errors(text) == [(where, _Containing(schema_says))]
    error = _reader_error(text, tmp_path)
    assert error.key == key
    assert str(error).startswith(f"{tmp_path / 'shop.toml'}: {reader_says}")


class _Containing(str):
    """Equal to any message that contains it (jsonschema's words around the key vary)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and str(self) in other

    __hash__ = str.__hash__


DECLARED = sorted({key.name for _, section in SECTIONS.values() for key in section.keys})
KEY_NAMES = st.from_regex(r"[a-z_][a-z0-9_-]{0,23}", fullmatch=True) | st.sampled_from(DECLARED)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(section=st.sampled_from(list(SECTIONS)), name=KEY_NAMES)
def test_a_key_name_is_rejected_by_both_exactly_when_undeclared(
    tmp_path_factory: pytest.TempPathFactory, section: str, name: str
) -> None:
    declared = SECTIONS[section][1].names
    shipped = tomllib.loads(SHIPPED)[section]
    assume(name not in shipped and name != "observed")  # observed: tables, not a number
    header = re.compile(rf"^\[{section}\][^\n]*\n", re.M)
    text = header.sub(lambda line: f"{line[0]}{name} = 1.5\n", SHIPPED, count=1)
    if name in declared:  # an optional key the shipped file leaves out
        assert name == "min_throughput_rps"
        assert _errors(text) == []
        path = tmp_path_factory.mktemp("p") / "shop.toml"
        path.write_text(text, "utf-8")
        recommend = load_profile(path).recommend
        assert recommend is not None and recommend.min_throughput_rps == 1.5
        return
    assert _errors(text) == [([section], _Containing(f"{name!r} was unexpected"))]
    error = _reader_error(text, tmp_path_factory.mktemp("p"))
    assert error.key == f"{section}.{name}"
    assert re.search(rf"\[{section}\] {re.escape(name)}: is not a known key", str(error))
