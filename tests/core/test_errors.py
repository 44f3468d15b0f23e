"""Error messages quote bad values in bounded space: a 16 KB name must not come back as a
16 KB message (over gRPC that turned INVALID_ARGUMENT into RESOURCE_EXHAUSTED, issue 13)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mangaroute import (
    InvalidObservation,
    InvalidRequest,
    Router,
    UnknownRequestClass,
    UnknownTarget,
)
from mangaroute.core.errors import ECHO_CHARS, echo
from mangaroute.core.inflight import DROPS_REMEMBERED
from mangaroute.core.limits import LIMITS

HUGE = "x" * 20_000


def test_echo_keeps_short_values_whole_and_cuts_long_ones() -> None:
    assert echo("fast") == "'fast'"
    assert echo("y" * 64) == repr("y" * 64)
    assert echo("y" * 65) == repr("y" * 64) + "... (65 characters)"
    assert echo(HUGE) == repr("x" * 64) + "... (20000 characters)"
    assert echo(2.5) == "2.5"
    assert echo(list(range(1000))) == repr(list(range(1000)))[:64] + "... (4890 characters)"


@given(st.one_of(st.text(max_size=5000), st.lists(st.integers(), max_size=500)))
def test_an_echo_is_bounded_and_starts_like_the_value(value: object) -> None:
    text = echo(value)
    assert len(text) <= 10 * ECHO_CHARS + 40  # a repr escapes a character in at most 10
    whole = repr(value)
    if isinstance(value, str) and len(value) > ECHO_CHARS:
        assert text.startswith(repr(value[:ECHO_CHARS]))
        assert text.endswith(f"... ({len(value)} characters)")
    elif len(whole) > ECHO_CHARS and not isinstance(value, str):
        assert text == f"{whole[:ECHO_CHARS]}... ({len(whole)} characters)"
    else:
        assert text == whole


CASES: list[tuple[str, dict[str, Any], type[Exception]]] = [
    ("choose", {"request_class": HUGE}, UnknownRequestClass),
    ("choose", {"request_class": "chat", "budget_ms": HUGE}, InvalidRequest),
    ("choose", {"request_class": "chat", "input_tokens": HUGE}, InvalidRequest),
    ("record", {"decision": HUGE, "latency_ms": 1.0}, UnknownTarget),
    ("record", {"decision": "fast", "outcome": HUGE, "latency_ms": 1.0}, InvalidObservation),
    ("record", {"decision": "fast", "latency_ms": HUGE}, InvalidObservation),
    ("record", {"decision": "fast", "latency_ms": 1.0, "ttft_ms": HUGE}, InvalidObservation),
    ("record", {"decision": "fast", "latency_ms": 1.0, "error_code": [HUGE]}, InvalidObservation),
    ("eject", {"target": HUGE, "reason": "x"}, UnknownTarget),
]


@pytest.mark.parametrize(("method", "kwargs", "error"), CASES)
def test_router_errors_quote_at_most_64_characters_of_a_value(
    router: Router, method: str, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error) as raised:
        getattr(router, method)(**kwargs)
    message = str(raised.value)
    assert "x" * 62 in message and "x" * 65 not in message
    assert "... (20000 characters)" in message or "... (20004 characters)" in message
    assert len(message) < 400


def test_the_readme_states_the_bounds_the_code_uses() -> None:
    readme = " ".join((Path(__file__).resolve().parents[2] / "README.md").read_text().split())
    assert ECHO_CHARS == 64
    assert "A message quotes at most 64 characters of a bad value" in readme
    assert DROPS_REMEMBERED == 10_000
    assert "(the latest 10,000 drops are remembered)" in readme
    assert "for 0.001 s to a week (604,800 s)" in readme
    assert (LIMITS["invoke.eject_cooldown_s"].low, LIMITS["invoke.eject_cooldown_s"].high) == (
        0.001,
        604_800,
    )


def test_an_unhashable_request_class_is_an_unknown_class(router: Router) -> None:
    with pytest.raises(UnknownRequestClass, match=r"unknown request class \"\['chat'\]\""):
        router.choose(["chat"])  # type: ignore[arg-type]
