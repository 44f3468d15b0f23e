"""Operators' actions on a router: eject and restore a target, pin and unpin the primary.

:class:`Admin` checks an action's arguments (a bad one raises :class:`InvalidRequest`,
:class:`UnknownTarget` or :class:`NoSwitcher` and changes nothing), moves the breaker or the
switcher's pin through the :class:`~mangaroute.core.builder.SnapshotBuilder` that owns them,
and makes the :class:`~mangaroute.core.snapshot.AdminEvent` the router publishes. The router
rebuilds at once after each, so the caller sees the effect when the call returns.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from mangaroute.core.builder import SnapshotBuilder
from mangaroute.core.clock import NS_PER_S, Clock
from mangaroute.core.errors import InvalidRequest, NoSwitcher, UnknownTarget, echo
from mangaroute.core.limits import LIMITS
from mangaroute.core.policy.switcher import PrimarySwitcher
from mangaroute.core.snapshot import AdminEvent, Pin, RouterEvent, operator_reason
from mangaroute.core.stats import TargetStats

__all__ = ["ADMIN_TEXT_CHARS", "Admin"]

ADMIN_TEXT_CHARS = 200
"""The longest reason or ``by`` an admin action takes (they go into logs and snapshots)."""
_EJECT_COOLDOWN = LIMITS["invoke.eject_cooldown_s"]
_NUMBER = (int, float)

Rebuild = Callable[[int, Sequence[RouterEvent]], object]
"""Rebuild at the given router-clock instant, publishing the events first (lock held)."""


class Admin:
    """The operators' actions of one router (see the module docstring)."""

    __slots__ = ("_builder", "_clock", "_lock", "_moved", "_rebuild")

    def __init__(
        self,
        builder: SnapshotBuilder,
        clock: Clock,
        lock: threading.Lock,
        rebuild: Rebuild,
        moved: Callable[[list[RouterEvent]], None],
    ) -> None:
        """``rebuild`` runs under ``lock`` (the router's rebuild lock); ``moved`` is what
        the router does when a breaker moved on its own judgement (rebuild soon, publish)."""
        self._builder = builder
        self._clock = clock
        self._lock = lock
        self._rebuild = rebuild
        self._moved = moved

    def eject(
        self, target: str, reason: str, cooldown_s: float | None, by: str | None
    ) -> AdminEvent | None:
        """Open a target's breaker now (:meth:`Router.eject
        <mangaroute.core.router.Router.eject>`).

        ``cooldown_s``: how long it stays open, from 0.001 s to 604,800 s (a week, the
        range of ``InvokeSettings.eject_cooldown_s``); ``None`` takes the breaker's own
        doubling cool-down. Then the breaker half-opens and probes decide, as after any
        ejection.

        ``by`` makes it an *operator's* eject (who asked: a name, ``uid 1000``, a
        certificate subject): ``reason`` must then be non-empty and ``cooldown_s`` given
        (its time limit, exactly - an open breaker's longer cool-down is cut to it), the
        breaker's reason reads ``operator(<by>): <reason>``, the snapshot shows until when,
        and an :class:`AdminEvent` is published, logged at WARNING and returned. Without
        ``by`` (the failover rules) it is the router's own judgement and returns ``None``.
        Bad arguments raise :class:`InvalidRequest` or :class:`UnknownTarget` and change
        nothing."""
        if by is not None:
            reason = _admin_text("reason", reason)
            by = _admin_text("by", by)
            if cooldown_s is None:
                raise InvalidRequest(
                    f"an operator's eject needs a time limit: cooldown_s must be "
                    f"{_EJECT_COOLDOWN.describe()}"
                )
        if cooldown_s is not None:
            _check_duration("cooldown_s", cooldown_s)
        if not isinstance(reason, str):
            raise InvalidRequest(f"reason must be a string, got {echo(reason)}")
        state = self._state(target)
        now = self._clock()
        breaker_reason = reason if by is None else operator_reason(by, reason)
        unix = self._builder.wall_offset
        with state.lock:
            was = state.breaker.state
            changed = state.breaker.force_open(
                now, breaker_reason, cooldown_s, exact=by is not None
            )
            event = state.breaker_event(was, now, unix) if changed else None
        if by is None:
            if event is not None:
                self._moved([event])
            return None
        assert cooldown_s is not None  # checked above
        admin = self._event("eject", target, reason, by, now, cooldown_s, changed=True)
        self._rebuild_now(now, [admin] if event is None else [admin, event])
        return admin

    def restore(self, target: str, reason: str, by: str) -> AdminEvent:
        """An operator's restore (:meth:`Router.restore
        <mangaroute.core.router.Router.restore>`): close ``target``'s breaker now (open or
        half-open: its cool-down and probes are skipped), so it takes traffic again at once.
        Its ejection count is kept (a target that fails again soon is ejected for longer).
        Returns the published :class:`AdminEvent`; its ``changed`` is ``False`` when the
        breaker was closed already. With shared state, ejections other replicas hold stay
        until they end there. Publishes the :class:`AdminEvent` (and the breaker's move)."""
        reason = _admin_text("reason", reason)
        by = _admin_text("by", by)
        state = self._state(target)
        now = self._clock()
        with state.lock:
            was = state.breaker.state
            changed = state.breaker.force_close(now, operator_reason(by, reason))
            event = state.breaker_event(was, now, self._builder.wall_offset) if changed else None
        admin = self._event("restore", target, reason, by, now, None, changed=changed)
        self._rebuild_now(now, [admin] if event is None else [admin, event])
        return admin

    def pin(self, target: str, reason: str, duration_s: float, by: str) -> AdminEvent:
        """An operator's pin (:meth:`Router.pin_primary
        <mangaroute.core.router.Router.pin_primary>`): make ``target`` the primary now and
        hold it there for ``duration_s`` (0.001 s to a week): no automatic switch away while
        the pin holds, however the target degrades (its breaker still opens, and calls still
        fail over to the fallbacks). At its time limit the pin lapses (an ``AdminEvent``
        with action ``pin_lapsed``) and the switcher judges again. A new pin replaces the
        old one. The snapshot shows the pin (``Snapshot.pin``). Returns the published
        :class:`AdminEvent`. Needs a ``[switcher]`` in the config (:class:`NoSwitcher`, an
        :class:`InvalidRequest`, otherwise)."""
        reason = _admin_text("reason", reason)
        by = _admin_text("by", by)
        _check_duration("duration_s", duration_s)
        self._state(target)
        now = self._clock()
        with self._lock:
            switcher = self._pinnable()
            until_ns = now + round(duration_s * NS_PER_S)
            switcher.pin(Pin(target, reason, by, until_ns, self._builder.unix(until_ns)))
            admin = self._event("pin", target, reason, by, now, duration_s, changed=True)
            self._rebuild(now, [admin])
        return admin

    def unpin(self, reason: str, by: str) -> AdminEvent:
        """End an operator's pin now (:meth:`Router.unpin_primary
        <mangaroute.core.router.Router.unpin_primary>`); the primary stays where it is until
        the switcher judges otherwise. Returns the published :class:`AdminEvent`; its
        ``changed`` is ``False`` when nothing was pinned. :class:`NoSwitcher` without a
        ``[switcher]``."""
        reason = _admin_text("reason", reason)
        by = _admin_text("by", by)
        now = self._clock()
        with self._lock:
            switcher = self._pinnable()
            ended = switcher.unpin()
            target = ended.target if ended is not None else switcher.current
            admin = self._event("unpin", target, reason, by, now, None, changed=ended is not None)
            self._rebuild(now, [admin])
        return admin

    def _state(self, target: str) -> TargetStats:
        states = self._builder.states
        state = states.get(target) if isinstance(target, str) else None
        if state is None:
            raise UnknownTarget(target, tuple(states))
        return state

    def _pinnable(self) -> PrimarySwitcher:
        switcher = self._builder.switcher
        if switcher is None:
            raise NoSwitcher(
                f"{self._builder.config.source} has no [switcher]: there is no primary to pin "
                "or unpin"
            )
        return switcher

    def _event(
        self,
        action: str,
        target: str,
        reason: str,
        by: str,
        now: int,
        duration_s: float | None,
        *,
        changed: bool,
    ) -> AdminEvent:
        unix = self._builder.unix(now)
        until = None if duration_s is None else unix + duration_s
        return AdminEvent(action, target, reason, by, until, changed, now, unix)

    def _rebuild_now(self, now: int, first: Sequence[RouterEvent]) -> None:
        """Rebuild at once, publishing ``first`` before the rebuild's own events."""
        with self._lock:
            self._rebuild(max(now, self._clock()), first)


def _admin_text(name: str, value: object) -> str:
    """An admin action's ``reason`` or ``by``: a non-empty string of at most
    :data:`ADMIN_TEXT_CHARS` characters, stripped."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"{name} must be a non-empty string, got {echo(value)}")
    text = value.strip()
    if len(text) > ADMIN_TEXT_CHARS:
        raise InvalidRequest(
            f"{name} must be at most {ADMIN_TEXT_CHARS} characters, got {len(text)}"
        )
    return text


def _check_duration(name: str, value: object) -> None:
    """A time limit in seconds within :data:`_EJECT_COOLDOWN`'s range (0.001 s to a week)."""
    problem = _EJECT_COOLDOWN.violation(value)
    if problem is not None:
        if type(value) not in _NUMBER:  # the range's message quotes it whole
            problem = f"expected a number, got {echo(value)}: must be {_EJECT_COOLDOWN.describe()}"
        raise InvalidRequest(f"{name} {problem}")
