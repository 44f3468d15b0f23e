"""The alarms as CloudWatch stores them (moto's server): percentile alarms wait for enough
samples instead of flapping on low traffic."""

from __future__ import annotations

from typing import Any

from mangaroute import load_default_config
from mangaroute.telemetry import dashboard as board
from tests.telemetry.conftest import ClientFactory


def test_p99_alarms_ignore_periods_with_too_few_samples(
    moto: str, client_for: ClientFactory
) -> None:
    config = load_default_config()
    client: Any = client_for(moto)
    done = board.apply(board.alarm_calls(config), client)
    assert {item["status"] for item in done} == {200}
    stored = {a["AlarmName"]: a for a in client.describe_alarms()["MetricAlarms"]}
    p99 = {name: a for name, a in stored.items() if "-p99-latency-" in name}
    assert sorted(p99) == sorted(f"mangaroute-p99-latency-{t.name}" for t in config.targets)
    for alarm in p99.values():
        assert alarm["ExtendedStatistic"] == "p99"
        assert alarm["EvaluateLowSampleCountPercentile"] == "ignore"
    # the setting means something only for percentiles: the other alarms do not carry it
    others = [a for name, a in stored.items() if name not in p99]
    assert len(others) == len(config.targets) + 2
    assert all("EvaluateLowSampleCountPercentile" not in a for a in others)
    assert all("ExtendedStatistic" not in a for a in others)
