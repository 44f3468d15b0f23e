"""The Router's public members and their parameters are pinned.

``Router`` is a facade whose methods live in three classes (the data plane in
``core/router.py``, ``ControlPlane``, ``RebuildSchedule``); moving a method between them
must not change what a caller can call, or how.
"""

from __future__ import annotations

import inspect

from mangaroute import Router

_DECISION_ARGS = (
    "request_class=None, *, session_id=None, budget_ms=None, input_tokens=0, output_tokens=0"
)

EXPECTED = {
    "__init__": "config, *, clock=monotonic_ns, rng=None, observer=None, wall_clock=time",
    "default": "classmethod: *, clock=monotonic_ns, rng=None",
    "choose": f"{_DECISION_ARGS}, first_token=False",
    "call": f"{_DECISION_ARGS}, classify=classify_exception",
    "record": (
        "decision, outcome=<Outcome.OK: 'ok'>, *, latency_ms, ttft_ms=None, input_tokens=0, "
        "output_tokens=0, error_code=None, cache_read_tokens=0, cache_write_tokens=0"
    ),
    "release": "decision",
    "pending": "decision_id",
    "dropped": "decision_id",
    "eject": "target, reason, cooldown_s=None, *, by=None",
    "restore": "target, reason, *, by='operator'",
    "pin_primary": "target, reason, duration_s, *, by='operator'",
    "unpin_primary": "reason, *, by='operator'",
    "reconfigure": "config",
    "reject_reload": "source, reason",
    "refresh": "",
    "snapshot": "",
    "on_change": "wake",
    "subscribe": "listener",
    "switch_history": "",
    "unix_time": "now_ns=None",
    "local_sample": "",
    "apply_fleet": "view",
    "settle_switch": "proposed, won, primary, epoch",
    "clock": "property",
    "config": "property",
    "current_snapshot": "property",
    "fleet": "property",
    "primary": "property",
    "rebuild_due_ns": "property",
    "rebuilds": "property",
    "request_classes": "property",
    "targets": "property",
}


def _default(value: object) -> str:
    name = getattr(value, "__name__", None)
    return name if callable(value) and name else repr(value)


def _shape(name: str) -> str:
    member = inspect.getattr_static(Router, name)
    if isinstance(member, property):
        return "property"
    prefix = "classmethod: " if isinstance(member, classmethod) else ""
    parameters = list(inspect.signature(getattr(Router, name)).parameters.values())
    if not prefix:
        parameters = parameters[1:]  # self
    parts: list[str] = []
    star = False
    for parameter in parameters:
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and not star:
            parts.append("*")
            star = True
        text = parameter.name
        if parameter.default is not inspect.Parameter.empty:
            text += f"={_default(parameter.default)}"
        parts.append(text)
    return prefix + ", ".join(parts)


def test_the_public_members_and_their_parameters_are_pinned() -> None:
    public = {name for name in dir(Router) if not name.startswith("_")} | {"__init__"}
    assert public == set(EXPECTED)
    assert {name: _shape(name) for name in EXPECTED} == EXPECTED


def test_the_operators_actions_say_what_they_raise() -> None:
    # help(Router.eject) and the others stay useful although the full rules live in Admin
    for method in (Router.eject, Router.restore, Router.pin_primary):
        assert "InvalidRequest" in (method.__doc__ or ""), method.__name__
        assert "UnknownTarget" in (method.__doc__ or ""), method.__name__
    for method in (Router.pin_primary, Router.unpin_primary):
        assert "NoSwitcher" in (method.__doc__ or ""), method.__name__
    for name in EXPECTED:
        member = inspect.getattr_static(Router, name)
        if name not in {"targets", "request_classes", "primary"}:  # no docstring before either
            assert inspect.getdoc(member), name
