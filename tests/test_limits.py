"""Every numeric setting has a range: ``config check`` and the constructors both enforce it.

Regression tests for issue 13, items 5, 9 (deep TOML) and 11 (duplicate targets, all-zero
weights): each of these configs passed before and then ran out of memory, overflowed or
routed by surprise.
"""

from __future__ import annotations

import dataclasses
import io
import math
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from contextlib import redirect_stderr
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mangaroute import ConfigError, load_default_config, parse_config
from mangaroute.cli import main
from mangaroute.core.breaker import BreakerPolicy
from mangaroute.core.fleet import SharedSettings
from mangaroute.core.limits import LIMITS, MAX_WINDOW_BUCKETS, Range
from mangaroute.core.policy.budget import BudgetGuard
from mangaroute.core.policy.canary import Canary
from mangaroute.core.policy.cost import CostUnderSlo
from mangaroute.core.policy.filters import Headroom, LatencyCeiling
from mangaroute.core.policy.pickers import Weighted
from mangaroute.core.policy.prediction import LatencyPredictor, Reliable
from mangaroute.core.policy.rankers import CheapestWithinSlo, WeightedScore
from mangaroute.core.policy.schedule import Schedule
from mangaroute.core.policy.spillover import Spillover
from mangaroute.core.policy.switcher import SwitcherSettings
from mangaroute.core.policy.throttle import ThrottleBet
from mangaroute.core.router import Router
from mangaroute.core.scoring import ScoreWeights
from mangaroute.core.settings import RequestClass, WindowSettings
from mangaroute.core.targets import Capacity, LatencyProfile, Pattern, Pricing, Target
from mangaroute.invoke.client import InvokeSettings
from mangaroute.invoke.hedging import HedgePolicy
from mangaroute.invoke.retry import RetryPolicy
from mangaroute.planning.errors import PlanningInputError
from mangaroute.planning.profile import load_profile, parse_assignment
from mangaroute.simulate.scenario import load_scenario

Doc = dict[str, Any]


def base_doc() -> Doc:
    """A small valid config, as the dict TOML would parse into."""
    target = {"pattern": "bedrock_on_demand", "model_id": "m", "region": "ap-northeast-1"}
    return {
        "router": {},
        "targets": {"a": dict(target), "b": dict(target)},
        "classes": {"chat": {"targets": ["a", "b"], "policy": "p"}},
        "policies": {"p": {}},
    }


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)  # ints, and floats including nan / inf / -inf, are TOML as repr'd


def to_toml(doc: Doc) -> str:
    """Just enough of a TOML writer for these documents: nested tables of scalars and lists."""
    lines: list[str] = []

    def write(table: Doc, path: tuple[str, ...]) -> None:
        scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
        if path:
            lines.append(f"[{'.'.join(path)}]")
        lines.extend(f"{k} = {toml_value(v)}" for k, v in scalars.items())
        for key, value in table.items():
            if isinstance(value, dict):
                write(value, (*path, key))

    write(doc, ())
    return "\n".join(lines) + "\n"


def clamp(value: float, low: float, high: float) -> float:
    return min(high, max(low, value))


# Where each section's keys go in a config, and the sibling values a test value needs to be
# valid on its own (window_s with a bucket width that fits it, a primary weight above the
# canary's, ...). ``None``: the setting is not read from a config file.
Placer = Callable[[Doc, str, Any], tuple[str, ...]]


def _in(*path: str, **extra: Any) -> Placer:
    def place(doc: Doc, name: str, value: Any) -> tuple[str, ...]:
        table = doc
        for part in path:
            table = table.setdefault(part, {})
        table.update(extra)
        table[name] = value
        return (*path, name)

    return place


def _policy(role: str, part: str, **extra: Any) -> Placer:
    def place(doc: Doc, name: str, value: Any) -> tuple[str, ...]:
        policy = doc["policies"]["p"]
        if role == "filters":
            policy["filters"] = ["healthy", part]
        else:
            policy[role] = part
        return _in("policies", "p", part, **extra)(doc, name, value)

    return place


PLACES: dict[str, Placer | None] = {
    "router": _in("router"),
    "breaker": _in("breaker"),
    "shared": _in("shared", url="redis://localhost", deployment="d"),
    "profile": _in("profiles", "x"),
    "pricing": _in("targets", "a"),
    "capacity": _in("targets", "a"),
    "target": _in("targets", "a"),
    "switcher": _in("switcher", primary="a"),
    "headroom": _policy("filters", "headroom"),
    "latency_ceiling": _policy("filters", "latency_ceiling"),
    "reliable": _policy("filters", "reliable"),
    "schedule": _policy("filters", "schedule"),
    "prediction": _in("policies", "p", "prediction"),
    "score": _policy("ranker", "score"),
    "score.weights": lambda doc, name, value: (
        doc["policies"]["p"].update(ranker="score"),
        _in("policies", "p", "score", "weights")(doc, name, value),
    )[1],
    "cost": _policy("ranker", "cost"),
    "cost_under_slo": _policy("ranker", "cost_under_slo"),
    "weighted": lambda doc, name, value: (
        doc["policies"]["p"].update(picker="weighted"),
        _in("policies", "p", "weighted", "weights", b=1.0)(doc, "a", value),
    )[1],
    "spillover": _policy("picker", "spillover"),
    "canary": _policy("picker", "canary", candidate="b"),
    "budget_guard": _policy("picker", "budget_guard", daily_usd=10.0),
    "invoke": None,
    "hedge": None,
    "retry": None,
}


def companions(key: str, value: Any) -> dict[str, Any]:
    """Siblings that keep a value that is in range valid against the other settings."""
    number = value if isinstance(value, int | float) and math.isfinite(value) else 1.0
    return {
        "router.window_s": {"bucket_s": clamp(number / 12, 0.01, 3600)},
        "router.bucket_s": {"window_s": clamp(number * 12, 0.02, 86_400)},
        "breaker.cooldown_s": {"max_cooldown_s": 604_800.0},
        "breaker.max_cooldown_s": {"cooldown_s": 0.001},
        "shared.sync_interval_ms": {"stale_after_ms": 600_000.0},
        "shared.stale_after_ms": {"sync_interval_ms": 1.0},
        "profile.p50_ms": {"p90_ms": 3_600_000.0, "p99_ms": 3_600_000.0},
        "profile.p90_ms": {"p50_ms": 0.0, "p99_ms": 3_600_000.0},
        "profile.p99_ms": {"p50_ms": 0.0, "p90_ms": 0.0},
        "profile.cold_start_ms": {"p50_ms": 1.0, "p90_ms": 2.0, "p99_ms": 3.0},
        "profile.cold_start_probability": {"p50_ms": 1.0, "p90_ms": 2.0, "p99_ms": 3.0},
        "target.hourly_usd_per_unit": {"model_units": 1},
        "target.tokens_per_minute_per_unit": {"model_units": 1},
        "target.hourly_usd_per_instance": {"instances": 1},
        "target.requests_per_second_per_instance": {"instances": 1},
        "switcher.primary_weight": {"canary_weight": 0.0},
        "switcher.canary_weight": {"primary_weight": 1.0},
        "headroom.slo_p99_ms": {"throttle_round_trip_ms": 40.0},  # the bet's own SLO
    }.get(key, {})


def config_with(key: str, value: Any) -> tuple[str, str] | None:
    """The TOML text setting ``key`` to ``value``, and the key's dotted path in it."""
    section, name = key.rsplit(".", 1)
    place = PLACES[section]
    if place is None or key == "pricing.hourly_usd":  # the file sets target.hourly_usd*
        return None
    doc = base_doc()
    for sibling, sibling_value in companions(key, value).items():
        place(doc, sibling, sibling_value)
    if key == "budget_guard.pace":
        path = place(doc, name, [value] + [1.0] * 23)
    else:
        path = place(doc, name, value)
    return to_toml(doc), ".".join(path)


def constructor(key: str) -> Callable[[Any], object] | None:
    """Builds the settings object ``key`` belongs to with a value for it; ``None`` when the
    setting exists only in config files (it is checked there)."""
    section, name = key.rsplit(".", 1)
    config_only = key in {"budget_guard.slo_p99_ms", "headroom.slo_p99_ms"} or section == "target"
    if config_only and key != "target.ops_score":
        return None
    profile = {"p50_ms": 1.0, "p90_ms": 2.0, "p99_ms": 3.0}
    factories: dict[str, Callable[..., object]] = {
        "router": WindowSettings,
        "breaker": BreakerPolicy,
        "shared": lambda **kw: SharedSettings(url="redis://localhost", deployment="d", **kw),
        "profile": lambda **kw: LatencyProfile(**{**profile, **kw}),
        "pricing": Pricing,
        "capacity": Capacity,
        "target": lambda **kw: Target(
            "a", Pattern.BEDROCK_ON_DEMAND, "m", "r", LatencyProfile(1, 2, 3), **kw
        ),
        "switcher": lambda **kw: SwitcherSettings(primary="a", order=("a",), **kw),
        "headroom": Headroom,
        "latency_ceiling": LatencyCeiling,
        "reliable": Reliable,
        "schedule": lambda **kw: Schedule(hours={}, **kw),
        "prediction": LatencyPredictor,
        "score": WeightedScore,
        "score.weights": lambda **kw: WeightedScore(weights=ScoreWeights(**{"latency": 1.0, **kw})),
        "cost": CheapestWithinSlo,
        "cost_under_slo": CostUnderSlo,
        "weighted": lambda weight: Weighted({"a": weight, "b": 1.0}),
        "spillover": Spillover,
        "canary": lambda **kw: Canary("b", **kw),
        "budget_guard": lambda **kw: BudgetGuard(**{"daily_usd": 1.0, **kw}),
        "invoke": InvokeSettings,
        "hedge": HedgePolicy,
        "retry": RetryPolicy,
    }
    factory = factories[section]
    if key == "budget_guard.pace":
        return lambda value: BudgetGuard(daily_usd=1.0, pace=(value,) + (1.0,) * 23)
    if key == "headroom.throttle_round_trip_ms":
        return lambda value: ThrottleBet(Headroom(), value)
    return lambda value: factory(**{name: value, **companions(key, value)})


def inside(limit: Range) -> st.SearchStrategy[Any]:
    if limit.integer:
        return st.integers(int(limit.low), int(limit.high))
    return st.floats(limit.low, limit.high, exclude_min=limit.low_open, exclude_max=limit.high_open)


def outside(limit: Range) -> st.SearchStrategy[Any]:
    if limit.integer:
        return st.one_of(
            st.integers(-(2**63), int(limit.low) - 1),
            st.integers(int(limit.high) + 1, 2**63 - 1),
            st.sampled_from([limit.low + 0.5, math.nan, math.inf]),
        )
    return st.one_of(
        st.floats(max_value=limit.low, exclude_max=not limit.low_open, allow_infinity=False),
        st.floats(min_value=limit.high, exclude_min=not limit.high_open, allow_infinity=False),
        st.sampled_from([math.nan, math.inf, -math.inf]),
    )


KEYS = sorted(LIMITS)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(KEYS).flatmap(lambda key: st.tuples(st.just(key), outside(LIMITS[key]))))
def test_a_value_out_of_range_is_rejected_naming_the_key(case: tuple[str, Any]) -> None:
    key, value = case
    name = key.rsplit(".", 1)[1]
    placed = config_with(key, value)
    if placed is not None:
        text, path = placed
        with pytest.raises(ConfigError) as info:
            parse_config(text, source="r.toml")
        message = str(info.value)
        assert message.startswith(f"r.toml: [{path}] expected "), message
        assert LIMITS[key].describe() in message
    make = constructor(key)
    if key == "target.ops_score" and value == -1.0:
        make = None  # Target(ops_score=-1) documents "the pattern's default"; files reject -1
    if make is not None:
        with pytest.raises(ValueError, match=rf"^(weights\.a|{name}) expected "):
            make(value)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(KEYS).flatmap(lambda key: st.tuples(st.just(key), inside(LIMITS[key]))))
def test_a_value_in_range_is_accepted(case: tuple[str, Any]) -> None:
    key, value = case
    placed = config_with(key, value)
    if placed is not None:
        config = parse_config(placed[0], source="r.toml")
        assert config.source == "r.toml"
    make = constructor(key)
    if make is not None:
        make(value)


def test_every_setting_is_checked_somewhere() -> None:
    unchecked = [key for key in LIMITS if config_with(key, 1) is None and constructor(key) is None]
    assert unchecked == []


def test_every_range_is_in_the_docs_table() -> None:
    text = (Path(__file__).parent.parent / "docs" / "limits.md").read_text("utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert rows == [f"| `{key}` | {limit.describe()} |" for key, limit in LIMITS.items()]
    assert f"at most {MAX_WINDOW_BUCKETS:,} buckets" in text


# -- the reproductions --------------------------------------------------------------


def check(tmp_path: Path, text: str) -> tuple[int, str]:
    """``mangaroute config check`` on ``text``: exit code and what it printed to stderr."""
    path = tmp_path / "mangaassist.toml"
    path.write_text(text)
    err = io.StringIO()
    with redirect_stderr(err):
        code = main(["config", "check", str(path)], out=io.StringIO())
    return code, err.getvalue().replace(str(tmp_path) + "/", "")


@pytest.mark.parametrize(
    ("section", "settings_", "message"),
    [
        (
            "router",
            {"window_s": 1e300},
            "[router.window_s] expected a number <= 86,400, got 1e+300: "
            "must be between 0.02 and 86,400 seconds",
        ),
        (
            "router",
            {"window_s": 1e6, "bucket_s": 0.001},
            "[router.window_s] expected a number <= 86,400, got 1000000.0",
        ),
        (
            "router",
            {"window_s": 86_400.0, "bucket_s": 0.01},
            "[router.bucket_s] = 0.01 cuts window_s = 86400 into 8640000 buckets: at most 3600",
        ),
        (
            "breaker",
            {"cooldown_s": 1e300, "max_cooldown_s": 1e300},
            "[breaker.cooldown_s] expected a number <= 86,400, got 1e+300",
        ),
        (
            "router",
            {"refresh_ms": math.nan},
            "[router.refresh_ms] expected a finite number, got nan",
        ),
    ],
)
def test_config_check_rejects_what_exhausted_memory_or_overflowed(
    tmp_path: Path, section: str, settings_: dict[str, float], message: str
) -> None:
    doc = base_doc()
    doc[section] = settings_
    code, err = check(tmp_path, to_toml(doc))
    assert code == 2
    assert err == f"mangaroute: error: mangaassist.toml: {message}" + err.split(message, 1)[1]


def test_a_router_at_the_bucket_limit_stays_small() -> None:
    """The largest window allowed, allocated up front for the shipped config's 4 targets:
    about 4.4 MB (measured), asserted with a generous margin. The issue's 1e6 s window of
    1 ms buckets took 2.6 GB before it was rejected."""
    config = dataclasses.replace(
        load_default_config(), window=WindowSettings(window_s=3600.0, bucket_s=1.0)
    )
    tracemalloc.start()
    try:
        router = Router(config)
        allocated, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert router.config.window.buckets == MAX_WINDOW_BUCKETS
    assert allocated < 16_000_000


def test_the_readme_error_example_is_what_config_check_says() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text("utf-8")
    doc = base_doc()
    doc["targets"]["ondemand-haiku"] = doc["targets"].pop("a") | {"tokens_per_minute": -5}
    doc["classes"]["chat"]["targets"] = ["ondemand-haiku", "b"]
    with pytest.raises(ConfigError) as info:
        parse_config(to_toml(doc), source="router.toml")
    assert f"`{info.value}`" in " ".join(readme.split())


def test_window_bucket_count_is_bounded_for_python_users_too() -> None:
    with pytest.raises(ValueError, match="at most 3600"):
        WindowSettings(window_s=3600.0, bucket_s=0.5)
    assert WindowSettings(window_s=3600.0, bucket_s=1.0).buckets == MAX_WINDOW_BUCKETS


@pytest.mark.parametrize("bad", [math.inf, math.nan, -1.0, 0.0, "60", 1e300])
def test_invoke_settings_reject_an_eject_cooldown_that_cannot_be_slept(bad: Any) -> None:
    with pytest.raises(ValueError, match=r"^eject_cooldown_s expected "):
        InvokeSettings(eject_cooldown_s=bad)


def test_toml_nested_100000_deep_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    depth = 100_000
    code, err = check(tmp_path, "x = " + "[" * depth + "]" * depth + "\n")
    assert code == 2
    assert err == (
        "mangaroute: error: mangaassist.toml is not usable TOML: arrays or inline tables are "
        "nested too deeply to read (a config needs a few levels)\n"
    )


def test_config_check_in_its_own_process_exits_2_without_a_traceback(tmp_path: Path) -> None:
    deep = tmp_path / "deep.toml"
    deep.write_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    huge = tmp_path / "huge.toml"
    huge.write_text(to_toml(base_doc() | {"router": {"window_s": 1e6, "bucket_s": 0.001}}))
    for path, message in ((deep, "nested too deeply"), (huge, "[router.window_s] expected")):
        result = subprocess.run(
            [sys.executable, "-m", "mangaroute", "config", "check", str(path)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert (result.returncode, result.stdout) == (2, "")
        assert result.stderr.startswith(f"mangaroute: error: {path}")
        assert message in result.stderr and "Traceback" not in result.stderr


def test_a_class_naming_a_target_twice_is_rejected() -> None:
    doc = base_doc()
    doc["classes"]["chat"]["targets"] = ["a", "b", "a"]
    with pytest.raises(ConfigError) as info:
        parse_config(to_toml(doc), source="r.toml")
    assert str(info.value) == (
        "r.toml: [classes.chat.targets] names 'a' more than once (each target once, in order "
        "of preference)"
    )
    with pytest.raises(ValueError, match="lists target 'a' twice"):
        RequestClass("chat", ("a", "b", "a"), "p")


def test_a_weighted_split_with_only_zero_weights_is_rejected() -> None:
    doc = base_doc()
    doc["policies"]["p"] = {"picker": "weighted", "weighted": {"weights": {"a": 0, "b": 0.0}}}
    with pytest.raises(ConfigError) as info:
        parse_config(to_toml(doc), source="r.toml")
    assert str(info.value).startswith(
        "r.toml: [policies.p.weighted.weights] must give at least one target a weight > 0, "
        "got {'a': 0.0, 'b': 0.0} (a split with nothing to split would send every call to the "
        "top-ranked target)"
    )
    for nothing in ({"a": 0.0, "b": 0.0}, {}):
        with pytest.raises(ValueError, match=r"^weights must give at least one target"):
            Weighted(nothing)


def test_a_huge_bad_value_is_quoted_in_64_characters() -> None:
    """A multi-kilobyte bad value (a string where a number belongs) is echoed cut, with its
    length, so an error message never grows with the input."""
    huge = "x" * 20_000
    reason = LIMITS["router.window_s"].violation(huge)
    assert reason is not None
    assert "(20000 characters)" in reason
    assert len(reason) < 300


DEEP = "x = " + "[" * 100_000 + "]" * 100_000 + "\n"


def test_a_scenario_nested_100000_deep_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "deep-day.toml"
    path.write_text(DEEP)
    with pytest.raises(ConfigError, match="nested too deeply to read") as caught:
        load_scenario(str(path))
    assert str(path) in str(caught.value)


def test_a_planning_profile_or_flag_nested_100000_deep_is_a_planning_error(
    tmp_path: Path,
) -> None:
    path = tmp_path / "deep-profile.toml"
    path.write_text(DEEP)
    with pytest.raises(PlanningInputError, match="nested too deeply to read") as caught:
        load_profile(path)
    assert str(path) in str(caught.value)
    with pytest.raises(PlanningInputError, match=r"--set.*nested too deeply to read"):
        parse_assignment("traffic.daily_messages=" + "[" * 100_000 + "]" * 100_000)
