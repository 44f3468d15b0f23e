"""Shared fixtures: a fake clock, seeded rngs, and routers built from small TOML configs."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from hypothesis import settings

from mangaroute import FakeClock, Router, parse_config

# Hypothesis's per-example deadline (200 ms) is a wall-clock limit: on a loaded 2-core CI box
# a first example that imports or warms a cache overruns it and the test fails as "flaky".
# Properties here are about values, never speed (benchmarks/ measures speed), so no deadline.
settings.register_profile("mangaroute", deadline=None)
settings.load_profile("mangaroute")

START_NS = 1_000_000_000_000

SMALL_CONFIG = """
[router]
default_class = "chat"
window_s = 60
bucket_s = 5
min_samples = 5
refresh_ms = 5

[breaker]
consecutive_failures = 3
error_rate = 0.5
min_requests = 10
interval_s = 10
cooldown_s = 10
max_cooldown_s = 80
half_open_probes = 1
successes_to_close = 2

[targets.fast]
pattern = "bedrock_on_demand"
model_id = "anthropic.claude-3-haiku-20240307-v1:0"
region = "ap-northeast-1"
tier = "haiku"
prior = { p50_ms = 400, p90_ms = 600, p99_ms = 900 }
input_per_million_usd = 0.25
output_per_million_usd = 1.25
tokens_per_minute = 100000

[targets.slow]
pattern = "bedrock_on_demand"
model_id = "anthropic.claude-3-sonnet-20240229-v1:0"
region = "ap-northeast-1"
tier = "sonnet"
prior = { p50_ms = 800, p90_ms = 1200, p99_ms = 2000 }
input_per_million_usd = 3.0
output_per_million_usd = 15.0

[targets.steady]
pattern = "bedrock_provisioned"
model_id = "arn:aws:bedrock:ap-northeast-1:123456789012:provisioned-model/x"
region = "ap-northeast-1"
tier = "sonnet"
model_units = 1
tokens_per_minute_per_unit = 40000
hourly_usd_per_unit = 23.0

[classes.chat]
targets = ["fast", "slow", "steady"]
policy = "ordered"

[classes.pinned]
targets = ["steady", "fast"]
policy = "ordered"

[policies.ordered]
filters = ["healthy", "headroom"]
ranker = "order"
picker = "best"
budget = true
"""


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START_NS)


RouterFactory = Callable[..., Router]


@pytest.fixture
def make_router(clock: FakeClock) -> RouterFactory:
    """Build a router on ``SMALL_CONFIG`` (or given TOML) with the fake clock, seed 1."""

    def build(text: str = SMALL_CONFIG, seed: int = 1) -> Router:
        return Router(parse_config(text, source="test.toml"), clock=clock, rng=random.Random(seed))

    return build


@pytest.fixture
def router(make_router: RouterFactory) -> Router:
    return make_router()
