"""CloudWatch's prompt-cache metrics over an interval of mixed cached and uncached calls."""

from __future__ import annotations

import pytest

from mangaroute import Observation, Outcome, parse_config
from mangaroute.telemetry import CloudWatchMetrics
from mangaroute.telemetry.datum import Statistics
from tests.telemetry.helpers import MANGA_CONFIG


def test_cache_token_statistics_span_every_call_of_the_interval() -> None:
    config = parse_config(MANGA_CONFIG)
    fast = config.target("fast")
    metrics = CloudWatchMetrics(targets=config.targets, start=False)
    metrics.on_outcome(Observation(fast, Outcome.OK, 10.0, None, 9, 5, None, 1800, 0))
    metrics.on_outcome(Observation(fast, Outcome.OK, 10.0, None, 9, 5, None, 0, 1000))
    metrics.on_outcome(Observation(fast, Outcome.OK, 10.0, None, 9, 5, None))  # no caching
    data = {(d.name, d.dimensions): d.statistics for d in metrics.collect()}
    dims = (("Target", "fast"), ("Pattern", "bedrock_on_demand"))
    assert data[("CacheReadInputTokens", dims)] == Statistics(3, 1800, 0, 1800)
    assert data[("CacheWriteInputTokens", dims)] == Statistics(3, 1000, 0, 1000)
    # unset cache prices take the input price: 0.25 USD per 1M
    cost = data[("InferenceCost", dims)]
    assert cost is not None
    assert cost.total == pytest.approx((3 * (9 * 0.25 + 5 * 1.25) + 2800 * 0.25) / 1e6)


def test_no_cache_metrics_for_a_target_without_cache_usage() -> None:
    config = parse_config(MANGA_CONFIG)
    metrics = CloudWatchMetrics(targets=config.targets, start=False)
    metrics.on_outcome(Observation(config.target("slow"), Outcome.OK, 10.0, None, 9, 5, None))
    names = {d.name for d in metrics.collect()}
    assert "InferenceCost" in names
    assert not names & {"CacheReadInputTokens", "CacheWriteInputTokens"}
