"""A bad planning profile is a ConfigError naming the file and the key, like a bad router
config, and still the PlanningInputError it was; the planning CLI's words are unchanged."""

from __future__ import annotations

import io
import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from mangaroute.cli.output import error_json
from mangaroute.core.errors import ConfigError, MangarouteError
from mangaroute.planning.cli import run
from mangaroute.planning.errors import PlanningInputError
from mangaroute.planning.profile import Override, ProfileError, load_profile
from mangaroute.planning.sections import OBSERVED as OBSERVED_SECTION
from mangaroute.planning.sections import SECTIONS


def test_an_unknown_key_is_a_config_error_naming_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text("[traffic]\npeak_multipler = 3\n", "utf-8")
    with pytest.raises(ConfigError) as info:
        load_profile(path)
    error = info.value
    assert isinstance(error, ProfileError)
    assert isinstance(error, PlanningInputError)
    assert isinstance(error, MangarouteError)
    assert (error.source, error.key) == (str(path), "traffic.peak_multipler")
    assert str(error).startswith(
        f"{path}: [traffic] peak_multipler: is not a known key (expected one of"
    )
    assert error_json(error) == {
        "error": str(error),
        "field": "traffic.peak_multipler",
        "file": str(path),
        "type": "ProfileError",
    }


def test_a_bad_flag_names_the_key_and_the_flag() -> None:
    override = Override(("traffic", "peak_multiplier"), -2.0, "--peak-multiplier")
    with pytest.raises(ConfigError) as info:
        load_profile(overrides=[override])
    assert info.value.key == "traffic.peak_multiplier"
    assert str(info.value).endswith("(set by --peak-multiplier)")


def test_an_unreadable_file_is_a_config_error_with_no_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_profile(tmp_path / "missing.toml")
    assert info.value.key == ""
    assert str(info.value).startswith(f"{tmp_path / 'missing.toml'}: cannot be read")


SHIPPED = resources.files("mangaroute.planning").joinpath("mangaassist.toml").read_text("utf-8")
OBSERVED = "\n[recommend.observed.bedrock_provisioned]\np50_ms = 610\np90_ms = 950\np99_ms = {}\n"
SHOP = "mangaassist.toml (shipped MangaAssist profile)"


@pytest.mark.parametrize(
    ("command", "edit", "key", "message"),
    [
        (
            "throughput",
            ("peak_hours = 6", "peak_hours = 6\npeak_hour = 7"),
            "traffic.peak_hour",
            "[traffic] peak_hour: is not a known key (expected one of: avg_input_tokens, "
            "avg_output_tokens, burst_factor, daily_messages, peak_hours, peak_multiplier)",
        ),
        (
            "tco",
            ("[tco]", "[tco]\n[ttco]"),
            "ttco",
            "[ttco]: is not a known key (expected one of: autoscaling, capacity, prices, "
            "recommend, tco, traffic)",
        ),
        (
            "throughput",
            ("peak_hours = 6", 'peak_hours = "six"'),
            "traffic.peak_hours",
            "[traffic] peak_hours: expected an integer >= 0, got 'six'",
        ),
        (
            "tco",
            ("use_sized_sonnet_mus = false", "use_sized_sonnet_mus = 0"),
            "tco.use_sized_sonnet_mus",
            "[tco] use_sized_sonnet_mus: expected true or false, got 0",
        ),
        (
            "throughput",
            ('"ml.g5.xlarge" = 5', '"ml.g5.xlarge" = "fast"'),
            "capacity.sagemaker_instance_rps.ml.g5.xlarge",
            "[capacity] sagemaker_instance_rps.ml.g5.xlarge: expected a number, got 'fast'",
        ),
        (
            "throughput",
            ("peak_hours = 6", "peak_hours = 25"),
            "traffic.peak_hours",
            "[traffic] peak_hours: must be ≤ 24, got 25",
        ),
        (
            "recommend",
            (
                'schedule_timezone = "Asia/Tokyo"',
                'schedule_timezone = "Asia/Tokyo"' + OBSERVED.format(4e6),
            ),
            "recommend.observed.bedrock_provisioned.p99_ms",
            "[recommend] observed.bedrock_provisioned.p99_ms: expected a number <= 3,600,000, "
            "got 4000000.0: must be between 0 and 3,600,000 ms",
        ),
        (
            "autoscaling",
            ('region = "ap-northeast-1"\n', ""),
            "autoscaling.region",
            "[autoscaling] region: is required",
        ),
        (
            "tco",
            ("[prices]", "[prices]"),
            "prices",
            "[prices]: is required",
        ),
    ],
)
def test_every_kind_of_bad_profile_exits_2_with_one_line_or_a_json_error(
    tmp_path: Path, capsys: Any, command: str, edit: tuple[str, str], key: str, message: str
) -> None:
    assert edit[0] in SHIPPED
    path = tmp_path / "shop.toml"
    path.write_text(SHIPPED.replace(edit[0], edit[1], 1), "utf-8")
    if key == "prices":  # tco needs [prices]: leave the whole table out
        path.write_text(_without_section(SHIPPED, "prices"), "utf-8")
    argv = ["plan", command, "--profile", str(path)]
    assert run(argv, io.StringIO()) == 2
    assert capsys.readouterr().err == f"mangaroute plan {command}: error: {path}: {message}\n"
    out = io.StringIO()
    assert run([*argv, "--json"], out) == 2
    assert json.loads(out.getvalue()) == {
        "error": f"{path}: {message}",
        "field": key,
        "file": str(path),
        "type": "ProfileError",
    }


def _without_section(text: str, name: str) -> str:
    """``text`` with its ``[name]`` table (up to the next table) left out."""
    head, _, rest = text.partition(f"\n[{name}]")
    return head + "\n[" + rest.split("\n[", 1)[1]


def test_a_bad_flag_value_names_the_flag_in_the_json_error_too() -> None:
    out = io.StringIO()
    assert run(["plan", "tco", "--set", "tco.days_per_month=30.5", "--json"], out) == 2
    assert json.loads(out.getvalue()) == {
        "error": f"{SHOP}: [tco] days_per_month: expected an integer >= 0, got 30.5 "
        "(set by --set tco.days_per_month=30.5)",
        "field": "tco.days_per_month",
        "file": SHOP,
        "type": "ProfileError",
    }


KEYS = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=20)


@given(section=st.sampled_from([*SECTIONS, "recommend.observed.bedrock_provisioned"]), key=KEYS)
def test_a_random_unknown_key_under_any_section_is_rejected_naming_it(
    section: str, key: str
) -> None:
    declared = OBSERVED_SECTION if "." in section else SECTIONS[section][1]
    assume(key not in declared.names)
    overrides = [Override((*section.split("."), key), 1, "--set")]
    if "." in section:  # the pattern's table needs its three percentiles
        numbers = {"p50_ms": 610, "p90_ms": 950, "p99_ms": 1500}
        overrides.insert(0, Override(tuple(section.split(".")), numbers, "--observed"))
    with pytest.raises(ProfileError) as info:
        load_profile(overrides=overrides)
    error = info.value
    assert error.key == f"{section}.{key}"
    expected = ", ".join(sorted(declared.names))
    assert error.message == f"is not a known key (expected one of: {expected})"
    assert str(error).endswith("(set by --set)")
    assert f"[{section.split('.', maxsplit=1)[0]}] " in str(error)
