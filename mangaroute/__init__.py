"""mangaroute: route every foundation-model call to the best AWS deployment target.

Quick use::

    from mangaroute import Router

    router = Router.default()                 # the shipped MangaAssist config
    decision = router.choose("simple", budget_ms=1500)
    ...                                       # call decision.target.model_id
    router.record(decision, "ok", latency_ms=640.0, input_tokens=512, output_tokens=280)

Code that hands a boto3 client or session to a framework routes with one changed line::

    bedrock = mangaroute.bedrock_runtime(router)       # instead of boto3.client(...)
    session = mangaroute.routed_session(router)        # instead of boto3.Session()
    with mangaroute.context(session_id="user-42", budget_ms=1500): ...
"""

import logging
from typing import TYPE_CHECKING, Any

from mangaroute.config import default_config_text, load_config, load_default_config, parse_config
from mangaroute.core.breaker import BreakerPolicy, BreakerState
from mangaroute.core.call import RoutedCall
from mangaroute.core.clock import Clock, FakeClock, monotonic_clock
from mangaroute.core.decision import Decision
from mangaroute.core.errors import (
    ConfigError,
    InvalidObservation,
    InvalidRequest,
    MangarouteError,
    NoSwitcher,
    UnknownRequestClass,
    UnknownTarget,
)
from mangaroute.core.observation import Observation
from mangaroute.core.outcome import Outcome, classify_exception
from mangaroute.core.router import Router, set_default_config
from mangaroute.core.settings import RequestClass, RouterConfig, WindowSettings
from mangaroute.core.snapshot import (
    AdminEvent,
    BreakerEvent,
    Pin,
    ReloadEvent,
    RouterEvent,
    Snapshot,
    SwitchEvent,
    TargetView,
)
from mangaroute.core.targets import (
    SEED_PROFILES,
    Capacity,
    LatencyProfile,
    Pattern,
    Pricing,
    Target,
)

if TYPE_CHECKING:
    from mangaroute.dropin import bedrock_runtime, context, routed_session

__version__ = "0.1.0"

_DROPIN = frozenset({"bedrock_runtime", "context", "routed_session"})


def __getattr__(name: str) -> Any:
    """The drop-in names import boto3, which ``import mangaroute`` does not: load them on
    first use."""
    if name in _DROPIN:
        from mangaroute import dropin  # noqa: PLC0415

        return getattr(dropin, name)
    raise AttributeError(f"module 'mangaroute' has no attribute {name!r}")


logging.getLogger("mangaroute").addHandler(logging.NullHandler())
set_default_config(load_default_config)  # Router.default(): core never imports the config layer

__all__ = [
    "SEED_PROFILES",
    "AdminEvent",
    "BreakerEvent",
    "BreakerPolicy",
    "BreakerState",
    "Capacity",
    "Clock",
    "ConfigError",
    "Decision",
    "FakeClock",
    "InvalidObservation",
    "InvalidRequest",
    "LatencyProfile",
    "MangarouteError",
    "NoSwitcher",
    "Observation",
    "Outcome",
    "Pattern",
    "Pin",
    "Pricing",
    "ReloadEvent",
    "RequestClass",
    "RoutedCall",
    "Router",
    "RouterConfig",
    "RouterEvent",
    "Snapshot",
    "SwitchEvent",
    "Target",
    "TargetView",
    "UnknownRequestClass",
    "UnknownTarget",
    "WindowSettings",
    "__version__",
    "bedrock_runtime",
    "classify_exception",
    "context",
    "default_config_text",
    "load_config",
    "load_default_config",
    "monotonic_clock",
    "parse_config",
    "routed_session",
]
