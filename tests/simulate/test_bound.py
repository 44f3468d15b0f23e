"""The bound: its LPs on hand-computed cases, its capacity relaxation, its place in the report,
and the property that no shipped policy beats it on random small days."""

from __future__ import annotations

import dataclasses
import json
import random
import re
from array import array
from importlib import resources
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mangaroute.core.targets import Capacity, LatencyProfile, Pattern, Pricing, Target
from mangaroute.simulate import bound as lp
from mangaroute.simulate.fleet import Fault, Fleet, TargetModel
from mangaroute.simulate.report import first_token_answers, to_dict, to_text
from mangaroute.simulate.run import Simulation, bound_fleet, limits_of, simulate
from mangaroute.simulate.scenario import (
    Scenario,
    builtin_scenarios,
    load_scenario,
    parse_scenario,
)
from mangaroute.simulate.traffic import Replay, Traffic, generate
from tests.simulate.test_cli import TINY, run

PRICE_IN, PRICE_OUT = 1e-6, 2e-6


def per_token(tin: int, tout: int) -> float:
    return tin * PRICE_IN + tout * PRICE_OUT


def free(tin: int, tout: int) -> float:
    return 0.0


def demand(rows: list[tuple[int, int, int, int, int, int]], windows: int = 1) -> lp.Demand:
    """``(window, full mask, first-token mask, count, input, output)`` per group."""
    window, full, first, count, tin, tout = (
        np.array(col, dtype=np.int64) for col in zip(*rows, strict=True)
    )
    return lp.Demand(window, full, first, count, tin, tout, windows, int(count.sum()))


# -- the LPs, by hand -----------------------------------------------------------------------


def test_free_capacity_first_then_the_cheapest_feasible_target() -> None:
    """Three messages of 200 tokens fit either target, two of 600 only the paid one, one
    none. Paid capacity of 400 tokens takes two of the small ones; the third and the two
    large ones pay: 1 x (100 + 2 x 100) + 2 x (200 + 2 x 400) micro-dollars."""
    day = demand([(0, 0b11, 0b11, 3, 100, 100), (0, 0b10, 0b10, 2, 200, 400), (0, 0, 0, 1, 50, 50)])
    lanes = [
        lp.Lane("provisioned", [400.0], None, free),
        lp.Lane("on-demand", None, None, per_token),
    ]
    problem = lp.BoundProblem(day, lanes)
    assert problem.max_answers() == pytest.approx(5.0)
    exact = 300e-6 + 2 * 1000e-6
    assert problem.min_token_usd(5) == pytest.approx(exact, rel=1e-6)
    assert problem.cost_at_most_answers(5.0) == pytest.approx(exact, rel=1e-4)
    assert problem.cost_at_most_answers(5.0) <= exact
    assert problem.min_token_usd(2) == 0.0  # two answers fit the free capacity
    assert problem.min_token_usd(3) == pytest.approx(300e-6, rel=1e-6)
    with pytest.raises(ValueError, match="did not solve"):
        problem.min_token_usd(6)


def test_capacity_limits_answers_and_a_fraction_rounds_down() -> None:
    """Four 200-token messages on one target that settles 500 tokens a window: 2.5 in the
    LP, so no policy answers more than 2; a second window adds its own capacity."""
    one = lp.BoundProblem(demand([(0, 1, 1, 4, 120, 80)]), [lp.Lane("t", [500.0], None, free)])
    assert one.max_answers() == pytest.approx(2.5)
    assert lp._count(one.max_answers()) == 2
    two = lp.BoundProblem(
        demand([(0, 1, 1, 4, 120, 80), (1, 1, 1, 1, 120, 80)], windows=2),
        [lp.Lane("t", [500.0, 500.0], None, free)],
    )
    assert two.max_answers() == pytest.approx(3.5)


def test_the_cost_of_the_most_whole_answers_is_bounded_below() -> None:
    """The same four messages on a paid target: 2 answers cost 2 x 280 micro-dollars. The
    Lagrangian (weight 0.5 on the dearest answer, 280) keeps all 2.5, so its bound for 2 is
    short by the surplus 0.5 x 1 / mu = 0.5 x 560: 420 - below the exact 560, never above."""
    one = lp.BoundProblem(demand([(0, 1, 1, 4, 120, 80)]), [lp.Lane("t", [500.0], None, per_token)])
    assert one.min_token_usd(2) == pytest.approx(560e-6, rel=1e-6)
    assert one.cost_at_most_answers(2) == pytest.approx(420e-6, rel=1e-4)
    assert one.cost_at_most_answers(2.5) == pytest.approx(700e-6, rel=1e-4)


def test_requests_burndown_and_first_tokens_are_their_own_limits() -> None:
    """A request limit of 3 per window; output counting 5x against 2,000 tokens (100 in + 5 x
    100 out = 600 a message: 3.33); first tokens in time on a second, unlimited target."""
    day = demand([(0, 0b01, 0b10, 10, 100, 100)])
    lanes = [
        lp.Lane("a", None, [3.0], per_token),
        lp.Lane("b", None, None, per_token),
    ]
    assert lp.BoundProblem(day, lanes).max_answers() == pytest.approx(3.0)
    assert lp.BoundProblem(day, lanes).max_answers(first_token=True) == pytest.approx(10.0)
    burned = [lp.Lane("a", [2000.0], None, per_token, output_weight=5.0), lanes[1]]
    assert lp.BoundProblem(day, burned).max_answers() == pytest.approx(2000 / 600)


def test_groups_charge_their_smallest_tokens_and_split_by_signature() -> None:
    """Four messages in one window: bins 1.25 wide put 100 and 105 input tokens together
    (charged 100), 300 apart; a different feasibility mask is a group of its own."""
    traffic = Traffic(
        ("simple",),
        array("q", [1, 2, 3, 4]),
        array("b", [0, 0, 0, 0]),
        array("H", [100, 105, 300, 100]),
        array("H", [50, 52, 50, 50]),
        array("I", [0, 0, 0, 0]),
        array("d", [0.1, 0.2, 0.3, 0.4]),
        window=(0.0, 600.0),
    )
    full = np.array([1, 1, 1, 3], dtype=np.uint16)
    day = lp.aggregate(traffic, full, full, np.ones(4, dtype=bool))
    rows = sorted(
        zip(
            day.full_mask.tolist(),
            day.count.tolist(),
            day.input_tokens.tolist(),
            day.output_tokens.tolist(),
            strict=True,
        )
    )
    assert rows == [(1, 1, 300, 50), (1, 2, 100, 50), (3, 1, 100, 50)]
    assert day.messages == 4 and day.feasible_full == 4 and day.unanswerable == 0


# -- capacity as relaxed --------------------------------------------------------------------


def bedrock(name: str, tpm: float, **kw: Any) -> Target:
    return Target(
        name,
        Pattern.BEDROCK_ON_DEMAND,
        f"model-{name}",
        "ap-northeast-1",
        LatencyProfile(500, 800, 1200),
        capacity=Capacity(tokens_per_minute=tpm),
        pricing=Pricing(1.0, 2.0),
        **kw,
    )


def test_a_windows_tokens_are_a_bucket_plus_its_refill_times_the_best_factor() -> None:
    """6,000 tokens/min: 100/s, a 1,500-token bucket (15 s). A 300 s window reaches 2.5 s
    past its end (the cutoff): 1,500 + 100 x 302.5. A quota cut to half that covers the whole
    second window halves it; one that ends inside the third leaves it whole. A day ending
    60 s into the third window leaves it 62.5 s of refill (and the cut covers all of it)."""
    fleet = Fleet.build((bedrock("t", 6000.0),), {"t": TargetModel(physics="seed-profiles")}, [])
    faults = [
        Fault("quota_cut", "t", 300.0, 700.0, factor=0.5),
    ]
    limits = lp.Limits(1500.0, 1500.0, 2500.0)
    lanes = lp.lanes_of(fleet, faults, limits, start_s=0.0, windows=3, window_s=300.0)
    whole = 1500 + 100 * 302.5
    assert lanes[0].tokens == pytest.approx([whole, whole / 2, whole])
    assert lanes[0].requests is None
    short = lp.lanes_of(fleet, faults, limits, start_s=0.0, windows=3, window_s=300.0, end_s=660)
    assert short[0].tokens == pytest.approx([whole, whole / 2, (1500 + 100 * 62.5) / 2])


def test_a_target_that_reserves_max_tokens_gets_one_limit_for_the_whole_run() -> None:
    """Bedrock reserves input + max_tokens and gives back the rest when a call ends - which
    may be long after (an abandoned call runs on), so a window can settle more than its
    bucket and refill. On traffic that records max_tokens, a target that reserves gets one
    limit for the run: a full bucket plus the refill over 600 s and the 2.5 s cutoff; a
    target that does not reserve keeps its windows. On a drawn day (no max_tokens) both do."""
    fleet = Fleet.build(
        (bedrock("t", 6000.0), bedrock("p", 6000.0)),
        {"t": TargetModel(), "p": TargetModel(physics="seed-profiles")},
        [],
    )
    assert fleet.by_name["t"].reserves and not fleet.by_name["p"].reserves
    recorded = Traffic(
        ("simple",),
        array("q", [100 * 10**9, 298 * 10**9, 299 * 10**9]),
        array("b", [0, 0, 0]),
        array("H", [500, 50, 100]),
        array("H", [10, 10, 10]),
        array("I", [0, 0, 0]),
        array("d", [0.1, 0.2, 0.3]),
        window=(0.0, 600.0),
        max_tokens=array("I", [900, 0, 400]),
    )
    limits = lp.Limits(1500.0, 1500.0, 2500.0)
    kw: dict[str, Any] = {"start_s": 0.0, "windows": 2, "window_s": 300.0, "end_s": 600.0}
    whole = 1500 + 100 * 302.5
    reserves, keeps = lp.lanes_of(fleet, [], limits, traffic=recorded, **kw)
    assert reserves.tokens is None and reserves.run_tokens == pytest.approx(1500 + 100 * 602.5)
    assert keeps.tokens == pytest.approx([whole, whole]) and keeps.run_tokens is None
    drawn = dataclasses.replace(recorded, max_tokens=None)
    for lane in lp.lanes_of(fleet, [], limits, traffic=drawn, **kw):
        assert lane.tokens == pytest.approx([whole, whole]) and lane.run_tokens is None
    day = demand([(0, 1, 1, 300, 100, 100), (1, 1, 1, 100, 100, 100)], windows=2)
    assert lp.BoundProblem(day, [reserves]).max_answers() == pytest.approx(61750 / 200)


def test_hindsight_masks_come_from_each_targets_earliest_answer() -> None:
    """Target ``a`` is down until 300 s, ``b`` until 200 s: a message at 100 s has no
    target (it counts as unanswerable), one at 250 s only ``b``; after 300 s each bit is
    what ``earliest_answer`` says for that target within the 1.5 s SLO (900 output tokens:
    three times the profile's reference, so the slower draws miss it)."""
    targets = (bedrock("a", 1e6), bedrock("b", 1e6))
    faults = [Fault("outage", "a", 0.0, 300.0), Fault("outage", "b", 0.0, 200.0)]
    models = {name: TargetModel(physics="seed-profiles") for name in ("a", "b")}
    fleet = Fleet.build(targets, models, faults)
    n = 40
    traffic = Traffic(
        ("simple",),
        array("q", [100 * 10**9, 250 * 10**9] + [(400 + k) * 10**9 for k in range(n)]),
        array("b", [0] * (n + 2)),
        array("H", [500] * (n + 2)),
        array("H", [900] * (n + 2)),
        array("I", [0] * (n + 2)),
        array("d", [k / (n + 2) for k in range(n + 2)]),
        window=(0.0, 600.0),
    )
    limits = lp.Limits(1500.0, 1500.0, 2500.0)
    full, first, reachable = lp.feasibility(traffic, fleet, {"simple": ("a", "b")}, limits)
    assert full[:2].tolist() == [0, 0b10] and not reachable[0] and reachable[1]
    for i in range(2, n + 2):
        want = 0
        for bit, sim in enumerate(fleet.targets):
            earliest = sim.earliest_answer(
                traffic.time_ns[i], traffic.draw[i], 500, 900, horizon_ms=2500.0
            )
            if earliest is not None and earliest[0] <= 1500.0:
                want |= 1 << bit
        assert full[i] == want
    assert 0 < sum(1 for f in full[2:] if f == 0b11) < n  # the tail misses some
    day = lp.aggregate(traffic, full, first, reachable)
    assert day.unanswerable == 1 and day.messages == n + 2


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(-3, 3), st.integers(0, 40), st.integers(0, 2)), max_size=60))
def test_packed_grouping_is_numpys_unique_by_column(rows: list[tuple[int, int, int]]) -> None:
    key = np.array(rows, dtype=np.int64).reshape(-1, 3).T
    groups, inverse = lp._unique_columns(key)
    want, where = np.unique(key, axis=1, return_inverse=True)
    assert groups.tolist() == want.tolist()
    assert inverse.tolist() == where.reshape(-1).tolist()


# -- the report -----------------------------------------------------------------------------


def tiny(**kw: Any) -> Simulation:
    scenario = load_scenario("default")
    scenario = dataclasses.replace(
        scenario,
        traffic=dataclasses.replace(scenario.traffic, window=(21 * 3600.0, 21 * 3600.0 + 60)),
    )
    return simulate(scenario, messages=100_000, **{"jobs": 1, **kw})


def test_json_and_text_carry_the_bound_and_every_policys_regret() -> None:
    simulation = tiny(contenders=["seed-hybrid", "mangaroute"])
    bound = simulation.bound
    assert bound is not None
    data = json.loads(json.dumps(to_dict(simulation)))
    assert data["bound"]["within_slo"] == bound.within_slo
    assert data["bound"]["cost"]["usd_per_day"] == round(bound.total_usd, 2)
    for entry, result in zip(data["policies"], simulation.results, strict=True):
        regret = entry["regret"]
        assert regret["within_slo"] == bound.within_slo - result.within_slo >= 0
        assert entry["within_slo"] == result.within_slo
        assert regret["cost_usd"] == round(result.total_usd - bound.total_usd, 2)
        first = first_token_answers(result)
        if first is not None:
            assert regret["within_first_token_slo"] == bound.within_first_token_slo - first
    text = to_text(simulation)
    assert "SLO regret" in text and "cost vs bound" in text and "\nbound " in text
    assert "oracle" not in text


def test_worker_processes_give_the_same_bound_and_results() -> None:
    """In worker processes the bound's hindsight runs in slices and is solved beside the
    policies: the same figures as one process."""
    one = tiny(contenders=["seed-hybrid", "mangaroute"])
    two = tiny(contenders=["seed-hybrid", "mangaroute"], jobs=2)
    assert two.jobs == 2 and one.bound is not None and two.bound is not None
    pick = ("within_slo", "within_first_token_slo", "token_usd", "fixed_usd", "groups")
    assert [getattr(two.bound, k) for k in pick] == [getattr(one.bound, k) for k in pick]
    assert [r.within_slo for r in two.results] == [r.within_slo for r in one.results]


def test_without_the_bound_there_is_no_regret() -> None:
    simulation = tiny(contenders=["seed-hybrid"], bound=False)
    assert simulation.bound is None
    data = to_dict(simulation)
    assert data["bound"] is None and "regret" not in data["policies"][0]
    assert "SLO regret" not in to_text(simulation)
    assert tiny(contenders=["seed-hybrid"], oracle=False).bound is None  # the old name


def test_without_scipy_the_cli_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bound is the simulate extra's; without scipy a run says so (exit 2, no
    traceback) and ``--no-bound`` still runs."""
    monkeypatch.setattr(lp, "_IMPORT_ERROR", ImportError("No module named 'scipy'"))
    code, out = run([*TINY, "--policies", "seed-hybrid"])
    assert code == 2
    assert "pip install 'mangaroute[simulate]'" in out and "--no-bound" in out
    code, out = run([*TINY, "--policies", "seed-hybrid", "--no-bound"])
    assert code == 0 and "seed-hybrid" in out


# -- no policy beats it ---------------------------------------------------------------------

KINDS = ("outage", "throttle_storm", "slowdown", "fast_errors", "quota_cut")
TARGETS = ("provisioned-sonnet", "ondemand-haiku", "ondemand-sonnet", "sagemaker-manga")


def shipped(name: str, physics: str) -> Scenario:
    """A shipped scenario with the targets' physics chosen."""
    text = resources.files("mangaroute").joinpath("data", "scenarios", f"{name}.toml")
    body = re.sub(r'^model = "[^"]*"', f'model = "{physics}"', text.read_text("utf-8"), flags=re.M)
    assert f'model = "{physics}"' in body
    return parse_scenario(body, source=f"<test>/{name}.toml")


@st.composite
def days(draw: st.DrawFn) -> tuple[Scenario, int]:
    name = draw(st.sampled_from(builtin_scenarios()))
    scenario = shipped(name, draw(st.sampled_from(["seed-profiles", "published"])))
    start = draw(st.integers(18 * 60, 23 * 60)) * 60.0
    faults = []
    for _ in range(draw(st.integers(0, 3))):
        begin = start + draw(st.integers(0, 50))
        faults.append(
            Fault(
                draw(st.sampled_from(KINDS)),
                draw(st.sampled_from(TARGETS)),
                begin,
                begin + draw(st.integers(5, 60)),
                factor=draw(st.sampled_from([0.1, 0.5, 2.0, 4.0])),
                probability=draw(st.sampled_from([0.0, 0.3, 0.9])),
            )
        )
    overrides = {
        name: {"tokens_per_minute": draw(st.sampled_from([200_000, 1_000_000, 4_000_000]))}
        for name in ("ondemand-haiku", "ondemand-sonnet")
        if draw(st.booleans())
    }
    scenario = dataclasses.replace(
        scenario,
        seed=draw(st.integers(0, 10_000)),
        faults=scenario.faults + tuple(faults),
        fleet_overrides={**scenario.fleet_overrides, **overrides},
        traffic=dataclasses.replace(scenario.traffic, window=(start, start + 60.0)),
    )
    messages = draw(st.integers(40_000, 160_000))
    if draw(st.booleans()):  # a replayed trace that records max_tokens and cached input
        scenario = as_replay(scenario, messages, draw(st.integers(0, 2**32 - 1)))
    return scenario, messages


def as_replay(scenario: Scenario, messages: int, seed: int) -> Scenario:
    """The scenario's day (at ``messages`` a day) as a trace that records ``max_tokens`` (0,
    or 1-4x the answer) and cached input tokens (none, or up to all of them)."""
    model = dataclasses.replace(scenario.traffic, messages=messages)
    day = generate(model, scenario.seed)
    rng = random.Random(seed)
    replay = Replay(
        day.classes,
        day.time_ns,
        day.klass,
        day.input_tokens,
        day.output_tokens,
        day.window,
        max_tokens=array("I", [rng.choice([0, t, 2 * t, 4 * t]) for t in day.output_tokens]),
        cached_tokens=array("I", [rng.choice([0, 0, t // 2, t]) for t in day.input_tokens]),
    )
    return dataclasses.replace(
        scenario, traffic=dataclasses.replace(scenario.traffic, replay=replay)
    )


@pytest.mark.slow
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(days())
def test_no_shipped_policy_beats_the_bound(day: tuple[Scenario, int]) -> None:
    """A few hundred messages in one evening minute of a shipped scenario (its faults and
    random ones, random quotas, either physics, drawn or replayed with max_tokens and cached
    input), every shipped contender: none answers more
    within the SLO, none fails fewer than the messages no target can answer, and none pays
    less than the bound's cost at its own coverage. A policy that does is a simulator bug."""
    scenario, messages = day
    simulation = simulate(scenario, messages=messages, jobs=1)
    bound = simulation.bound
    assert bound is not None and bound.messages == len(simulation.traffic)
    fleet, classes = bound_fleet(simulation.scenario, simulation.traffic, simulation.scale)
    _, problem = lp.compute_bound(
        simulation.traffic, fleet, classes, simulation.scenario.faults, limits_of(scenario)
    )
    assert len(simulation.results) == len(scenario.contenders) >= 10
    for result in simulation.results:
        assert result.within_slo <= bound.within_slo, result.name
        first = first_token_answers(result)
        if first is not None:
            assert first <= bound.within_first_token_slo, result.name
        assert result.failed >= bound.unanswerable, result.name
        streamed = limits_of(scenario).streaming
        if streamed:  # answered at the first token: the cost floor is at that coverage
            assert first is not None
            floor = bound.fixed_usd + problem.min_token_usd(first, first_token=True)
        else:
            floor = bound.fixed_usd + problem.min_token_usd(result.within_slo)
        assert result.total_usd >= floor * (1 - 1e-6) - 1e-9, result.name


def test_blind_first_tokens_are_the_best_targets_chance_and_hindsight_adds_the_other_draw() -> None:
    """Seed physics, profile 500/800/1,200 ms: the first token is 0.35 x 500 = 175 ms times
    the multiplier, whose p90 is 800 / 500 = 1.6; at a 280 ms first-token SLO each target
    answers in time with chance 0.9 (baseline errors are off under these physics). Sending a
    message to either target, a policy may expect 90 % of first tokens within the SLO; the
    bound's hindsight sees each message's two independent draws and gets about
    1 - 0.1 x 0.1 = 99 % of them."""
    targets = (bedrock("a", 1e9), bedrock("b", 1e9))
    models = {name: TargetModel(physics="seed-profiles") for name in ("a", "b")}
    fleet = Fleet.build(targets, models, [])
    n = 2000
    rng = random.Random(7)
    traffic = Traffic(
        ("simple",),
        array("q", [k * 10**8 for k in range(n)]),
        array("b", [0] * n),
        array("H", [500] * n),
        array("H", [300] * n),
        array("I", [0] * n),
        array("d", [rng.random() for _ in range(n)]),
        window=(0.0, 300.0),
    )
    limits = lp.Limits(1500.0, 280.0, 2500.0)
    blind, seen = lp.blind_first_tokens(traffic, fleet, {"simple": ("a", "b")}, limits)
    assert blind / n == pytest.approx(0.90, abs=0.002)
    assert 0.98 <= seen / n <= 1.0
    alone, seen_alone = lp.blind_first_tokens(traffic, fleet, {"simple": ("a",)}, limits)
    assert alone == pytest.approx(blind)
    assert seen_alone / n == pytest.approx(0.90, abs=0.03)  # one draw: hindsight adds nothing
