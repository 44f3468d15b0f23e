"""The baselines users compare with (random, round robin, LiteLLM-style latency routing) and
the policy-part registry that makes adding such a part a registration, not a config edit."""

from __future__ import annotations

import math
import random
from collections import Counter
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mangaroute import FakeClock, Router, parse_config
from mangaroute.config import PartContext, register_ranker
from mangaroute.core.errors import ConfigError
from mangaroute.core.policy.rankers import ConfigOrder, LiteLlmLatency
from mangaroute.core.snapshot import TargetView
from tests.core.views import make_view

CONFIG = """
[router]
min_samples = 5
region = "ap-northeast-1"

[targets.a]
pattern = "bedrock_on_demand"
model_id = "a"
prior = { p50_ms = 300, p90_ms = 500, p99_ms = 700 }

[targets.b]
pattern = "bedrock_on_demand"
model_id = "b"
prior = { p50_ms = 400, p90_ms = 600, p99_ms = 800 }

[targets.c]
pattern = "bedrock_on_demand"
model_id = "c"
prior = { p50_ms = 500, p90_ms = 700, p99_ms = 900 }

[classes.chat]
targets = ["a", "b", "c"]
policy = "p"

[policies.p]
filters = ["healthy"]
ranker = "order"
picker = "PICKER"
budget = false
"""


def router(picker: str, seed: int = 1) -> Router:
    config = parse_config(CONFIG.replace("PICKER", picker), source="baselines.toml")
    return Router(config, clock=FakeClock(10**12), rng=random.Random(seed))


def test_round_robin_takes_the_targets_in_turn_with_the_rest_as_fallbacks() -> None:
    r = router("round_robin")
    picks = [r.choose("chat") for _ in range(7)]
    assert [d.target.name for d in picks] == ["a", "b", "c", "a", "b", "c", "a"]
    assert {d.reason for d in picks} == {"round_robin"}
    assert [t.name for t in picks[1].fallbacks] == ["a", "c"]


def test_round_robin_skips_a_target_whose_breaker_is_open() -> None:
    r = router("round_robin")
    r.eject("b", "test")
    assert [r.choose("chat").target.name for _ in range(4)] == ["a", "c", "a", "c"]


@given(st.integers(0, 2**32 - 1))
def test_random_spreads_calls_evenly(seed: int) -> None:
    r = router("random", seed)
    counts = Counter(r.choose("chat").target.name for _ in range(3000))
    assert set(counts) == {"a", "b", "c"}
    for name in "abc":  # 1,000 expected; 6 standard deviations (~26) either side is loose
        assert 840 <= counts[name] <= 1160, counts


def view(name: str, **fields: Any) -> TargetView:
    return make_view(name, **fields)


def test_litellm_latency_ranks_by_latency_per_output_token() -> None:
    # a: 400 ms over 100 tokens (4 ms/token); b: 900 ms over 300 tokens (3 ms/token)
    a = view("a", p99=800.0, ttft_p50_ms=math.nan, output_tokens_per_call=100.0)
    b = view("b", p99=1800.0, ttft_p50_ms=math.nan, output_tokens_per_call=300.0)
    ranked, scores = LiteLlmLatency().rank([a, b])
    assert [v.name for v in ranked] == ["b", "a"]
    assert scores == {"a": pytest.approx(4.0), "b": pytest.approx(3.0)}


def test_litellm_latency_uses_first_tokens_for_streams_and_tries_untried_targets_first() -> None:
    streamed = view("s", ttft_p50_ms=250.0, output_tokens_per_call=300.0)
    untried = view("u", latency_source="prior", ttft_p50_ms=math.nan)
    ranked, scores = LiteLlmLatency().rank([streamed, untried])
    assert [v.name for v in ranked] == ["u", "s"]
    assert scores == {"s": 250.0, "u": 0.0}


def test_a_registered_ranker_is_usable_by_name_in_any_config() -> None:
    built: list[PartContext] = []

    def reverse(params: Any, context: PartContext) -> Any:
        built.append(context)
        return ConfigOrder() if params.flag("plain", False) else _Reversed()

    unregister = register_ranker("reverse_for_test", reverse)
    text = CONFIG.replace('ranker = "order"', 'ranker = "reverse_for_test"')
    config = parse_config(text.replace("PICKER", "best"), source="plugin.toml")
    r = Router(config, clock=FakeClock(10**12), rng=random.Random(1))
    assert r.choose("chat").target.name == "c"
    assert built and built[0].targets == ["a", "b", "c"] and not built[0].nested
    with pytest.raises(
        ConfigError, match=r"names unknown ranker 'nope' \(known: .*reverse_for_test"
    ):
        parse_config(text.replace("reverse_for_test", "nope").replace("PICKER", "best"))
    unregister()
    with pytest.raises(ConfigError, match="names unknown ranker 'reverse_for_test'"):
        parse_config(text.replace("PICKER", "best"))


class _Reversed:
    name = "reversed"

    def rank(self, views: list[TargetView]) -> tuple[list[TargetView], dict[str, float]]:
        return list(reversed(views)), {}
