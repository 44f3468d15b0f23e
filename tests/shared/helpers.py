"""A small fleet config and replica builders for the shared-state tests."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from mangaroute import FakeClock, Router, parse_config
from mangaroute.core.fleet import SharedSettings
from mangaroute.core.settings import RouterConfig
from mangaroute.shared import SharedState
from mangaroute.shared.store import Store

ROOT = Path(__file__).resolve().parents[2]
START_NS = 1_000_000_000_000
WALL_START = 1_800_000_000.0
"""2027-01-15 08:00 UTC: the replicas' wall clock at START_NS."""

PAID_TPM = 60_000

FLEET_CONFIG = f"""
[router]
default_class = "chat"
window_s = 60
bucket_s = 5
min_samples = 5
refresh_ms = 5

[breaker]
consecutive_failures = 3
cooldown_s = 10
max_cooldown_s = 80
successes_to_close = 2

[targets.paid]
pattern = "bedrock_provisioned"
model_id = "arn:aws:bedrock:ap-northeast-1:123456789012:provisioned-model/x"
region = "ap-northeast-1"
tier = "sonnet"
prior = {{ p50_ms = 600, p90_ms = 900, p99_ms = 1200 }}
model_units = 1
tokens_per_minute_per_unit = {PAID_TPM}
hourly_usd_per_unit = 23.0

[targets.spill]
pattern = "bedrock_on_demand"
model_id = "anthropic.claude-3-sonnet-20240229-v1:0"
region = "ap-northeast-1"
tier = "sonnet"
prior = {{ p50_ms = 800, p90_ms = 1200, p99_ms = 1800 }}
input_per_million_usd = 3.0
output_per_million_usd = 15.0

[targets.cheap]
pattern = "bedrock_on_demand"
model_id = "anthropic.claude-3-haiku-20240307-v1:0"
region = "ap-northeast-1"
tier = "haiku"
prior = {{ p50_ms = 400, p90_ms = 600, p99_ms = 900 }}
input_per_million_usd = 0.25
output_per_million_usd = 1.25

[classes.chat]
targets = ["paid", "spill"]
policy = "fill"

[classes.simple]
targets = ["paid", "spill", "cheap"]
policy = "switcher"

[classes.budgeted]
targets = ["spill", "cheap"]
policy = "guarded"

[switcher]
primary = "paid"
order = ["paid", "spill", "cheap"]
return_after_s = 30

[policies.fill]
filters = ["healthy"]
ranker = "order"
picker = "spillover"

[policies.switcher]
filters = ["healthy", "headroom"]
ranker = "order"
picker = "primary"

[policies.guarded]
filters = ["healthy"]
ranker = "order"
picker = "budget_guard"

[policies.guarded.budget_guard]
daily_usd = 10.0
slack = 0.0
tolerance = 0.0
"""


def fleet_config() -> RouterConfig:
    return parse_config(FLEET_CONFIG, source="fleet.toml")


def settings(
    url: str, deployment: str, replica: str, *, cluster: bool = False, **overrides: float
) -> SharedSettings:
    values: dict[str, float] = {
        "sync_interval_ms": 250.0,
        "stale_after_ms": 1000.0,
        "timeout_ms": 200.0,
    }
    values.update(overrides)
    return SharedSettings(
        url=url,
        deployment=deployment,
        replica_id=replica,
        sync_interval_ms=values["sync_interval_ms"],
        stale_after_ms=values["stale_after_ms"],
        timeout_ms=values["timeout_ms"],
        spend_every=int(values.get("spend_every", 1)),
        cluster=cluster,
    )


def replica(
    clock: FakeClock,
    url: str,
    deployment: str,
    name: str,
    *,
    store: Store | None = None,
    config: RouterConfig | None = None,
    seed: int = 1,
    cluster: bool = False,
    **overrides: float,
) -> tuple[Router, SharedState]:
    """A router on the fleet config and the fake clock, with shared state that syncs only
    when the test says so (``sync_now``)."""
    router = Router(
        config or fleet_config(),
        clock=clock,
        rng=random.Random(seed),
        wall_clock=lambda: WALL_START + (clock() - START_NS) / 1e9,
    )
    state = SharedState(
        router,
        settings(url, deployment, name, cluster=cluster, **overrides),
        store=store,
        start=False,
    )
    return router, state


def serve(router: Router, cls: str, *, tokens: int, latency_ms: float = 500.0) -> str:
    """Choose a target for one call and record it as a success with ``tokens`` tokens."""
    decision = router.choose(cls)
    router.record(
        decision,
        latency_ms=latency_ms,
        input_tokens=tokens // 2,
        output_tokens=tokens - tokens // 2,
    )
    return decision.target.name


def serve_process(config: Path, log_level: str = "INFO") -> tuple[subprocess.Popen[str], str]:
    """``mangaroute serve`` on 127.0.0.1 with ``config``, returned once it listens - its
    SIGTERM handler is in place from then on - with the log it wrote so far."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mangaroute", "serve", "--listen", "127.0.0.1:0",
         "--config", str(config), "--log-level", log_level],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stderr is not None
    lines = []
    for line in process.stderr:
        lines.append(line)
        if "mangaroute sidecar listening on" in line:
            return process, "".join(lines)
    process.wait(30)
    raise AssertionError("mangaroute serve did not start:\n" + "".join(lines))


def serve_until_synced(
    config: Path, replicas_key: str, replica: str, redis_client: Any, log_level: str = "INFO"
) -> tuple[int, str]:
    """Run ``mangaroute serve`` with ``config`` until replica ``replica`` shows in the
    ``replicas_key`` sorted set (it synced), then SIGTERM it: ``(exit code, whole log)``."""
    process, started = serve_process(config, log_level)
    try:
        deadline = time.monotonic() + 30
        while redis_client.zscore(replicas_key, replica) is None:
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "the sidecar never synced"
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        _, log = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    return process.returncode, started + log


def metric(reader: InMemoryMetricReader, name: str) -> float:
    """The value of the first data point of ``name`` collected now."""
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for item in scope.metrics:
                if item.name == name:
                    return float(next(iter(item.data.data_points)).value)  # type: ignore[union-attr]
    raise AssertionError(f"no metric {name}")
