"""The routing context: ``requestMetadata`` keys and ``mangaroute.context`` blocks."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

import mangaroute
from mangaroute import InvalidRequest
from mangaroute.dropin import RoutingContext, current_context
from mangaroute.dropin.routing_context import parse_budget_ms, split_metadata
from mangaroute.invoke import Deadline

BUDGET = "mangaroute.budget_ms"
SESSION = "mangaroute.session_id"
positive = st.floats(min_value=1e-3, max_value=1e9, allow_nan=False, allow_infinity=False)


@given(positive)
def test_any_positive_budget_reads_back_as_written(budget: float) -> None:
    assert parse_budget_ms(repr(budget)) == budget
    assert parse_budget_ms(str(int(budget) + 1)) == int(budget) + 1


@given(st.text(max_size=20))
def test_a_budget_is_a_positive_number_or_a_precise_error(text: str) -> None:
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is not None and math.isfinite(value) and value > 0:
        assert parse_budget_ms(text) == value
        return
    with pytest.raises(InvalidRequest, match=r"requestMetadata\['mangaroute\.budget_ms'\]"):
        parse_budget_ms(text)


@given(
    st.dictionaries(st.sampled_from(["team", "user", "trace"]), st.text(max_size=5)),
    st.none() | st.text(min_size=1, max_size=10),
    st.none() | positive,
)
def test_routing_keys_are_read_and_removed_the_rest_is_kept(
    others: dict[str, str], session_id: str | None, budget: float | None
) -> None:
    metadata = dict(others)
    if session_id is not None:
        metadata[SESSION] = session_id
    if budget is not None:
        metadata[BUDGET] = repr(budget)
    found, rest = split_metadata(metadata)
    assert found == RoutingContext(session_id, budget)
    # an empty map is passed on as given (botocore refuses it, as it would without us)
    assert rest == (others if others or not metadata else None)


def test_no_metadata_is_no_context() -> None:
    assert split_metadata(None) == (RoutingContext(), None)


def test_context_blocks_nest_and_end() -> None:
    assert current_context() == RoutingContext()
    with mangaroute.context(session_id="s1", budget_ms=1500) as outer:
        assert outer == RoutingContext("s1", 1500.0)
        with mangaroute.context(budget_ms=800):
            assert current_context() == RoutingContext("s1", 800.0)
        assert current_context() == outer
    assert current_context() == RoutingContext()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"budget_ms": 0}, "budget_ms must be a positive, finite number of ms, got 0"),
        ({"budget_ms": math.inf}, "budget_ms must be a positive, finite number of ms, got inf"),
        ({"budget_ms": "1500"}, "budget_ms must be a number of milliseconds, got '1500'"),
        ({"session_id": 42}, "session_id must be a string, got int"),
    ],
)
def test_a_bad_context_is_refused_by_name(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidRequest, match=f"^{message}$"), mangaroute.context(**kwargs):  # type: ignore[arg-type]
        pass


def test_budget_and_deadline_are_one_time_limit() -> None:
    deadline = Deadline(at_ns=10**15)
    with pytest.raises(InvalidRequest, match=r"^pass budget_ms or deadline, not both$"):
        RoutingContext(budget_ms=1500, deadline=deadline)
    with mangaroute.context(budget_ms=1500), mangaroute.context(deadline=deadline):
        assert current_context() == RoutingContext(None, None, deadline)
    with mangaroute.context(deadline=deadline), mangaroute.context(session_id="s"):
        assert current_context() == RoutingContext("s", None, deadline)
    with pytest.raises(InvalidRequest, match="deadline must be a Deadline"):  # noqa: SIM117
        with mangaroute.context(deadline=3000):  # type: ignore[arg-type]
            pass
