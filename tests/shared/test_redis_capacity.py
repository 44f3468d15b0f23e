"""Eight replicas at the MangaAssist peak on one provisioned target, through a real Redis.

Peak: 81 requests/s fleet-wide (docs/planning.md: 1M messages/day x the seed's 7x peak
factor), about 400 tokens per call (1,944,444 tokens/min at peak / 81 / 60). The provisioned
target holds 960,000 tokens/min - about half the peak - and the class spills the rest to
on-demand. Alone, each replica sees an eighth of the load, decides the paid target has room
for all of it, and the fleet overruns it; sharing usage, the fleet fills it to its 90 % target
and no further, within one sync interval's traffic.
"""

from __future__ import annotations

import random
from collections import deque

from mangaroute import FakeClock, Router, parse_config
from mangaroute.shared import SharedState
from tests.shared.helpers import FLEET_CONFIG, START_NS, WALL_START, settings

REPLICAS = 8
PEAK_RPS = 81
TOKENS = 400
UNITS = 16
CAPACITY_TPM = UNITS * 60_000  # 960,000 tokens/min
SYNC_MS = 250
SECONDS = 150
WARMUP_S = 60


def _fleet_usage(url: str | None, deployment: str) -> list[float]:
    """Tokens/min the fleet sent to ``paid`` over each trailing 60 s, sampled every second
    after the warm-up."""
    config = parse_config(
        FLEET_CONFIG.replace("model_units = 1", f"model_units = {UNITS}"), source="peak.toml"
    )
    assert config.target("paid").capacity.tokens_per_minute == CAPACITY_TPM
    clock = FakeClock(START_NS)
    routers = [
        Router(config, clock=clock, rng=random.Random(i), wall_clock=lambda: WALL_START)
        for i in range(REPLICAS)
    ]
    states = (
        [
            SharedState(
                r, settings(url, deployment, f"r{i}", sync_interval_ms=SYNC_MS), start=False
            )
            for i, r in enumerate(routers)
        ]
        if url
        else []
    )
    arrivals = random.Random(7)
    per_second: deque[int] = deque(maxlen=60)
    samples = []
    step_ms = 1000 // PEAK_RPS
    for second in range(SECONDS):
        sent = 0
        for tick in range(PEAK_RPS):
            clock.advance(ms=step_ms if tick else 1000 - step_ms * (PEAK_RPS - 1))
            router = routers[arrivals.randrange(REPLICAS)]
            decision = router.choose("chat")
            router.record(decision, latency_ms=700, input_tokens=300, output_tokens=TOKENS - 300)
            if decision.target.name == "paid":
                sent += TOKENS
            if states and tick % (PEAK_RPS // (1000 // SYNC_MS)) == 0:
                for state in states:  # every replica syncs every 250 ms, phases staggered
                    state.sync_now()
        per_second.append(sent)
        if second >= WARMUP_S:
            samples.append(float(sum(per_second)))
    for state in states:
        state.close()
    return samples


def test_eight_replicas_fill_a_provisioned_target_to_its_capacity_and_no_further(
    redis_url: str, deployment: str
) -> None:
    capacity = CAPACITY_TPM
    one_sync = PEAK_RPS * TOKENS * SYNC_MS / 1000  # 8,100 tokens
    shared = _fleet_usage(redis_url, deployment)
    assert max(shared) <= capacity + one_sync, max(shared)
    assert min(shared) >= 0.8 * capacity  # and it is used, not starved
    alone = _fleet_usage(None, deployment)
    assert min(alone) > 1.5 * capacity  # each replica thinks it has the room to itself
