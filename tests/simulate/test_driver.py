"""The simulated orchestrator runs production's failover plan: the rules table, the call's
deadline as every attempt's read timeout, hedging - observed in virtual time. And the router
never sees a message's realised output length."""

from __future__ import annotations

import dataclasses
from array import array
from pathlib import Path
from typing import Any

import pytest

from mangaroute.config import parse_config
from mangaroute.core.errors import ConfigError
from mangaroute.core.outcome import ERROR, OK
from mangaroute.core.router import Router
from mangaroute.core.settings import RouterConfig
from mangaroute.invoke.client import InvokeSettings
from mangaroute.invoke.hedging import HedgePolicy
from mangaroute.invoke.retry import RetryPolicy
from mangaroute.simulate import parse_scenario, simulate
from mangaroute.simulate.driver import DEFAULT_OUTPUT_ESTIMATE, READ_TIMEOUT
from mangaroute.simulate.engine import Budget, RunResult, run_router
from mangaroute.simulate.fleet import Fleet, SimTarget
from mangaroute.simulate.run import limits_of
from mangaroute.simulate.traffic import Traffic
from tests.simulate.test_engine import ROUTER, SCENARIO

CONFIG = """
[router]
refresh_ms = 5
min_samples = 5

[breaker]
consecutive_failures = 1000
cooldown_s = 600
max_cooldown_s = 600
"""
TARGET = """
[targets.{name}]
pattern = "bedrock_on_demand"
model_id = "{name}"
region = "ap-northeast-1"
prior = {{ p50_ms = 400, p90_ms = 500, p99_ms = 600 }}
input_per_million_usd = 1.0
output_per_million_usd = 2.0
"""
CLASSES = """
[classes.simple]
targets = ["a", "b", "c"]
policy = "ordered"

[policies.ordered]
filters = ["healthy"]
ranker = "order"
picker = "best"
budget = false
"""
BUDGET = Budget()  # 2,500 ms for inference


def config() -> RouterConfig:
    targets = "".join(TARGET.format(name=name) for name in "abc")
    return parse_config(CONFIG + targets + CLASSES)


class Scripted(SimTarget):
    """A simulated target that answers every call the same way: ``(code, latency ms, error
    code)`` - the physics are not under test here, the orchestrator is."""

    def __init__(self, sim: SimTarget, code: int, latency_ms: float, error: str | None) -> None:
        super().__init__(sim.target, sim.index, sim.model, [])
        self.script = (code, latency_ms, error)
        self.calls: list[int] = []

    def attempt(  # type: ignore[override]
        self, now: int, draw: float, k: int, tin: int, tout: int, commit: bool, **_: Any
    ) -> tuple[int, float, float, str | None]:
        self.calls.append(now)
        code, latency, error = self.script
        return code, latency, latency * 0.3 if code == OK else 0.0, error


def fleet(cfg: RouterConfig, **scripts: tuple[int, float, str | None]) -> Fleet:
    built = Fleet.build(cfg.targets, {}, [])
    scripted = Fleet()
    for sim in built.targets:
        code, latency, error = scripts.get(sim.name, (OK, 400.0, None))
        double = Scripted(sim, code, latency, error)
        scripted.targets.append(double)
        scripted.by_name[sim.name] = double
    return scripted


def traffic(messages: int, *, spacing_s: float = 10.0, outputs: list[int] | None = None) -> Traffic:
    start = 10 * 3600 * 10**9
    out = outputs or [300] * messages
    return Traffic(
        ("simple",),
        array("q", [start + round(k * spacing_s * 1e9) for k in range(messages)]),
        array("b", [0] * messages),
        array("H", [500] * messages),
        array("H", out),
        array("I", range(messages)),
        array("d", [(k * 0.618) % 1.0 for k in range(messages)]),
        window=(10 * 3600.0, 11 * 3600.0),
    )


def run(
    day: Traffic,
    sims: Fleet,
    cfg: RouterConfig,
    invoke: InvokeSettings | None = None,
    budget: Budget = BUDGET,
) -> RunResult:
    return run_router("t", "", cfg, day, sims, budget, seed=1, day_start_unix=0.0, invoke=invoke)


def calls(sims: Fleet, name: str) -> int:
    target = sims.by_name[name]
    assert isinstance(target, Scripted)
    return len(target.calls)


def test_a_validation_exception_is_raised_unchanged_never_retried() -> None:
    cfg = config()
    sims = fleet(cfg, a=(ERROR, 30.0, "ValidationException"))
    result = run(traffic(20), sims, cfg)
    assert result.failed == 20 and result.answered == 0
    assert (calls(sims, "a"), calls(sims, "b"), calls(sims, "c")) == (20, 0, 0)
    assert result.failovers == 0 and result.fallback_attempts == 0
    # the same fast error, but one the rules fail over on: every message answered by b
    sims = fleet(cfg, a=(ERROR, 30.0, "ServiceUnavailableException"))
    result = run(traffic(20), sims, cfg)
    assert result.answered == 20 and result.failovers == 20
    assert (calls(sims, "b"), calls(sims, "c")) == (20, 0)


def test_a_model_error_fails_over_once_only() -> None:
    cfg = config()
    model_error = (ERROR, 50.0, "ModelErrorException")
    sims = fleet(cfg, a=model_error, b=model_error)
    result = run(traffic(10), sims, cfg)
    assert result.failed == 10
    assert (calls(sims, "a"), calls(sims, "b"), calls(sims, "c")) == (10, 10, 0)
    assert result.fallback_attempts == 10  # one failover per message, never a second
    # an unavailable second target after a model error still fails over to the third
    sims = fleet(cfg, a=model_error, b=(ERROR, 50.0, "InternalServerException"))
    result = run(traffic(10), sims, cfg)
    assert result.answered == 10 and calls(sims, "c") == 10


def test_access_denied_ejects_the_target() -> None:
    cfg = config()
    sims = fleet(cfg, a=(ERROR, 20.0, "AccessDeniedException"))
    result = run(traffic(10), sims, cfg)
    # the first call ejects a (its breaker opens for the eject cool-down) and fails over;
    # every later message goes to b directly
    assert calls(sims, "a") == 1 and calls(sims, "b") == 10
    assert result.answered == 10 and result.failovers == 1
    assert result.breaker_opens == 1
    assert "AccessDeniedException (ejected by invoke)" in result.switch_log[0]["reason"]


def test_a_read_timeout_ends_the_attempt_at_the_deadline() -> None:
    cfg = config()
    sims = fleet(cfg, a=(OK, 4000.0, None))
    result = run(traffic(5), sims, cfg)
    a = result.usage["a"]
    assert result.failed == 5 and a.timeouts == 5 and a.ok == 0
    assert calls(sims, "b") == 0  # the deadline is every attempt's read timeout: no time left
    assert a.token_usd == pytest.approx(5 * (500 * 1.0 + 300 * 2.0) / 1e6)  # still generated
    assert READ_TIMEOUT.error_code == "ReadTimeoutError"
    # a target-side timeout (ModelTimeoutException) comes back early: the call fails over
    sims = fleet(cfg, a=(ERROR, 900.0, "ModelTimeoutException"))
    result = run(traffic(5), sims, cfg)
    assert result.answered == 5 and calls(sims, "b") == 5
    assert result.latency_hist.index(5) == round(900 + 400 + BUDGET.pre_ms + BUDGET.post_ms)


def test_a_hedge_fires_at_hedge_at_and_the_first_answer_wins() -> None:
    cfg = config()
    sims = fleet(cfg, a=(OK, 2000.0, None))
    hedge = InvokeSettings(hedge=HedgePolicy(after_fraction=0.2, max_ratio=1.0, window=100))
    result = run(traffic(10), sims, cfg, hedge)
    b = sims.by_name["b"]
    assert isinstance(b, Scripted)
    arrivals = [10 * 3600 * 10**9 + k * 10 * 10**9 for k in range(10)]
    # hedge at 0.2 x 2,500 ms = 500 ms after each arrival; b answers 400 ms later
    assert b.calls == [t + 500 * 10**6 for t in arrivals]
    assert result.answered == 10 and result.fallback_attempts == 10
    assert result.answers_by_class == [0, 10, 0]  # b won every race
    assert result.latency_hist.index(10) == round(500 + 400 + BUDGET.pre_ms + BUDGET.post_ms)
    # the losers ran on and are billed as abandoned calls are: the model generated them
    assert result.usage["a"].ok == 10
    assert result.usage["a"].token_usd == pytest.approx(10 * 1100 / 1e6)
    # the winner's first token: 500 ms to the hedge + 30 % of b's 400 ms = 620 ms
    assert result.within_first_token_slo == 10 and result.within_slo == 10
    tight = dataclasses.replace(BUDGET, first_token_ms=600.0)
    late = run(traffic(10), fleet(cfg, a=(OK, 2000.0, None)), cfg, hedge, tight)
    assert late.within_first_token_slo == 0 and late.within_slo == 10
    # without hedging, a's slow answers win (2,000 ms is within the deadline)
    result = run(traffic(10), fleet(cfg, a=(OK, 2000.0, None)), cfg)
    assert result.answers_by_class == [10, 0, 0] and result.fallback_attempts == 0


def test_the_hedge_budget_caps_hedges() -> None:
    cfg = config()
    sims = fleet(cfg, a=(OK, 2000.0, None))
    hedge = InvokeSettings(hedge=HedgePolicy(after_fraction=0.2, max_ratio=0.25, window=1000))
    result = run(traffic(40), sims, cfg, hedge)
    assert calls(sims, "b") == result.fallback_attempts == 10  # 25 % of 40 calls


def spy_on_choose(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every ``output_tokens`` that ``Router.choose`` is called with, from now on."""
    seen: list[int] = []
    choose = Router.choose

    def spy(self: Router, *args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs["output_tokens"])
        return choose(self, *args, **kwargs)

    monkeypatch.setattr(Router, "choose", spy)
    return seen


def test_the_router_never_sees_the_realised_output_length(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every ``output_tokens`` that reaches ``Router.choose`` over a small day is the
    class's estimate, whatever each message's realised output turns out to be."""
    seen = spy_on_choose(monkeypatch)
    (tmp_path / "router.toml").write_text(ROUTER)
    spread = SCENARIO.replace("spread = 0", "spread = 0.5")
    scenario = parse_scenario(spread, source="s.toml", base_dir=tmp_path)
    scenario = dataclasses.replace(
        scenario, traffic=dataclasses.replace(scenario.traffic, window=(36_000.0, 36_600.0))
    )
    simulation = simulate(scenario, jobs=1, oracle=False)
    realised = list(simulation.traffic.output_tokens)
    assert len(seen) == len(realised) == 167
    assert len(set(realised)) > 50  # the realised lengths vary...
    assert set(seen) == {DEFAULT_OUTPUT_ESTIMATE}  # ...the router is told the estimate
    # a per-class estimate reaches it instead when given
    seen.clear()
    cfg = parse_config(ROUTER)
    day = traffic(30, outputs=[50 + 7 * k for k in range(30)])
    run_router(
        "t",
        "",
        cfg,
        day,
        Fleet.build(cfg.targets, {}, []),
        BUDGET,
        seed=1,
        day_start_unix=0.0,
        estimates={"simple": 420},
    )
    assert seen == [420] * 30
    # a recorded max_tokens (a replayed trace) is what production would pass
    seen.clear()
    capped = dataclasses.replace(day, max_tokens=array("H", [0, 1000] * 15))
    run_router(
        "t", "", cfg, capped, Fleet.build(cfg.targets, {}, []), BUDGET, seed=1, day_start_unix=0
    )
    assert seen == [DEFAULT_OUTPUT_ESTIMATE, 1000] * 15


HEDGED = """
[contenders.hedged]
description = "first, then second; hedge at a fifth of the budget"
[contenders.hedged.invoke]
fit = "p90"
[contenders.hedged.invoke.hedge]
after_fraction = 0.2
max_ratio = 0.5
window = 100
"""


def test_a_contender_sets_hedging_and_a_scenario_its_output_estimate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = spy_on_choose(monkeypatch)
    (tmp_path / "router.toml").write_text(ROUTER)
    slow = '[[faults]]\nkind = "slowdown"\ntarget = "first"\nstart = "10:00"\nminutes = 60\n'
    text = SCENARIO.replace('contenders = ["ordered"]', 'contenders = ["ordered", "hedged"]')
    text += HEDGED + slow + "factor = 4\n[output_estimate]\nsimple = 250\n"
    scenario = parse_scenario(text, source="s.toml", base_dir=tmp_path)
    plain, hedged = scenario.contenders
    assert plain.invoke == InvokeSettings()
    assert hedged.invoke == InvokeSettings(
        fit="p90", hedge=HedgePolicy(after_fraction=0.2, max_ratio=0.5, window=100)
    )
    assert scenario.output_estimate == {"simple": 250}
    scenario = dataclasses.replace(
        scenario, traffic=dataclasses.replace(scenario.traffic, window=(36_000.0, 36_600.0))
    )
    simulation = simulate(scenario, jobs=1, oracle=False)
    assert set(seen) == {250}
    ordered, with_hedges = simulation.results
    # first answers in ~1.6 s (4 x 400 ms): without hedging it wins every call; the hedged
    # contender races second after 500 ms on up to half of its calls, and second wins those
    assert ordered.fallback_attempts == 0 and ordered.usage["second"].attempts == 0
    assert 0.4 * ordered.messages < with_hedges.fallback_attempts <= 0.5 * ordered.messages
    assert with_hedges.usage["second"].ok == with_hedges.fallback_attempts
    assert with_hedges.usage["first"].ok == with_hedges.messages  # losers land, billed
    assert with_hedges.percentile_ms(0.5) < ordered.percentile_ms(0.5)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            "[output_estimate]\ncomplex = 250\n",
            r"\[output_estimate.complex\] is not a traffic class \(simple\)",
        ),
        ("[output_estimate]\nsimple = -1\n", r"\[output_estimate.simple\] expected an integer"),
        (HEDGED.replace("after_fraction = 0.2", "after_fraction = 1.5"), "after_fraction"),
        (HEDGED.replace('fit = "p90"', 'fit = "p95"'), "fit"),
        (HEDGED.replace("window = 100", "windows = 100"), "windows"),
    ],
)
def test_bad_invoke_and_estimate_settings_name_the_key(
    tmp_path: Path, extra: str, message: str
) -> None:
    (tmp_path / "router.toml").write_text(ROUTER)
    with pytest.raises(ConfigError, match=message):
        parse_scenario(SCENARIO + extra, source="s.toml", base_dir=tmp_path)


def test_the_docs_hedging_example_is_a_valid_contender(tmp_path: Path) -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "simulate.md"
    text = docs.read_text("utf-8")
    section = text[text.index("## The simulated orchestrator") : text.index("## Model")]
    example = section.split("```toml\n")[1].split("```")[0]
    (tmp_path / "router.toml").write_text(ROUTER)
    both = SCENARIO.replace('contenders = ["ordered"]', 'contenders = ["ordered", "hedged"]')
    scenario = parse_scenario(both + example, source="s.toml", base_dir=tmp_path)
    hedged = scenario.contenders[1]
    assert hedged.invoke == InvokeSettings(
        fit="p50", eject_cooldown_s=3600.0, hedge=HedgePolicy(0.5, 0.05, 1000)
    )


STREAMING = dataclasses.replace(BUDGET, streaming=True)


def test_a_streamed_call_is_answered_at_its_first_token() -> None:
    """ConverseStream: the deadline is the first token's (1,200 ms here: 30 % of 4 s); the
    answer goes on arriving after it. Not streamed, the same target times out."""
    cfg = config()
    result = run(traffic(5), fleet(cfg, a=(OK, 4000.0, None)), cfg, budget=STREAMING)
    a = result.usage["a"]
    assert result.answered == 5 and result.failed == 0 and a.ok == 5 and a.timeouts == 0
    assert result.within_first_token_slo == 5  # 1,200 ms <= 1,500 ms
    assert result.within_slo == result.within_deadline == 0  # the whole answer took 4 s
    assert a.token_usd == pytest.approx(5 * 1100 / 1e6)
    assert run(traffic(5), fleet(cfg, a=(OK, 4000.0, None)), cfg).failed == 5
    # a first token after the deadline is a read timeout: only the input is billed
    late = run(traffic(5), fleet(cfg, a=(OK, 9000.0, None)), cfg, budget=STREAMING)
    assert late.failed == 5 and late.usage["a"].timeouts == 5
    assert late.usage["a"].token_usd == pytest.approx(5 * 500 / 1e6)


def test_a_hedged_stream_cancels_the_loser_at_the_first_token() -> None:
    cfg = config()
    sims = fleet(cfg, a=(OK, 2000.0, None), b=(OK, 400.0, None))
    hedge = InvokeSettings(hedge=HedgePolicy(after_fraction=0.2, max_ratio=1.0, window=100))
    result = run(traffic(10), sims, cfg, hedge, STREAMING)
    # a's first token at 600 ms beats the hedge's (500 + 120 ms): a wins every race; b's
    # streams are closed at their first token - released, not recorded, input billed
    assert calls(sims, "b") == result.fallback_attempts == 10
    assert result.answers_by_class == [10, 0, 0]
    assert result.usage["b"].attempts == 0 and result.usage["b"].ok == 0
    assert result.usage["b"].token_usd == pytest.approx(10 * 500 / 1e6)
    assert result.usage["a"].ok == 10 and result.within_first_token_slo == 10


RETRYING = """
[contenders.retrying]
description = "first, then second; a fast error retried on the same target"
[contenders.retrying.invoke.retry]
max_per_call = 1
max_ratio = 0.5
backoff_ms = 10
[contenders.retrying.invoke.retry.per_class]
simple = 1
"""


def test_a_contender_retries_fast_errors_with_the_production_plan(tmp_path: Path) -> None:
    """The simulator runs ``mangaroute.invoke``'s retry rules: with 40 % of first's calls
    failing fast at random, the retrying contender tries first again and pays second's ten
    times higher price less often; the bound allows the second attempt on a target."""
    (tmp_path / "router.toml").write_text(ROUTER)
    text = SCENARIO.replace('contenders = ["ordered"]', 'contenders = ["ordered", "retrying"]')
    errors = (
        '[[faults]]\nkind = "fast_errors"\ntarget = "first"\nstart = "10:00"\nminutes = 60\n'
        "probability = 0.4\n"
    )
    scenario = parse_scenario(text + RETRYING + errors, source="s.toml", base_dir=tmp_path)
    plain, retrying = scenario.contenders
    assert plain.invoke.retry is None
    assert retrying.invoke.retry == RetryPolicy(
        max_per_call=1, max_ratio=0.5, backoff_ms=10, per_class={"simple": 1}
    )
    assert limits_of(scenario).attempts == 2
    scenario = dataclasses.replace(
        scenario, traffic=dataclasses.replace(scenario.traffic, window=(36_000.0, 36_600.0))
    )
    simulation = simulate(scenario, jobs=1)
    ordered, retried = simulation.results
    n = ordered.messages
    # ordered: every error goes to second; retrying: most errors get a second try on first
    assert ordered.usage["second"].ok > 0.3 * n
    assert retried.usage["first"].attempts > 1.2 * n
    assert retried.usage["second"].ok < 0.5 * ordered.usage["second"].ok
    assert retried.total_usd < ordered.total_usd
    # retries within the budget: at most half the calls
    assert retried.usage["first"].attempts <= 1.5 * n + 1
    bound = simulation.bound
    assert bound is not None and retried.within_slo <= bound.within_slo
