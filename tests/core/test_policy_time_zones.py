"""IANA time zones for schedules and the budget guard: the local hour and the start of the
budget's day follow daylight saving time; ``utc_offset_hours`` keeps working; bad keys are
named."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mangaroute import ConfigError, FakeClock, Router, parse_config
from mangaroute.core.limits import RangeError
from mangaroute.core.policy import BudgetGuard, PolicyContext, Schedule, SpendLedger
from mangaroute.core.policy.zone import LocalZone, local_zone

from .test_policy_context import CONFIG, START_NS


def utc(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()  # type: ignore[misc]


NEW_YORK_SPRING = utc(2025, 3, 9, 7)  # 02:00 EST -> 03:00 EDT
NEW_YORK_FALL = utc(2025, 11, 2, 6)  # 02:00 EDT -> 01:00 EST
LORD_HOWE_FALL = utc(2025, 4, 5, 15)  # 02:00 +11 -> 01:30 +10:30 (a half-hour shift)
TRANSITIONS = [
    ("America/New_York", NEW_YORK_SPRING),
    ("America/New_York", NEW_YORK_FALL),
    ("Europe/London", utc(2025, 3, 30, 1)),
    ("Europe/London", utc(2025, 10, 26, 1)),
    ("Australia/Lord_Howe", LORD_HOWE_FALL),
    ("America/Santiago", utc(2025, 9, 7, 4)),  # 00:00 -> 01:00: that midnight never happens
]


def reference(zone_name: str, unix_s: float) -> tuple[float, float]:
    """Wall-clock seconds of day and the start of the local day, straight from zoneinfo."""
    zone = ZoneInfo(zone_name)
    whole = math.floor(unix_s)  # fromtimestamp would round to the microsecond: maybe across
    local = datetime.fromtimestamp(whole, zone)
    wall = local.hour * 3600 + local.minute * 60 + local.second + (unix_s - whole)
    midnight = datetime(local.year, local.month, local.day, tzinfo=zone).timestamp()
    return wall, midnight


def test_new_york_across_both_transitions() -> None:
    zone = local_zone("America/New_York", None)
    # noon on the day clocks spring forward: 12:00 on the wall, 11 h since midnight (EST)
    wall, midnight = zone.at(utc(2025, 3, 9, 16))
    assert wall == 12 * 3600 and midnight == utc(2025, 3, 9, 5)
    # noon on the day they fall back: 13 h since midnight (EDT)
    wall, midnight = zone.at(utc(2025, 11, 2, 17))
    assert wall == 12 * 3600 and midnight == utc(2025, 11, 2, 4)
    # the hour that happens twice: 01:30 EDT, then 01:30 EST an hour later
    assert zone.at(NEW_YORK_FALL - 1800)[0] == zone.at(NEW_YORK_FALL + 1800)[0] == 5400


def test_a_fixed_offset_and_tokyo_agree_everywhere() -> None:
    tokyo, fixed = local_zone("Asia/Tokyo", None), local_zone(None, 9.0)
    assert local_zone(None, None) is fixed  # JST when nothing is given
    for unix_s in (utc(2025, 1, 15, 9, 30), utc(2025, 7, 1, 14, 59), NEW_YORK_SPRING):
        assert tokyo.at(unix_s) == fixed.at(unix_s)


@given(
    transition=st.sampled_from(TRANSITIONS),
    steps=st.lists(st.floats(-2 * 86_400, 2 * 86_400, allow_nan=False), min_size=1),
)
def test_local_time_matches_zoneinfo_around_transitions(
    transition: tuple[str, float], steps: list[float]
) -> None:
    """One zone object queried in time order (as rebuilds do) - the quarter-hour cache hit and
    missed - always answers what zoneinfo computes from scratch."""
    name, at = transition
    zone = LocalZone(name, zone=ZoneInfo(name))
    for step in sorted(steps):
        wall, midnight = zone.at(at + step)
        expected_wall, expected_midnight = reference(name, at + step)
        assert wall == pytest.approx(expected_wall, abs=1e-6)
        assert midnight == expected_midnight


@given(
    name=st.sampled_from(["America/New_York", "Europe/Berlin", "Asia/Kathmandu", "Asia/Tokyo"]),
    unix_s=st.floats(utc(2000, 1, 1), utc(2037, 1, 1), allow_nan=False),
)
def test_local_time_matches_zoneinfo_on_any_day(name: str, unix_s: float) -> None:
    wall, midnight = local_zone(name, None).at(unix_s)
    expected_wall, expected_midnight = reference(name, unix_s)
    assert wall == pytest.approx(expected_wall, abs=1e-6)
    assert midnight == expected_midnight


def test_a_schedule_in_new_york_follows_daylight_saving_time() -> None:
    hours = {"day": ((8.0, 20.0),)}
    zoned = Schedule(hours, time_zone="America/New_York")
    fixed = Schedule(hours, utc_offset_hours=-5.0)  # EST all year: an hour off in summer
    summer_0730_edt = PolicyContext(0, utc(2025, 7, 1, 11, 30), SpendLedger())
    view_excluded = zoned.bind(summer_0730_edt).local_s
    assert view_excluded == 7.5 * 3600
    assert fixed.bind(summer_0730_edt).local_s == 6.5 * 3600
    after_spring = PolicyContext(0, utc(2025, 3, 9, 12), SpendLedger())  # 08:00 EDT
    assert zoned.bind(after_spring).local_s == 8 * 3600
    assert fixed.bind(after_spring).local_s == 7 * 3600


def test_the_budget_day_starts_at_local_midnight_on_a_transition_day() -> None:
    """On the day New York springs forward the day began at 05:00 UTC (midnight EST); a
    fixed -4 would start it at 04:00 UTC and count the evening before as today's spend."""
    ledger = SpendLedger()
    ledger.observe(utc(2025, 3, 9, 3, 50), 0.0)
    ledger.observe(utc(2025, 3, 9, 4, 10), 600.0)  # spent the evening before (EST)
    ledger.observe(utc(2025, 3, 9, 5, 10), 610.0)
    ledger.observe(utc(2025, 3, 9, 16), 620.0)  # noon EDT
    now = PolicyContext(0, utc(2025, 3, 9, 16), ledger)
    zoned = BudgetGuard(daily_usd=1000.0, time_zone="America/New_York")
    assert zoned.zone.at(now.unix_s) == (12 * 3600, utc(2025, 3, 9, 5))
    assert zoned.bind(now).ahead == 0.0  # $20 today against $500 of pace
    fixed = BudgetGuard(daily_usd=1000.0, utc_offset_hours=-4.0)
    assert fixed.bind(now).ahead == pytest.approx(620.0 / 500.0 - 1.0)


def test_time_zone_and_offset_are_exclusive_and_unknown_zones_are_named() -> None:
    with pytest.raises(RangeError) as both:
        Schedule({}, utc_offset_hours=9.0, time_zone="Asia/Tokyo")
    assert both.value.field == "utc_offset_hours"
    assert "utc_offset_hours = 9 cannot be given together with time_zone = 'Asia/Tokyo'" in str(
        both.value
    )
    with pytest.raises(RangeError) as unknown:
        BudgetGuard(daily_usd=1.0, time_zone="Mars/Olympus_Mons")
    assert unknown.value.field == "time_zone"
    assert "'Mars/Olympus_Mons' is not an IANA time zone" in str(unknown.value)
    with pytest.raises(RangeError, match=r"time_zone '\.\./etc/passwd' is not an IANA"):
        Schedule({}, time_zone="../etc/passwd")


ZONED = CONFIG.replace(
    "[policies.guarded.schedule.hours]",
    '[policies.guarded.schedule]\ntime_zone = "America/New_York"\n'
    "[policies.guarded.schedule.hours]",
).replace("daily_usd = 10.0", 'daily_usd = 10.0\ntime_zone = "America/New_York"')


def test_config_takes_time_zone_and_names_the_key_at_fault() -> None:
    policy = parse_config(ZONED, source="zoned.toml").policies["guarded"]
    assert isinstance(policy.filters[1], Schedule)
    assert policy.filters[1].time_zone == "America/New_York"
    assert isinstance(policy.picker, BudgetGuard)
    assert policy.picker.zone.name == "America/New_York"

    bad = ZONED.replace('daily_usd = 10.0\ntime_zone = "America/New_York"', (
        'daily_usd = 10.0\ntime_zone = "America/Springfield"'
    ))  # fmt: skip
    with pytest.raises(ConfigError) as unknown:
        parse_config(bad, source="zoned.toml")
    message = str(unknown.value)
    assert "zoned.toml" in message and "policies.guarded.budget_guard.time_zone" in message
    assert "'America/Springfield'" in message

    both = ZONED.replace('time_zone = "America/New_York"\n[', 'time_zone = "America/New_York"\n'
                         "utc_offset_hours = -5\n[", 1)  # fmt: skip
    with pytest.raises(ConfigError) as exclusive:
        parse_config(both, source="zoned.toml")
    assert "policies.guarded.schedule.utc_offset_hours" in str(exclusive.value)
    assert "= -5 cannot be given together with time_zone" in str(exclusive.value)


def test_a_router_follows_the_zone_across_the_spring_transition() -> None:
    """``pt`` takes traffic 18:00-24:00 New York time; 22:59 UTC is 17:59 EST on 8 March and
    18:59 EDT on 9 March."""
    zoned = ZONED.replace("daily_usd = 10.0", "daily_usd = 1000000.0")
    for day, expected in ((8, "sonnet"), (9, "pt")):
        router = Router(
            parse_config(zoned, source="zoned.toml"),
            clock=FakeClock(START_NS),
            rng=random.Random(1),
            wall_clock=lambda day=day: utc(2025, 3, day, 22, 59),
        )
        assert router.choose("chat").target.name == expected
