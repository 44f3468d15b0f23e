"""mangaroute: route every foundation-model call to the best AWS deployment target.

Quick use::

    from mangaroute import Router

    router = Router.default()                 # the shipped MangaAssist config
    decision = router.choose("simple", budget_ms=1500)
    ...                                       # call decision.target.model_id
    router.record(decision, "ok", latency_ms=640.0, input_tokens=512, output_tokens=280)
"""

import logging

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
    UnknownRequestClass,
    UnknownTarget,
)
from mangaroute.core.outcome import Outcome, classify_exception
from mangaroute.core.router import Router
from mangaroute.core.settings import RequestClass, RouterConfig, WindowSettings
from mangaroute.core.snapshot import BreakerEvent, RouterEvent, Snapshot, SwitchEvent, TargetView
from mangaroute.core.targets import (
    SEED_PROFILES,
    Capacity,
    LatencyProfile,
    Pattern,
    Pricing,
    Target,
)

__version__ = "0.1.0"

logging.getLogger("mangaroute").addHandler(logging.NullHandler())

__all__ = [
    "SEED_PROFILES",
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
    "Outcome",
    "Pattern",
    "Pricing",
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
    "classify_exception",
    "default_config_text",
    "load_config",
    "load_default_config",
    "monotonic_clock",
    "parse_config",
]
