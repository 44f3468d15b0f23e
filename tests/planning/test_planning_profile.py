"""TOML profiles: the shipped one matches the code's defaults; every error names file and key."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mangaroute.core.errors import MangarouteError
from mangaroute.planning import (
    CapacityAssumptions,
    Prices,
    ProfileError,
    ScalingConfig,
    TcoAssumptions,
    TrafficProfile,
    load_profile,
)
from mangaroute.planning.errors import PlanningInputError, check_positive
from mangaroute.planning.profile import (
    Override,
    RecommendSettings,
    parse_assignment,
    parse_observed,
)

SHIPPED = resources.files("mangaroute.planning").joinpath("mangaassist.toml").read_text("utf-8")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "profile.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_profile_equals_the_documented_defaults() -> None:
    p = load_profile()
    assert p.traffic == TrafficProfile()
    assert p.capacity == CapacityAssumptions()
    assert p.prices == Prices()
    assert p.tco == TcoAssumptions()
    assert p.recommend == RecommendSettings()
    assert p.autoscaling == ScalingConfig()
    assert p.source.startswith("mangaassist.toml")


def test_missing_price_names_file_section_and_key(tmp_path: Path) -> None:
    path = _write(tmp_path, SHIPPED.replace("sonnet_mu_hourly = 23.0\n", ""))
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert str(info.value) == (f"{path}: [prices] sonnet_mu_hourly: is required")


def test_unknown_key_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, SHIPPED.replace("[traffic]", "[traffic]\npeak_multipler = 2.0"))
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert str(info.value).startswith(f"{path}: [traffic] peak_multipler: is not a known key")


def test_invalid_value_from_file_names_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, SHIPPED.replace("peak_multiplier = 3.5", "peak_multiplier = 0.5"))
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert str(info.value) == f"{path}: [traffic] peak_multiplier: must be ≥ 1, got 0.5"


def test_wrong_type_unknown_section_missing_section(tmp_path: Path) -> None:
    with pytest.raises(
        ProfileError, match=r"\[traffic\] daily_messages: expected an integer >= 0, got 'lots'"
    ):
        load_profile(_write(tmp_path, SHIPPED.replace("1_000_000", '"lots"')))
    with pytest.raises(
        ProfileError,
        match=r"\[extras\]: is not a known key \(expected one of: autoscaling, capacity, prices",
    ):
        load_profile(_write(tmp_path, SHIPPED + "\n[extras]\nx = 1\n"))
    with pytest.raises(ProfileError, match=r"\[prices\]: is required$"):
        load_profile(_write(tmp_path, "[traffic]\n"), required=("prices",))


def test_bad_toml_and_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="not valid TOML"):
        load_profile(_write(tmp_path, "x = [1\n"))
    with pytest.raises(ProfileError, match="cannot be read"):
        load_profile(tmp_path / "absent.toml")


def test_overrides_are_validated_and_credited() -> None:
    flag = Override(("traffic", "peak_multiplier"), 0.9, "--peak-multiplier")
    with pytest.raises(ProfileError) as info:
        load_profile(overrides=[flag])
    assert str(info.value).endswith(
        "[traffic] peak_multiplier: must be ≥ 1, got 0.9 (set by --peak-multiplier)"
    )
    ok = load_profile(overrides=[Override(("traffic", "peak_multiplier"), 5, "--set")])
    assert ok.traffic is not None
    assert ok.traffic.peak_multiplier == 5.0


def test_observed_numbers_in_a_profile(tmp_path: Path) -> None:
    text = (
        SHIPPED
        + "\n[recommend.observed.bedrock_provisioned]\np50_ms = 610\np90_ms = 950\np99_ms = 1500\n"
    )
    p = load_profile(_write(tmp_path, text))
    assert p.recommend is not None
    assert p.recommend.observed == {
        "bedrock_provisioned": {"p50_ms": 610, "p90_ms": 950, "p99_ms": 1500}
    }
    bad = SHIPPED + "\n[recommend.observed.bedrock_provisioned]\np50_ms = 610\n"
    with pytest.raises(
        ProfileError, match=r"\[recommend\] observed.bedrock_provisioned.p90_ms: is required$"
    ):
        load_profile(_write(tmp_path, bad))


def test_parse_assignment_reads_toml_values() -> None:
    assert parse_assignment("traffic.peak_hours=7") == (("traffic", "peak_hours"), 7)
    assert parse_assignment("tco.use_sized_sonnet_mus = true") == (
        ("tco", "use_sized_sonnet_mus"),
        True,
    )
    assert parse_assignment("autoscaling.schedule_timezone=Etc/UTC") == (
        ("autoscaling", "schedule_timezone"),
        "Etc/UTC",
    )
    with pytest.raises(PlanningInputError):
        parse_assignment("peak_hours=7")


def test_parse_observed() -> None:
    assert parse_observed("sagemaker_realtime=500/800/1200") == (
        "sagemaker_realtime",
        {"p50_ms": 500.0, "p90_ms": 800.0, "p99_ms": 1200.0},
    )
    for bad in ("sagemaker_realtime=500/800", "=1/2/3", "x=a/b/c", "x"):
        with pytest.raises(PlanningInputError):
            parse_observed(bad)


@given(st.text(max_size=40))
def test_parsers_fail_only_with_input_errors(text: str) -> None:
    for parse in (parse_assignment, parse_observed):
        try:
            parse(text)
        except PlanningInputError as exc:
            assert exc.field in {"--set", "--observed"}


@given(
    st.sampled_from(
        ["daily_messages", "peak_multiplier", "peak_hours", "burst_factor", "avg_input_tokens"]
    ),
    st.one_of(
        st.integers(-(10**6), 10**7),
        st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(),
        st.text(max_size=5),
    ),
)
def test_traffic_values_either_load_or_name_the_field(key: str, value: object) -> None:
    try:
        profile = load_profile(overrides=[Override(("traffic", key), value, "--set")])
    except ProfileError as exc:
        assert f"[traffic] {key}:" in str(exc)
        assert "(set by --set)" in str(exc)
    else:
        assert profile.traffic is not None
        assert getattr(profile.traffic, key) == value


def test_shipped_profile_is_plain_toml() -> None:
    assert set(tomllib.loads(SHIPPED)) == {
        "traffic",
        "capacity",
        "prices",
        "tco",
        "recommend",
        "autoscaling",
    }


def test_planning_input_error_is_a_mangaroute_error_and_still_a_value_error() -> None:
    with pytest.raises(MangarouteError, match=r"^peak_rps: must be > 0, got 0$") as info:
        check_positive("peak_rps", 0)
    assert isinstance(info.value, PlanningInputError)
    assert isinstance(info.value, ValueError)
    assert info.value.field == "peak_rps"
