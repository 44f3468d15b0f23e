"""Shared pieces of the drop-in tests: a router config with a sticky split, the stand-in's
scripts (every target can call the ``volume_count`` tool), a decision recorder."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Any

from mangaroute import Router, parse_config
from mangaroute.testing import TargetScript, ToolUse
from tests.invoke.support import HAIKU, PROVISIONED, REGION

__all__ = ["CONFIG", "HAIKU", "PROVISIONED", "REGION", "TOOL", "Decisions", "make_router"]

TOOL = ToolUse("volume_count", {"series": "Frieren"})
SCRIPTS = {
    PROVISIONED: TargetScript(output_tokens=8, tool_use=TOOL),
    HAIKU: TargetScript(output_tokens=8, tool_use=TOOL),
}

CONFIG = f"""
[router]
default_class = "chat"
min_samples = 5
refresh_ms = 5

[breaker]
consecutive_failures = 3
min_requests = 10
cooldown_s = 600
max_cooldown_s = 600
successes_to_close = 1

[targets.primary]
pattern = "bedrock_provisioned"
model_id = "{PROVISIONED}"
region = "{REGION}"
prior = {{ p50_ms = 400, p90_ms = 600, p99_ms = 900 }}

[targets.haiku]
pattern = "bedrock_on_demand"
model_id = "{HAIKU}"
region = "{REGION}"
prior = {{ p50_ms = 300, p90_ms = 500, p99_ms = 800 }}

[classes.chat]
targets = ["primary", "haiku"]
policy = "ordered"

[classes.solo]
targets = ["primary"]
policy = "ordered"

[classes.split]
targets = ["primary", "haiku"]
policy = "sticky"

[policies.ordered]
filters = ["healthy"]
ranker = "order"
picker = "best"
budget = false

[policies.sticky]
filters = ["healthy"]
ranker = "order"
picker = "weighted"
budget = false

[policies.sticky.weighted]
sticky = true
weights = {{ primary = 1, haiku = 1 }}
"""


@dataclass
class Decisions:
    """A router observer keeping the target of every decision."""

    targets: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_decision(self, decision: Any) -> None:
        with self.lock:
            self.targets.append(decision.target.name)

    def on_outcome(self, *args: Any) -> None:
        pass

    def on_event(self, event: Any) -> None:
        pass


def make_router(observer: Decisions | None = None) -> Router:
    """The router on its real clock: the stand-in answers at once, no budget is scaled."""
    config = parse_config(CONFIG, source="dropin-test.toml")
    return Router(config, rng=random.Random(3), observer=observer)
