"""Many replicas on one fleet of targets, without and with shared state: the same bad-day
peak, and what sharing changes - provisioned overrun and throttles, primary disagreement,
switch announcements - plus determinism, the one-router path and the CLI's checks."""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
from typing import Any

import pytest

from mangaroute.core.errors import MangarouteError
from mangaroute.simulate import load_scenario, simulate, to_dict, to_text
from mangaroute.simulate.cli import register
from mangaroute.simulate.engine import distinct_switches
from mangaroute.simulate.run import Simulation
from mangaroute.simulate.scenario import with_faults

PEAK = (20 * 3600 + 45 * 60.0, 20 * 3600 + 57 * 60.0)
"""12 minutes of the bad day's evening peak: 10 normal ones, then provisioned Sonnet goes down
at 20:55 (the switcher's primary switches away from it)."""
PROVISIONED = "provisioned-sonnet"
CAPACITY = 80_000  # 2 model units x 40,000 tokens/min


def _scenario(window: tuple[float, float]) -> Any:
    # The bad day on the seed's whole-call physics (the figures below were measured there).
    scenario = with_faults(load_scenario("seed"), ["provisioned-outage", "flash-sale"])
    return dataclasses.replace(
        scenario, traffic=dataclasses.replace(scenario.traffic, window=window)
    )


def _by_label(simulation: Simulation) -> dict[str, dict[str, Any]]:
    return {entry["label"]: entry for entry in to_dict(simulation)["policies"]}


@pytest.fixture(scope="module")
def peak() -> dict[str, dict[str, Any]]:
    """mangaroute and the seed's switcher as one router, and as 8 replicas without and with
    shared state, on the same 12 minutes."""
    scenario = _scenario(PEAK)
    policies = ["mangaroute", "seed-switcher"]
    one = simulate(scenario, contenders=policies, oracle=False, jobs=2)
    eight = simulate(scenario, contenders=policies, replicas=8, oracle=False, jobs=2)
    return {**_by_label(one), **_by_label(eight)}


def _provisioned(entry: dict[str, Any]) -> dict[str, Any]:
    capacity: dict[str, Any] = entry["capacity"][PROVISIONED]
    assert capacity["hourly_paid"] and capacity["capacity_tokens_per_minute"] == CAPACITY
    return capacity


def test_labels_and_traffic_split(peak: dict[str, dict[str, Any]]) -> None:
    assert set(peak) == {
        "mangaroute",
        "seed-switcher",
        "mangaroute x8 local",
        "mangaroute x8 shared",
        "seed-switcher x8 local",
        "seed-switcher x8 shared",
    }
    local, shared = peak["mangaroute x8 local"], peak["mangaroute x8 shared"]
    assert local["messages"] == shared["messages"] == peak["mangaroute"]["messages"]
    split = local["replicas"]["messages_per_replica"]
    assert split == shared["replicas"]["messages_per_replica"]  # the same sessions, same replicas
    assert sum(split) == local["messages"]
    assert max(split) < 1.1 * local["messages"] / 8 < 1.2 * min(split)  # sessions spread evenly
    assert local["replicas"]["syncs"] == 0
    assert shared["replicas"]["syncs"] == 8 * 4 * 12 * 60  # every 250 ms per replica
    assert shared["replicas"]["sync_failures"] == 0
    assert peak["mangaroute"]["replicas"] is None


def test_without_shared_state_the_replicas_overrun_provisioned_together(
    peak: dict[str, dict[str, Any]],
) -> None:
    local = _provisioned(peak["mangaroute x8 local"])
    shared = _provisioned(peak["mangaroute x8 shared"])
    # each replica sees an eighth of the load, judges provisioned Sonnet nearly idle and sends
    # it every complex question: the fleet offers ~8-10x what it can take, minute after minute
    # (until it goes down at 20:55)
    assert local["peak_offered_ratio"] > 9.0
    assert local["mean_offered_ratio"] > 7.5
    assert local["minutes_over_capacity"] == 10
    assert local["throttled"] > 0.8 * local["attempts"]
    assert local["throttled"] > 7 * shared["throttled"]
    assert local["offered_over_capacity_tokens"] > 6 * shared["offered_over_capacity_tokens"]


def test_with_shared_state_eight_replicas_load_provisioned_like_one_router(
    peak: dict[str, dict[str, Any]],
) -> None:
    """What the simulated fleet admits never exceeds capacity (the token bucket sees to
    that); what a policy *offers* is its own choice - mangaroute's spill-over deliberately
    offers more than the room (fast 429s buy the last tokens); told each answer's estimated
    length (not its realised one), one router that sees all traffic offers about the
    capacity on average. With shared state the eight replicas offer close to what that one
    router offers - more in the busiest minute, from what arrives between syncs - and a
    small fraction of what eight replicas alone offer."""
    one = _provisioned(peak["mangaroute"])
    shared = _provisioned(peak["mangaroute x8 shared"])
    alone = _provisioned(peak["mangaroute x8 local"])
    assert 1.0 < one["mean_offered_ratio"] < 1.2
    assert shared["mean_offered_ratio"] < 1.2 * one["mean_offered_ratio"]
    assert shared["peak_offered_ratio"] < 1.6 * one["peak_offered_ratio"]
    assert shared["offered_over_capacity_tokens"] < 1.7 * one["offered_over_capacity_tokens"]
    assert alone["offered_over_capacity_tokens"] > 20 * shared["offered_over_capacity_tokens"]
    assert shared["throttled"] < 1.8 * one["throttled"]
    # the seed's switcher: about as many tokens offered either way, but spread across the
    # minute by one fleet-wide view rather than eight bursts - under half the throttles
    local = _provisioned(peak["seed-switcher x8 local"])
    together = _provisioned(peak["seed-switcher x8 shared"])
    assert local["throttled"] > 2 * together["throttled"]


def test_shared_state_makes_one_switch_one_announcement(peak: dict[str, dict[str, Any]]) -> None:
    local = peak["seed-switcher x8 local"]["replicas"]
    shared = peak["seed-switcher x8 shared"]["replicas"]
    # alone, every replica notices the outage and announces its own switch; the failover
    # plan rebuilds a replica's snapshot at its first failed call (as RoutedClient does), so
    # each notices within seconds - but not at the same second
    assert local["switch_events"] == 8
    assert local["distinct_switches"] == 1
    assert local["seconds_primary_disagreed"] >= 3
    # shared: the compare-and-set winner announces it, the others adopt it silently, at
    # their next sync (a second's sample may fall between)
    assert shared["switch_events"] == shared["distinct_switches"] == 1
    assert shared["seconds_primary_disagreed"] <= 1
    events = [e for e in peak["seed-switcher x8 local"]["events"] if e["event"] == "switch"]
    assert sorted(e["replica"] for e in events) == [f"r{r}" for r in range(8)]
    assert {(e["from"], e["to"]) for e in events} == {(PROVISIONED, "ondemand-haiku")}
    # policies without a switcher have no primary to disagree on
    assert peak["mangaroute x8 local"]["replicas"]["seconds_primary_disagreed"] == 0


def test_the_report_shows_both_side_by_side(peak: dict[str, dict[str, Any]]) -> None:
    scenario = _scenario((20 * 3600.0, 20 * 3600 + 120.0))
    simulation = simulate(scenario, contenders=["seed-switcher"], replicas=3, oracle=False)
    text = to_text(simulation)
    assert "seed-switcher x3 local" in text and "seed-switcher x3 shared" in text
    assert "3 replicas per policy on the same targets, without and with shared state" in text
    assert "switch events / distinct" in text


def test_one_replica_is_the_single_router_path() -> None:
    """Figures of the bad day's 20:30-21:30 for mangaroute through the one-router path,
    pinned (first as they were before replicas existed; re-pinned when the simulator moved to
    invoke's failover plan and output estimates: throttles fell from 2,117 to 582; and when
    the tier ranker let the fine-tuned model yield past the SLO: 4 fewer failed, $2.71 more)."""
    simulation = simulate(
        _scenario((20 * 3600 + 30 * 60.0, 21 * 3600 + 30 * 60.0)),
        contenders=["mangaroute"],
        oracle=False,
        replicas=1,
        shared="off",
    )
    entry = to_dict(simulation)["policies"][0]
    assert entry["label"] == "mangaroute" and entry["replicas"] is None
    assert entry["messages"] == 164_742
    assert entry["within_deadline"] == 164_386
    assert entry["failed"] == 356
    assert entry["attempt_outcomes"] == {
        "ok": 164_386,
        "throttled": 583,
        "error": 11,
        "timeout": 356,
    }
    assert entry["cost"]["usd_per_day"] == 523.3
    assert entry["latency_ms"] == {"p50": 1066.0, "p90": 1610.0, "p99": 2330.0}
    assert entry["breaker_openings"] == 7


def _strip(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _strip(v) for k, v in data.items() if k not in ("wall_s", "cpu_s", "generate_s")}
    if isinstance(data, list):
        return [_strip(v) for v in data]
    return data


def test_same_seed_same_json() -> None:
    scenario = _scenario((20 * 3600 + 54 * 60.0, 20 * 3600 + 57 * 60.0))
    runs = [
        json.dumps(
            _strip(
                to_dict(
                    simulate(
                        scenario,
                        contenders=["seed-switcher"],
                        replicas=4,
                        oracle=False,
                        jobs=1,
                    )
                )
            ),
            sort_keys=True,
        )
        for _ in range(2)
    ]
    assert runs[0] == runs[1]
    other = simulate(scenario, contenders=["seed-switcher"], replicas=4, oracle=False, seed=8)
    assert json.dumps(_strip(to_dict(other)), sort_keys=True) != runs[0]


def test_distinct_switches_counts_echoes_once() -> None:
    a, b, c = "provisioned-sonnet", "ondemand-haiku", "ondemand-sonnet"
    s = 1_000_000_000
    assert distinct_switches([]) == 0
    echoes = [(t * s, a, b) for t in (100, 101, 130, 150)]  # 4 replicas, each on its own
    assert distinct_switches(echoes) == 1
    assert distinct_switches([*echoes, (400 * s, b, a), (401 * s, b, a)]) == 2
    # a fleet flapping back and forth switches every time
    assert distinct_switches([(1 * s, b, c), (2 * s, c, b), (3 * s, b, c)]) == 3


def _run(argv: list[str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="mangaroute")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["simulate", *argv])
    out = io.StringIO()
    try:
        code = args.handler(args, out)
    except MangarouteError as exc:
        return 2, str(exc)
    return code, out.getvalue()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--replicas", "0"], "argument --replicas: must be >= 1 (one router per replica), got 0"),
        (
            ["--replicas", "-3"],
            "argument --replicas: must be >= 1 (one router per replica), got -3",
        ),
        (
            ["--replicas", "two"],
            "argument --replicas: expected a whole number of replicas, got 'two'",
        ),
        (["--shared", "maybe"], "argument --shared: invalid choice: 'maybe'"),
        (["--sync-ms", "0"], "argument --sync-ms: must be > 0 ms, got 0"),
        (["--sync-ms", "nan"], "argument --sync-ms: must be > 0 ms, got nan"),
    ],
)
def test_cli_rejects_bad_replica_options(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        _run(argv)
    assert done.value.code == 2
    assert message in capsys.readouterr().err


def test_simulate_rejects_bad_replica_arguments() -> None:
    scenario = _scenario((20 * 3600.0, 20 * 3600 + 60.0))
    with pytest.raises(MangarouteError, match=r"--replicas must be >= 1, got 0"):
        simulate(scenario, replicas=0)
    with pytest.raises(MangarouteError, match=r"--shared must be one of off, on, both"):
        simulate(scenario, replicas=2, shared="sometimes")
    with pytest.raises(MangarouteError, match=r"--sync-ms must be > 0, got -5"):
        simulate(scenario, replicas=2, sync_ms=-5)


def test_cli_help_explains_replicas(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _run(["--help"])
    text = capsys.readouterr().out
    for option in ("--replicas N", "--shared {off,on,both}", "--sync-ms MS", "20-22"):
        assert option in text


def test_cli_runs_replicas_as_json() -> None:
    code, out = _run(
        [
            "--scenario",
            "bad-day",
            "--policies",
            "seed-switcher",
            "--replicas",
            "2",
            "--shared",
            "on",
            "--sync-ms",
            "500",
            "--hours",
            "20:55-20:57",
            "--no-oracle",
            "--json",
        ]
    )
    assert code == 0
    data = json.loads(out)
    assert data["run"]["replicas"] == 2 and data["run"]["shared"] == "on"
    [entry] = data["policies"]
    assert entry["label"] == "seed-switcher x2 shared"
    assert entry["replicas"]["sync_ms"] == 500.0
    assert entry["replicas"]["syncs"] == 2 * 2 * 120  # 2 replicas x 2 a second x 120 s
