"""Deadline-aware latency prediction: the predictor, its ranker and filter, and the
per-request check in ``choose()``."""

from __future__ import annotations

import dataclasses
import math
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mangaroute import FakeClock, Router, parse_config
from mangaroute.core.policy import LatencyPredictor, PredictedLatency, Reliable
from mangaroute.core.policy.prediction import parallel_slots
from mangaroute.core.snapshot import TargetView
from mangaroute.core.targets import Capacity, Pattern

from .views import make_view

START_NS = 1_000_000_000_000


def test_a_prior_is_split_into_ttft_and_per_token_time() -> None:
    view = make_view("a", p99=1200.0, latency_source="prior")
    a, b = LatencyPredictor(ttft_share=0.35, avg_output_tokens=300).line(view)
    assert a == pytest.approx(420.0)
    assert b == pytest.approx(780.0 / 300)
    assert LatencyPredictor().p99_ms(view) == pytest.approx(1200.0)  # at the typical length
    assert LatencyPredictor().p99_ms(view, 600) == pytest.approx(420.0 + 2 * 780.0)


def test_an_observed_window_gives_ttft_p99_and_tail_scaled_per_token_time() -> None:
    # median 500 ms of which 100 ms to the first token over 200 tokens: 2 ms/token at the
    # median; the TTFT tail ratio 300/100 scales it to 6 ms/token at the tail.
    view = make_view(
        "a", p50_ms=500.0, ttft_p50_ms=100.0, ttft_p99_ms=300.0, output_tokens_per_call=200.0
    )
    a, b = LatencyPredictor().line(view)
    assert (a, b) == pytest.approx((300.0, 6.0))
    assert LatencyPredictor().p99_ms(view, 100) == pytest.approx(900.0)


def test_without_streamed_ttft_the_observed_p99_is_split_like_a_prior() -> None:
    view = make_view("a", p99=1000.0, ttft_p50_ms=float("nan"), ttft_p99_ms=float("nan"))
    assert LatencyPredictor(ttft_share=0.5).line(view) == pytest.approx((500.0, 500.0 / 300))


def test_load_inflates_only_targets_whose_latency_grows_with_it() -> None:
    predictor = LatencyPredictor(load_knee=0.5, load_weight=1.0)
    quota = make_view("q", capacity=Capacity(tokens_per_minute=1000), utilization=0.99)
    assert predictor.load_factor(quota) == 1.0  # a token quota throttles, it does not slow
    # 4 instances' worth: 8 req/s x 0.5 s median = 4 slots; 3 in flight = 75 % busy
    endpoint = make_view(
        "e",
        p99=1000.0,
        pattern=Pattern.SAGEMAKER_REALTIME,
        capacity=Capacity(requests_per_second=8),
        in_flight=3,
        utilization=0.1,
    )
    assert predictor.load_factor(endpoint) == pytest.approx(1.5)
    idle = make_view(
        "e",
        p99=1000.0,
        pattern=Pattern.SAGEMAKER_REALTIME,
        capacity=Capacity(requests_per_second=8),
    )
    assert predictor.line(endpoint)[0] == pytest.approx(1.5 * predictor.line(idle)[0])
    pool = make_view("c", capacity=Capacity(concurrency=10), in_flight=2, utilization=0.2)
    assert predictor.load_factor(pool) == 1.0


def test_fast_failures_do_not_look_fast() -> None:
    flaky = make_view("flaky", p99=300.0, error_rate=0.8, requests=100)
    steady = make_view("steady", p99=1000.0)
    ranked, scores = PredictedLatency().rank([flaky, steady])
    assert [v.name for v in ranked] == ["steady", "flaky"]
    assert scores["flaky"] == pytest.approx(300.0 / 0.2)
    assert Reliable(max_error_rate=0.2).exclude(flaky) == "unreliable(0.80)"
    assert Reliable().exclude(make_view("few", error_rate=0.9, requests=5)) is None
    assert Reliable().exclude(steady) is None


@given(
    st.floats(min_value=1, max_value=5000),
    st.floats(min_value=0, max_value=1),
    st.integers(min_value=0, max_value=4000),
    st.integers(min_value=0, max_value=4000),
    st.integers(min_value=0, max_value=50),
)
def test_predictions_grow_with_answer_length_and_load(
    p99: float, share: float, short: int, extra: int, in_flight: int
) -> None:
    predictor = LatencyPredictor(ttft_share=share)
    view = make_view(
        "e",
        p99=p99,
        latency_source="prior",
        capacity=Capacity(concurrency=20),
        in_flight=in_flight,
    )
    busier = make_view(
        "e",
        p99=p99,
        latency_source="prior",
        capacity=Capacity(concurrency=20),
        in_flight=in_flight + 5,
    )
    assert predictor.p99_ms(view, short) <= predictor.p99_ms(view, short + extra) + 1e-9
    assert 1.0 <= predictor.load_factor(view) <= predictor.load_factor(busier)


DEADLINE_CONFIG = """
[router]
min_samples = 5
refresh_ms = 5

[targets.fast]
pattern = "bedrock_on_demand"
model_id = "fast"
region = "ap-northeast-1"
prior = { p50_ms = 400, p90_ms = 600, p99_ms = 800 }

[targets.steep]
pattern = "bedrock_on_demand"
model_id = "steep"
region = "ap-northeast-1"
prior = { p50_ms = 300, p90_ms = 500, p99_ms = 700 }

[classes.chat]
targets = ["steep", "fast"]
policy = "deadline"

[policies.deadline]
filters = ["healthy"]
ranker = "order"
picker = "best"
deadline = true

[policies.deadline.prediction]
ttft_share = 0.5
avg_output_tokens = 100
"""


def deadline_router() -> Router:
    config = parse_config(DEADLINE_CONFIG, source="deadline.toml")
    return Router(config, clock=FakeClock(START_NS), rng=random.Random(1))


def test_choose_drops_targets_whose_predicted_p99_misses_this_calls_budget() -> None:
    router = deadline_router()
    # steep: 350 + 3.5 ms/token; fast: 400 + 4 ms/token (priors, split 50/50 over 100 tokens)
    route = router.snapshot().routes["chat"]
    assert route.deadline is not None
    assert [pytest.approx(line) for line in route.deadline] == [(350.0, 3.5), (400.0, 4.0)]
    short = router.choose("chat", budget_ms=800, output_tokens=100)
    assert (short.target.name, short.reason) == ("steep", "best")
    # 150 tokens: steep 875 ms, fast 1000 ms - neither fits 800 ms: the full plan, flagged
    none = router.choose("chat", budget_ms=800, output_tokens=150)
    assert (none.target.name, none.reason) == ("steep", "best+over_budget")
    # no estimate: the predictor's typical 100 tokens - steep (700 ms) fits, fast (800) not
    assert router.choose("chat", budget_ms=760).reason == "best+budget"
    assert router.choose("chat", budget_ms=760, output_tokens=120).reason == "best+over_budget"
    assert router.choose("chat").reason == "best"  # no budget, no check


def test_a_streams_budget_is_checked_against_the_first_token_only() -> None:
    router = deadline_router()
    # 300 tokens: steep 350 + 1,050 ms, fast 400 + 1,200 ms - neither answers whole in 800 ms
    whole = router.choose("chat", budget_ms=800, output_tokens=300)
    assert whole.reason == "best+over_budget"
    # streamed, only the first token is due: steep (350) and fast (400) both fit
    stream = router.choose("chat", budget_ms=800, output_tokens=300, first_token=True)
    assert (stream.target.name, stream.reason) == ("steep", "best")
    # 380 ms for the first token: only steep's TTFT fits
    tight = router.choose("chat", budget_ms=380, output_tokens=300, first_token=True)
    assert (tight.target.name, tight.reason) == ("steep", "best+budget")
    assert [t.name for t in tight.fallbacks] == ["fast"]
    assert router.choose("chat", budget_ms=340, first_token=True).reason == "best+over_budget"


def test_a_target_that_cannot_make_the_deadline_becomes_a_last_resort() -> None:
    text = DEADLINE_CONFIG.replace(
        "prior = { p50_ms = 400, p90_ms = 600, p99_ms = 800 }",
        "prior = { p50_ms = 100, p90_ms = 150, p99_ms = 200 }",
    )
    router = Router(parse_config(text), clock=FakeClock(START_NS), rng=random.Random(1))
    # steep: 350 + 3.5/token, fast: 100 + 1/token. 200 tokens in 500 ms: only fast fits.
    decision = router.choose("chat", budget_ms=500, output_tokens=200)
    assert decision.target.name == "fast"
    assert decision.reason == "best+budget"
    assert [t.name for t in decision.fallbacks] == ["steep"]
    # a generous budget keeps the configured order
    assert router.choose("chat", budget_ms=5000, output_tokens=200).target.name == "steep"


def test_streamed_calls_are_judged_by_their_first_token() -> None:
    """``[router] streamed = true`` (or a policy's ``prediction.first_token``): the
    rankers' latency is the predicted time to first token, whatever the answer length."""
    streamed = parse_config(
        DEADLINE_CONFIG.replace("[router]\n", "[router]\nstreamed = true\n"), source="s.toml"
    )
    whole = parse_config(DEADLINE_CONFIG, source="w.toml")
    predictor = streamed.policies["deadline"].deadline
    assert predictor is not None and predictor.first_token
    assert whole.policies["deadline"].deadline == dataclasses.replace(predictor, first_token=False)
    view = make_view("v", p99=800.0, latency_source="prior", ttft_p99_ms=math.nan)
    # a prior split 50/50: TTFT 400 ms, then 4 ms a token over 100 tokens
    assert predictor.p99_ms(view, 300) == pytest.approx(400.0)
    assert whole.policies["deadline"].deadline.p99_ms(view, 300) == pytest.approx(1600.0)
    # a policy may say otherwise
    own = DEADLINE_CONFIG.replace("[router]\n", "[router]\nstreamed = true\n").replace(
        "avg_output_tokens = 100\n", "avg_output_tokens = 100\nfirst_token = false\n"
    )
    mixed = parse_config(own, source="m.toml").policies["deadline"].deadline
    assert mixed is not None and not mixed.first_token


def manga_endpoint(**fields: Any) -> TargetView:
    """The shipped fine-tuned endpoint at 1:10 scale: 2 instances x 0.8 req/s, the seed's
    ``sagemaker_realtime`` prior (p50 500 ms, p99 1,200 ms), answers that really take ~7 s."""
    values: dict[str, Any] = dict(
        p99=1200.0,
        p50_ms=500.0,
        pattern=Pattern.SAGEMAKER_REALTIME,
        capacity=Capacity(requests_per_second=1.6),
        latency_source="prior",
        ttft_p50_ms=math.nan,
        ttft_p99_ms=math.nan,
        samples=11,
        requests=11,
        ok=11,
        utilization=0.12,
        in_flight=2,
    )
    values.update(fields)
    return make_view("sagemaker-manga", **values)


def test_in_flight_calls_are_not_divided_by_a_prior_call_duration() -> None:
    # Little's law with the prior's 500 ms median gives 1.6 x 0.5 = 0.8 slots: two calls in
    # flight would read as 2.5x over capacity (factor 7, predicted first token 2,940 ms over
    # a 1.5 s SLO) while the endpoint serves 0.19 req/s of its 1.6. Until the window has
    # min_samples, the measured request rate alone says how loaded it is.
    predictor = LatencyPredictor(first_token=True)
    cold = manga_endpoint()
    assert parallel_slots(cold) == 0.0
    assert predictor.load_factor(cold) == 1.0
    assert predictor.p99_ms(cold) == pytest.approx(420.0)
    # a measured rate near capacity still inflates the prior
    assert predictor.load_factor(manga_endpoint(utilization=0.85)) == pytest.approx(1.5)
    # once observed, the slots use the observed 7 s median: 11.2 slots, 2 in flight is 18 %
    warm = manga_endpoint(
        latency_source="observed", p50_ms=7000.0, ttft_p50_ms=350.0, ttft_p99_ms=620.0,
        samples=40, output_tokens_per_call=300.0,
    )  # fmt: skip
    assert parallel_slots(warm) == pytest.approx(11.2)
    assert predictor.load_factor(warm) == 1.0
    # ... and ten in flight (89 % of the slots) inflates it: 1 + (0.893 - 0.7) / 0.3
    busy = dataclasses.replace(warm, in_flight=10)
    assert predictor.load_factor(busy) == pytest.approx(1.0 + (10 / 11.2 - 0.7) / 0.3)


LOW_TRAFFIC_MANGA = """
[router]
streamed = true
refresh_ms = 5

[targets.sagemaker-manga]
pattern = "sagemaker_realtime"
model_id = "mangaassist-manga-ft"
region = "ap-northeast-1"
tier = "custom"
prior = "sagemaker_realtime"
instances = 2
requests_per_second_per_instance = 0.8
hourly_usd_per_instance = 0.189

[targets.ondemand-sonnet]
pattern = "bedrock_on_demand"
model_id = "anthropic.claude-3-sonnet-20240229-v1:0"
region = "ap-northeast-1"
tier = "sonnet"
prior = { p50_ms = 770, p90_ms = 1160, p99_ms = 1800 }
input_per_million_usd = 3.0
output_per_million_usd = 15.0

[classes.manga]
targets = ["sagemaker-manga", "ondemand-sonnet"]
policy = "manga"

[policies.manga]
filters = ["healthy", "headroom", "reliable"]
ranker = "tier"
picker = "best"
deadline = true
last_resort = true

[policies.manga.tier]
order = ["custom", "sonnet"]
within = "cost_under_slo"
"""


def test_a_quiet_fine_tuned_endpoint_keeps_its_questions_while_calls_are_in_flight() -> None:
    # The shipped manga class at 1:10 scale (the simulator's evening: ~0.2 manga questions a
    # second, answers of ~7 s): ten answered calls in the last minute - fewer than the 20
    # min_samples, so the seed's prior stands in - and two still running. The endpoint is at
    # 10 % of its 1.6 req/s, so the fine-tuned model keeps the question; before the fix the
    # two calls in flight over 0.8 "slots" sent it to on-demand Sonnet.
    clock = FakeClock(START_NS)
    router = Router(parse_config(LOW_TRAFFIC_MANGA), clock=clock, rng=random.Random(7))
    for _ in range(10):
        clock.advance(seconds=6)
        router.record(
            "sagemaker-manga", latency_ms=7000.0, ttft_ms=350.0, input_tokens=500,
            output_tokens=300,
        )  # fmt: skip
    running = [router.choose("manga", budget_ms=1500.0, first_token=True) for _ in range(2)]
    assert [d.target.name for d in running] == ["sagemaker-manga"] * 2
    clock.advance(seconds=0.01)
    view = {v.name: v for v in router.snapshot().targets}["sagemaker-manga"]
    assert (view.latency_source, view.in_flight) == ("prior", 2)
    assert view.utilization == pytest.approx(10 / 60 / 1.6, rel=0.2)
    decision = router.choose("manga", budget_ms=1500.0, first_token=True)
    assert decision.target.name == "sagemaker-manga"
    assert decision.reason == "best"


def test_a_prior_is_never_more_optimistic_than_the_first_tokens_the_window_holds() -> None:
    predictor = LatencyPredictor(first_token=True)
    # no first token seen yet: the prior's 35 % of 1,200 ms
    assert predictor.p99_ms(manga_endpoint()) == pytest.approx(420.0)
    # a healthy endpoint: 350 ms median x the prior's tail ratio 1,200 / 500 = 840 ms
    healthy = manga_endpoint(ttft_p50_ms=350.0, ttft_p99_ms=620.0)
    assert predictor.p99_ms(healthy) == pytest.approx(840.0)
    # four times slower (sagemaker-slow): 1,326 ms median -> 3,182 ms, over a 1.5 s SLO
    slow = manga_endpoint(ttft_p50_ms=1326.0, ttft_p99_ms=2143.0)
    assert predictor.p99_ms(slow) == pytest.approx(1326.0 * 2.4)
    # faster than the prior says: the prior stands until min_samples
    assert predictor.p99_ms(manga_endpoint(ttft_p50_ms=100.0)) == pytest.approx(420.0)
    # the time per output token stays the prior's
    assert predictor.line(slow)[1] == pytest.approx(780.0 / 300)


def test_a_slow_fine_tuned_endpoint_with_few_calls_yields_to_sonnet() -> None:
    # The same quiet endpoint four times slower: 15 calls in the last minute, first tokens
    # at 1.3 s. Still "prior" (15 < 20 samples), but the window shows the 1.5 s SLO missed.
    clock = FakeClock(START_NS)
    router = Router(parse_config(LOW_TRAFFIC_MANGA), clock=clock, rng=random.Random(7))
    for _ in range(15):
        clock.advance(seconds=4)
        router.record(
            "sagemaker-manga", latency_ms=28000.0, ttft_ms=1300.0, input_tokens=500,
            output_tokens=300,
        )  # fmt: skip
    clock.advance(seconds=0.01)
    view = {v.name: v for v in router.snapshot().targets}["sagemaker-manga"]
    assert view.latency_source == "prior"
    decision = router.choose("manga", budget_ms=1500.0, first_token=True)
    assert decision.target.name == "ondemand-sonnet"
    assert [t.name for t in decision.fallbacks] == ["sagemaker-manga"]
