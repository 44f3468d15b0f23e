"""Shared pieces of the invocation tests: a small config, clocks, an outcome recorder.

The router and the stand-in share one *scaled* clock (virtual ns = real ns / SCALE), as the
demo does, so scripted latencies are virtual milliseconds on both sides; tests whose timing
must be exact use a FakeClock instead (see test_deadline.py).
"""

from __future__ import annotations

import functools
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import boto3

from mangaroute import Observation, Outcome, Router, parse_config
from mangaroute.core.clock import Clock
from mangaroute.testing import TargetScript

SCALE = 0.02
ROOMY_MS = 100_000
"""A budget (virtual ms) that no scheduling pause uses up: 2 s of real time at SCALE. With two
CPU burners beside the tests (load average ~12 on 2 cores), an attempt that answers at once
took up to 130 ms of real time - 6,400 virtual ms, more than a 3 s budget (60 ms real). Tests
about which target answers use this; tests about the budget itself use a FakeClock."""
SLOW_MS = 40_000
"""A primary slow enough to lose a hedge fired at 10 % of ROOMY_MS (10,000 virtual ms, 200 ms
real) with 600 ms of real time to spare, yet answering 800 ms of real time before its read
timeout (the ClientCache step below ROOMY_MS: 2^(32/3) ms = 1.63 s real), so it still ends ok."""
REGION = "ap-northeast-1"
PROVISIONED = "arn:aws:bedrock:ap-northeast-1:123456789012:provisioned-model/abc123"
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
PROFILE = "apac.anthropic.claude-3-5-sonnet-20240620-v1:0"
ENDPOINT = "manga-ft"
MESSAGES = [{"role": "user", "content": [{"text": "Which volume of Frieren comes next?"}]}]
SECRET = "Which volume of Frieren"
"""Prompt text that must never appear in a log or an error message."""

CONFIG = f"""
[router]
default_class = "chat"
min_samples = 5
refresh_ms = 5

[breaker]
consecutive_failures = 3
min_requests = 10
cooldown_s = 10
max_cooldown_s = 80
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
input_per_million_usd = 0.25
output_per_million_usd = 1.25

[targets.profile]
pattern = "bedrock_on_demand"
model_id = "{PROFILE}"
region = "{REGION}"
prior = {{ p50_ms = 600, p90_ms = 900, p99_ms = 1200 }}

[targets.manga]
pattern = "sagemaker_realtime"
model_id = "{ENDPOINT}"
region = "{REGION}"
prior = {{ p50_ms = 300, p90_ms = 500, p99_ms = 700 }}

[classes.chat]
targets = ["primary", "haiku", "profile"]
policy = "ordered"

[classes.manga]
targets = ["manga", "haiku"]
policy = "ordered"

[classes.profile]
targets = ["profile"]
policy = "ordered"

[classes.solo]
targets = ["primary"]
policy = "ordered"

[policies.ordered]
filters = ["healthy"]
ranker = "order"
picker = "best"
budget = false
"""


def scaled_clock() -> int:
    return int(time.monotonic_ns() / SCALE)


def fast_scripts() -> tuple[dict[str, TargetScript], dict[str, TargetScript]]:
    """Every target answers at once (8 output tokens)."""
    script = TargetScript(output_tokens=8)
    return {PROVISIONED: script, HAIKU: script, PROFILE: script}, {ENDPOINT: script}


@dataclass
class Recorder:
    """A router observer keeping every recorded outcome (target name first)."""

    outcomes: list[tuple[str, Outcome, float, float | None, str | None]] = field(
        default_factory=list
    )
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_decision(self, decision: Any) -> None:
        pass

    def on_outcome(self, observation: Observation) -> None:
        o = observation
        with self.lock:
            self.outcomes.append((o.target.name, o.outcome, o.latency_ms, o.ttft_ms, o.error_code))

    def on_event(self, event: Any) -> None:
        pass

    def of(self, name: str) -> list[tuple[str, Outcome, float, float | None, str | None]]:
        with self.lock:
            return [o for o in self.outcomes if o[0] == name]


def make_router(clock: Clock = scaled_clock, observer: Recorder | None = None) -> Router:
    config = parse_config(CONFIG, source="invoke-test.toml")
    return Router(config, clock=clock, rng=random.Random(3), observer=observer)


@functools.cache
def session() -> Any:
    """One boto3 session for the whole run: its loader keeps the service models, so a new
    client costs about 2 ms instead of 50 (clients are made inside scaled budgets)."""
    shared = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x")
    for service in ("bedrock-runtime", "sagemaker-runtime"):
        shared.client(service, region_name=REGION, endpoint_url="http://127.0.0.1:9").close()
    return shared
