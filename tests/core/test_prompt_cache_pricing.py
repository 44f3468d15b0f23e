"""Prompt-cache tokens priced per target, read from the config, and seen by the cost rankers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mangaroute import ConfigError, FakeClock, InvalidObservation, Router, parse_config
from mangaroute.core.policy import CheapestWithinSlo, CostUnderSlo
from mangaroute.core.targets import Pricing

from .views import make_view

# Claude 3.5 Haiku-like prices: cache reads at 0.1x, writes at 1.25x the input price.
CACHING = Pricing(0.8, 4.0, cache_read_per_million_usd=0.08, cache_write_per_million_usd=1.0)

CONFIG = """
[targets.cached]
pattern = "bedrock_on_demand"
model_id = "anthropic.claude-3-5-haiku-20241022-v1:0"
region = "us-west-2"
input_per_million_usd = 0.8
output_per_million_usd = 4.0
cache_read_per_million_usd = 0.08
cache_write_per_million_usd = 1.0
"""


def test_cache_reads_and_writes_are_priced_at_their_own_rates() -> None:
    # 100 uncached in, 50 out, 2,000 read, 1,000 written
    cost = CACHING.token_cost_usd(100, 50, 2_000, 1_000)
    assert cost == pytest.approx((100 * 0.8 + 50 * 4.0 + 2_000 * 0.08 + 1_000 * 1.0) / 1e6)


def test_unset_cache_prices_take_the_input_price() -> None:
    plain = Pricing(3.0, 15.0)
    assert plain.token_cost_usd(0, 0, 1_000, 500) == pytest.approx(1_500 * 3.0 / 1e6)


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 10**6))
def test_cheap_cache_reads_never_cost_more_than_the_same_tokens_uncached(
    inp: int, out: int, read: int, write: int
) -> None:
    as_cached = CACHING.token_cost_usd(inp, out, read, write)
    as_input = CACHING.token_cost_usd(inp + read, out, 0, write)
    assert as_cached <= as_input + 1e-12


def test_the_config_reads_cache_prices_per_target() -> None:
    pricing = parse_config(CONFIG).target("cached").pricing
    assert pricing.cache_read_per_million_usd == 0.08
    assert pricing.cache_write_per_million_usd == 1.0


def test_a_negative_cache_price_is_named_in_the_error() -> None:
    bad = CONFIG.replace("cache_read_per_million_usd = 0.08", "cache_read_per_million_usd = -1")
    with pytest.raises(ConfigError) as info:
        parse_config(bad, source="c.toml")
    assert "[targets.cached.cache_read_per_million_usd]" in str(info.value)
    assert "-1" in str(info.value)


def test_a_policy_sets_the_typical_cached_prompt_for_its_cost_ranker() -> None:
    text = (
        CONFIG
        + """
[classes.chat]
targets = ["cached"]
policy = "cheap"

[policies.cheap]
ranker = "cost"

[policies.cheap.cost]
avg_cache_read_tokens = 4000
"""
    )
    ranker = parse_config(text).policies["cheap"].ranker
    assert isinstance(ranker, CheapestWithinSlo)
    assert (ranker.avg_cache_read_tokens, ranker.avg_cache_write_tokens) == (4000, 0)


def test_with_a_cached_prompt_the_cost_rankers_prefer_the_target_with_cheap_cache_reads() -> None:
    # Same input/output prices; only one discounts cache reads.
    discounted = make_view("discounted", pricing=CACHING)
    undiscounted = make_view("undiscounted", pricing=Pricing(0.7, 4.0))
    views = [undiscounted, discounted]
    no_cache = CheapestWithinSlo(avg_input_tokens=500, avg_output_tokens=300)
    assert [v.name for v in no_cache.rank(views)[0]] == ["undiscounted", "discounted"]
    cached = CheapestWithinSlo(
        avg_input_tokens=100, avg_output_tokens=300, avg_cache_read_tokens=4000
    )
    order, prices = cached.rank(views)
    assert [v.name for v in order] == ["discounted", "undiscounted"]
    assert prices["discounted"] == pytest.approx((100 * 0.8 + 300 * 4.0 + 4000 * 0.08) / 1e6)
    under_slo = CostUnderSlo(avg_input_tokens=100, avg_cache_read_tokens=4000)
    assert [v.name for v in under_slo.rank(views)[0]] == ["discounted", "undiscounted"]


@pytest.mark.parametrize(
    ("field", "value"), [("cache_read_tokens", -1), ("cache_write_tokens", 2.5)]
)
def test_bad_cache_counts_are_refused_by_name_and_the_router_keeps_serving(
    field: str, value: object
) -> None:
    router = Router(parse_config(CONFIG + '\n[classes.chat]\ntargets = ["cached"]\n'))
    with pytest.raises(InvalidObservation) as info:
        router.record("cached", latency_ms=10.0, **{field: value})  # type: ignore[arg-type]
    assert f"{field}={value}" in str(info.value)
    router.record("cached", latency_ms=10.0, input_tokens=10, cache_read_tokens=90)
    assert router.local_sample().spend_usd == pytest.approx((10 * 0.8 + 90 * 0.08) / 1e6)
    assert router.choose("chat").target.name == "cached"


def test_a_routed_call_reports_cache_tokens_too() -> None:
    router = Router(parse_config(CONFIG, source="cache.toml"), clock=FakeClock(10**12))
    with router.call() as call:
        call.tokens(10, 5, cache_read_tokens=90, cache_write_tokens=20)
    pricing = router.config.target("cached").pricing
    assert router.local_sample().spend_usd == pytest.approx(pricing.token_cost_usd(10, 5, 90, 20))
