"""An operator's actions on a router: eject, restore, pin and unpin the primary.

Virtual time throughout (the router's clock is injected), on the shipped MangaAssist config,
whose switcher prefers provisioned-sonnet and fails over to ondemand-haiku first.
"""

from __future__ import annotations

import logging
import random
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mangaroute import FakeClock, Router, load_default_config, parse_config
from mangaroute.core.breaker import BreakerState
from mangaroute.core.errors import InvalidRequest, NoSwitcher, UnknownTarget
from mangaroute.core.snapshot import AdminEvent, RouterEvent, SwitchEvent

from ..conftest import SMALL_CONFIG, START_NS

WALL_START = 1_800_000_000.0
PRIMARY = "provisioned-sonnet"
NEXT = "ondemand-haiku"
SAGEMAKER = "sagemaker-manga"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START_NS)


@pytest.fixture
def router(clock: FakeClock) -> Router:
    return Router(
        load_default_config(), clock=clock, rng=random.Random(3), wall_clock=lambda: WALL_START
    )


@pytest.fixture
def events(router: Router) -> list[RouterEvent]:
    seen: list[RouterEvent] = []
    router.subscribe(seen.append)
    return seen


def _fail(router: Router, target: str, calls: int = 5) -> None:
    for _ in range(calls):
        router.record(target, "error", latency_ms=100.0, error_code="InternalServerException")


def _admin(events: list[RouterEvent]) -> list[AdminEvent]:
    return [e for e in events if isinstance(e, AdminEvent)]


def test_an_operators_eject_is_told_apart_and_lapses_at_its_time_limit(
    router: Router, clock: FakeClock, events: list[RouterEvent], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="mangaroute"):
        returned = router.eject(SAGEMAKER, "endpoint redeploy", 90.0, by="alice")
    view = router.current_snapshot.target(SAGEMAKER)
    assert view.breaker is BreakerState.OPEN
    assert view.breaker_reason == "operator(alice): endpoint redeploy"
    assert view.breaker_until == pytest.approx(WALL_START + 90.0)
    assert view.to_dict()["breaker"]["until"] == pytest.approx(WALL_START + 90.0)
    (admin,) = _admin(events)
    assert returned is admin
    assert (admin.action, admin.target, admin.by, admin.reason) == (
        "eject",
        SAGEMAKER,
        "alice",
        "endpoint redeploy",
    )
    assert admin.until_unix == pytest.approx(WALL_START + 90.0)
    assert "admin: eject sagemaker-manga by alice until unix 1800000090: endpoint redeploy" in (
        caplog.text
    )
    clock.advance(seconds=89.9)
    assert router.snapshot().target(SAGEMAKER).breaker is BreakerState.OPEN
    clock.advance(seconds=0.1)
    lapsed = router.snapshot().target(SAGEMAKER)
    assert lapsed.breaker is BreakerState.HALF_OPEN  # probes decide from here, as usual
    assert lapsed.breaker_until is None


def test_an_automatic_eject_keeps_its_own_reason(router: Router) -> None:
    assert router.eject(SAGEMAKER, "AccessDeniedException", 60.0) is None
    view = router.snapshot().target(SAGEMAKER)
    assert view.breaker_reason == "AccessDeniedException"
    assert not view.breaker_reason.startswith("operator")


def test_an_operators_eject_cuts_a_longer_automatic_cooldown_to_its_limit(
    router: Router, clock: FakeClock
) -> None:
    router.eject(SAGEMAKER, "AccessDeniedException", 600.0)
    router.eject(SAGEMAKER, "fixed the role, retry in a minute", 60.0, by="bob")
    assert router.snapshot().target(SAGEMAKER).breaker_until == pytest.approx(WALL_START + 60)
    clock.advance(seconds=60)
    assert router.snapshot().target(SAGEMAKER).breaker is BreakerState.HALF_OPEN


def test_an_operators_eject_needs_a_reason_and_a_time_limit(router: Router) -> None:
    with pytest.raises(InvalidRequest, match="an operator's eject needs a time limit"):
        router.eject(SAGEMAKER, "why", by="alice")
    with pytest.raises(InvalidRequest, match="reason must be a non-empty string, got '  '"):
        router.eject(SAGEMAKER, "  ", 10.0, by="alice")
    with pytest.raises(InvalidRequest, match=r"cooldown_s .*must be"):
        router.eject(SAGEMAKER, "why", 0.0, by="alice")
    with pytest.raises(UnknownTarget, match="unknown target 'nope'; known targets: provisioned"):
        router.eject("nope", "why", 10.0, by="alice")
    assert router.snapshot().target(SAGEMAKER).breaker is BreakerState.CLOSED


def test_restore_closes_an_open_breaker_now(
    router: Router, clock: FakeClock, events: list[RouterEvent]
) -> None:
    _fail(router, SAGEMAKER)
    assert router.snapshot().target(SAGEMAKER).breaker is BreakerState.OPEN
    clock.advance(seconds=1)
    assert router.restore(SAGEMAKER, "false alarm: upstream blip", by="carol").changed
    view = router.current_snapshot.target(SAGEMAKER)
    assert view.breaker is BreakerState.CLOSED
    assert view.breaker_reason == "operator(carol): false alarm: upstream blip"
    assert view.ejections == 1  # kept: a relapse gets the longer cool-down
    kinds = [(e.kind, getattr(e, "action", None)) for e in events[-2:]]
    assert kinds == [("admin", "restore"), ("breaker", None)]
    decisions = {router.choose("manga").target.name for _ in range(50)}
    assert SAGEMAKER in decisions


def test_restore_of_a_closed_breaker_changes_nothing_and_says_so(
    router: Router, events: list[RouterEvent]
) -> None:
    returned = router.restore(SAGEMAKER, "just in case")
    (admin,) = _admin(events)
    assert returned is admin
    assert admin.changed is False and admin.by == "operator"
    assert "(nothing to change)" in admin.describe()


def test_restore_works_on_a_half_open_breaker(router: Router, clock: FakeClock) -> None:
    router.eject(SAGEMAKER, "deploy", 10.0, by="alice")
    clock.advance(seconds=10)
    assert router.snapshot().target(SAGEMAKER).breaker is BreakerState.HALF_OPEN
    assert router.restore(SAGEMAKER, "deploy done").changed
    assert router.current_snapshot.target(SAGEMAKER).breaker is BreakerState.CLOSED


def test_a_pin_moves_the_primary_and_shows_in_the_snapshot(
    router: Router, events: list[RouterEvent]
) -> None:
    router.pin_primary(NEXT, "provisioned units being resized", 600.0, by="dave")
    snapshot = router.current_snapshot
    assert snapshot.primary == NEXT
    assert snapshot.pin is not None
    assert snapshot.to_dict()["pin"] == {
        "target": NEXT,
        "reason": "provisioned units being resized",
        "by": "dave",
        "until": pytest.approx(WALL_START + 600.0),
    }
    admin, switch = events[-2:]
    assert isinstance(admin, AdminEvent) and admin.action == "pin"
    assert isinstance(switch, SwitchEvent)
    assert (switch.from_target, switch.to_target) == (PRIMARY, NEXT)
    assert switch.reason == "pinned"  # who and why are in the AdminEvent (and the log)
    assert router.switch_history()[-1] == switch


def test_a_pin_survives_a_degradation_that_would_otherwise_switch(
    router: Router, clock: FakeClock
) -> None:
    router.pin_primary(PRIMARY, "hold it", 300.0)
    _fail(router, PRIMARY)  # opens its breaker: "unavailable", a switch without the pin
    snapshot = router.snapshot()
    assert snapshot.target(PRIMARY).breaker is BreakerState.OPEN
    assert snapshot.primary == PRIMARY
    clock.advance(seconds=299)
    assert router.snapshot().primary == PRIMARY


def test_the_pin_lapses_at_its_time_limit_and_the_switcher_judges_again(
    router: Router, clock: FakeClock, events: list[RouterEvent]
) -> None:
    router.pin_primary(PRIMARY, "hold it", 120.0, by="erin")
    router.eject(PRIMARY, "drain", 3600.0, by="erin")
    clock.advance(seconds=119.999)
    assert router.snapshot().primary == PRIMARY
    # the lapse is a due time (not the idle second), within refresh_ms of the rebuild
    refresh_ns = round(router.config.window.refresh_ms * 1_000_000)
    assert refresh_ns < 1_000_000_000
    assert router.rebuild_due_ns <= START_NS + 120 * 1_000_000_000 + refresh_ns
    clock.advance(seconds=0.001)
    snapshot = router.snapshot()
    assert snapshot.pin is None
    assert snapshot.primary == NEXT
    lapsed = [e for e in _admin(events) if e.action == "pin_lapsed"]
    assert [(e.target, e.by, e.reason) for e in lapsed] == [(PRIMARY, "erin", "hold it")]
    assert isinstance(events[-1], SwitchEvent) and events[-1].reason == "unavailable"


def test_unpin_ends_the_pin_and_keeps_the_primary(
    router: Router, events: list[RouterEvent]
) -> None:
    assert not router.unpin_primary("nothing pinned").changed
    router.pin_primary(NEXT, "test", 60.0)
    assert router.unpin_primary("done", by="frank").changed
    assert router.current_snapshot.pin is None
    assert router.current_snapshot.primary == NEXT  # returns after return_after_s of health
    assert [(e.action, e.changed) for e in _admin(events)] == [
        ("unpin", False),
        ("pin", True),
        ("unpin", True),
    ]


def test_pin_refuses_bad_input_and_changes_nothing(router: Router) -> None:
    with pytest.raises(UnknownTarget):
        router.pin_primary("nope", "x", 60.0)
    with pytest.raises(InvalidRequest, match=r"duration_s expected a number, got 'soon'"):
        router.pin_primary(NEXT, "x", "soon")  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest, match=r"by must be at most 200 characters, got 201"):
        router.pin_primary(NEXT, "x", 60.0, by="b" * 201)
    assert router.snapshot().pin is None
    assert router.primary == PRIMARY


def test_pin_needs_a_switcher(clock: FakeClock) -> None:
    router = Router(parse_config(SMALL_CONFIG), clock=clock)
    with pytest.raises(InvalidRequest, match=r"has no \[switcher\]: there is no primary to pin"):
        router.pin_primary("fast", "x", 60.0)


def test_pin_and_unpin_without_a_switcher_raise_no_switcher_and_change_nothing(
    clock: FakeClock,
) -> None:
    router = Router(parse_config(SMALL_CONFIG, source="small.toml"), clock=clock)
    events: list[object] = []
    router.subscribe(events.append)
    built = router.rebuilds
    with pytest.raises(NoSwitcher, match=r"^small\.toml has no \[switcher\]") as pinned:
        router.pin_primary("fast", "x", 60.0)
    assert isinstance(pinned.value, InvalidRequest)  # callers catching InvalidRequest still do
    with pytest.raises(NoSwitcher, match="there is no primary to pin or unpin"):
        router.unpin_primary("x")
    with pytest.raises(InvalidRequest, match="reason must be a non-empty string") as bad:
        router.unpin_primary(" ")  # the request's own fault is named first
    assert not isinstance(bad.value, NoSwitcher)
    assert events == [] and router.rebuilds == built and router.primary is None


def test_a_pin_outlives_a_config_reload(router: Router) -> None:
    router.pin_primary(NEXT, "hold", 600.0)
    router.reconfigure(load_default_config())
    assert router.current_snapshot.pin is not None
    assert router.current_snapshot.primary == NEXT


@settings(max_examples=60, deadline=None)
@given(
    duration_s=st.floats(min_value=0.001, max_value=604_800.0),
    steps=st.lists(st.floats(min_value=0.0, max_value=200_000.0), min_size=1, max_size=6),
)
def test_a_pin_holds_exactly_until_its_limit(duration_s: float, steps: list[float]) -> None:
    clock = FakeClock(START_NS)
    router = Router(load_default_config(), clock=clock, wall_clock=lambda: WALL_START)
    router.pin_primary(NEXT, "prop", duration_s)
    until_ns = START_NS + round(duration_s * 1_000_000_000)
    for step in steps:
        clock.advance(seconds=step)
        snapshot = router.snapshot()
        assert (snapshot.pin is not None) == (clock() < until_ns)
        if snapshot.pin is not None:
            assert snapshot.primary == NEXT


def test_admin_actions_from_many_threads_leave_a_consistent_router(router: Router) -> None:
    """Operators and traffic at once: every action is published once, nothing raises,
    and the final state is what the last actions said."""
    errors: list[BaseException] = []
    seen: list[RouterEvent] = []
    lock = threading.Lock()

    def keep(event: RouterEvent) -> None:
        with lock:
            seen.append(event)

    router.subscribe(keep)
    start = threading.Barrier(4)

    def operator(n: int) -> None:
        try:
            start.wait()
            for i in range(50):
                router.pin_primary(NEXT if i % 2 else PRIMARY, f"op{n}", 60.0, by=f"op{n}")
                router.eject(SAGEMAKER, f"op{n}", 30.0, by=f"op{n}")
                router.restore(SAGEMAKER, f"op{n}", by=f"op{n}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def traffic() -> None:
        try:
            start.wait()
            for _ in range(2000):
                decision = router.choose("manga")
                router.record(decision, "ok", latency_ms=300.0)
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=operator, args=(n,)) for n in range(3)]
    threads.append(threading.Thread(target=traffic))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    admin = [e for e in seen if isinstance(e, AdminEvent)]
    assert len(admin) == 3 * 50 * 3
    assert {e.action for e in admin} == {"pin", "eject", "restore"}
    snapshot = router.snapshot()
    assert snapshot.target(SAGEMAKER).breaker is BreakerState.CLOSED  # each op restored last
    assert snapshot.pin is not None and snapshot.primary == snapshot.pin.target == NEXT
