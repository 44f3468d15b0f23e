"""Target names CloudWatch cannot carry as a dimension value are config errors, naming the
target - ``mangaroute config check`` exits 2 instead of a dashboard that stays empty."""

from __future__ import annotations

import string
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from mangaroute.core.limits import DIMENSION_VALUE_MAX_CHARS, dimension_value_violation

from .conftest import SMALL_CONFIG
from .test_cli import run

PRINTABLE = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E))


def test_config_check_rejects_a_non_ascii_target_name(tmp_path: Path) -> None:
    path = tmp_path / "jp.toml"
    path.write_text(SMALL_CONFIG.replace("[targets.fast]", '[targets."ソネット"]', 1))
    result = run("config", "check", str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    assert (
        f"{path}: [targets.ソネット] the target name 'ソネット' holds 'ソ' (U+30BD, not ASCII): "
        "CloudWatch dimension values are printable ASCII only; rename the target"
    ) in result.stderr
    assert "Traceback" not in result.stderr


def test_config_check_accepts_any_printable_ascii_name(tmp_path: Path) -> None:
    path = tmp_path / "ascii.toml"
    name = "fast model/ja-JP:v2 (Sonnet) #1"
    text = SMALL_CONFIG.replace("[targets.fast]", f'[targets."{name}"]', 1)
    path.write_text(text.replace('"fast"', f'"{name}"'))
    result = run("config", "check", str(path), "--json")
    assert result.returncode == 0, result.stderr
    assert name in result.stdout


@given(PRINTABLE.filter(lambda v: v.strip() != "" and len(v) <= DIMENSION_VALUE_MAX_CHARS))
def test_printable_ascii_with_a_visible_character_is_allowed(value: str) -> None:
    assert dimension_value_violation(value) is None


@given(
    PRINTABLE,
    st.characters(exclude_characters=string.printable[:-5]),  # not printable ASCII
    PRINTABLE,
)
def test_any_other_character_is_named(before: str, bad: str, after: str) -> None:
    reason = dimension_value_violation(before + bad + after)
    assert reason is not None and f"U+{ord(bad):04X}" in reason


def test_blank_and_too_long_values_are_refused() -> None:
    assert "blank" in str(dimension_value_violation("   "))
    assert "blank" in str(dimension_value_violation(""))
    assert dimension_value_violation("x" * DIMENSION_VALUE_MAX_CHARS) is None
    too_long = dimension_value_violation("x" * (DIMENSION_VALUE_MAX_CHARS + 1))
    assert too_long is not None and "1,025 characters long" in too_long
