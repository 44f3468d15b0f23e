"""The background worker: keeps going after a failure, restarts after a fork, stops."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading

import pytest

from mangaroute.telemetry._worker import PeriodicWorker


def test_a_failing_run_is_logged_and_the_loop_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    runs: list[int] = []
    done = threading.Event()

    def work() -> None:
        runs.append(1)
        if len(runs) == 1:
            raise RuntimeError("sink exploded")
        done.set()

    worker = PeriodicWorker("mangaroute-test", 0.01, work)
    with caplog.at_level(logging.ERROR, logger="mangaroute.telemetry"):
        worker.start()
        worker.start()  # already running: no second thread
        assert done.wait(5)
        assert worker.stop(5)
    assert "sink exploded" in caplog.text
    assert not worker.running


def test_after_a_fork_the_child_runs_its_own_thread() -> None:
    ticks = threading.Event()
    worker = PeriodicWorker("mangaroute-test", 0.01, ticks.set)
    worker.start()
    first, first_stop = worker._thread, worker._stop
    worker._after_fork()  # what os.register_at_fork calls in a child, where `first` is gone
    assert worker._thread is not first and worker.running
    assert ticks.wait(5)
    assert worker.stop(5)
    first_stop.set()  # in this process the "parent's" thread still exists: end it too
    assert first is not None
    first.join(5)
    with pytest.raises(ValueError):
        PeriodicWorker("mangaroute-test", 0, ticks.set)


def test_interpreter_exit_flushes_what_was_not_sent_yet() -> None:
    script = (
        "from mangaroute import Router, load_default_config\n"
        "from mangaroute.telemetry import CloudWatchMetrics\n"
        "config = load_default_config()\n"
        "metrics = CloudWatchMetrics(targets=config.targets, interval_s=3600)\n"
        "Router(config, observer=metrics).choose('simple')\n"
        "# no close(): the atexit hook must flush the EMF lines\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    documents = [json.loads(line) for line in result.stdout.splitlines()]
    names = {m["Name"] for d in documents for m in d["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert "RoutingDecision" in names
    assert not result.stderr


def test_at_exit_the_otel_observer_drains_before_its_meter_provider_shuts_down() -> None:
    script = (
        "from opentelemetry.sdk.metrics import MeterProvider\n"
        "from opentelemetry.sdk.metrics.export import (\n"
        "    ConsoleMetricExporter, PeriodicExportingMetricReader)\n"
        "from mangaroute import Router, load_default_config\n"
        "from mangaroute.telemetry import OTelObserver\n"
        "reader = PeriodicExportingMetricReader(\n"
        "    ConsoleMetricExporter(), export_interval_millis=3_600_000)\n"
        "provider = MeterProvider(metric_readers=[reader])\n"
        "observer = OTelObserver(provider, drain_interval_s=3600)\n"
        "Router(load_default_config(), observer=observer).choose('simple')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert '"name": "mangaroute.decisions"' in result.stdout
