"""A bad planning profile is a ConfigError naming the file and the key, like a bad router
config, and still the PlanningInputError it was; the planning CLI's words are unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from mangaroute.cli.output import error_json
from mangaroute.core.errors import ConfigError, MangarouteError
from mangaroute.planning.errors import PlanningInputError
from mangaroute.planning.profile import Override, ProfileError, load_profile


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
