"""The runtime's periodic worker: woken early, waits as told, survives fork, stops at exit."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import threading

import pytest

from mangaroute import FakeClock
from mangaroute.runtime import PeriodicWorker, RateLimitedLog
from mangaroute.runtime.worker import stop_all

LONG_S = 3600.0  # an interval no test waits out: only wake() and stop() end a wait


def test_wake_runs_the_work_without_waiting_out_the_interval() -> None:
    runs: list[int] = []
    ran = threading.Event()

    def work() -> None:
        runs.append(1)
        ran.set()

    worker = PeriodicWorker("mangaroute-test", LONG_S, work)
    worker.start()
    try:
        assert not ran.wait(0.05)  # nothing before the first wait ends
        worker.wake()
        assert ran.wait(10)
        assert runs == [1]
    finally:
        assert worker.stop(10)
    assert not worker.running


def test_delay_none_waits_for_a_wake_and_a_failure_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs: list[int] = []
    first = threading.Event()
    second = threading.Event()

    def work() -> None:
        runs.append(1)
        if len(runs) == 1:
            first.set()
            raise RuntimeError("work exploded")
        second.set()

    worker = PeriodicWorker("mangaroute-test", LONG_S, work, delay=lambda: None)
    with caplog.at_level(logging.ERROR, logger="mangaroute.runtime"):
        worker.start()
        worker.wake()
        assert first.wait(10)  # a loaded machine may take a while to schedule the thread
        assert not second.wait(0.05)  # after the failing run it waits for a wake
        assert runs == [1]
        worker.wake()
        assert second.wait(10)
        assert worker.stop(10)
    assert "work exploded" in caplog.text


def test_stop_is_bounded_while_the_work_is_stuck() -> None:
    inside = threading.Event()
    release = threading.Event()

    def work() -> None:
        inside.set()
        release.wait(60)

    worker = PeriodicWorker("mangaroute-test", LONG_S, work)
    worker.start()
    worker.wake()
    assert inside.wait(10)
    assert worker.stop(0.01) is False  # told to stop, still inside the work: not waited for
    assert not worker.running
    release.set()
    assert worker.stop(10)  # it ends after the work, without running it again


def test_stop_all_stops_every_running_worker() -> None:
    workers = [PeriodicWorker(f"mangaroute-test-{i}", LONG_S, lambda: None) for i in range(3)]
    for worker in workers:
        worker.start()
    assert stop_all(10)
    assert not any(worker.running for worker in workers)


def run_script(body: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(body)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_after_os_fork_the_child_runs_its_own_worker() -> None:
    result = run_script(
        """
        import os, threading
        from mangaroute.runtime import PeriodicWorker
        ticks = threading.Event()
        worker = PeriodicWorker("mangaroute-forked", 3600, ticks.set)
        worker.start()
        pid = os.fork()
        if pid == 0:  # only the forking thread survives: the worker must restart itself
            alive = worker.running and worker._thread is not None and worker._thread.is_alive()
            worker.wake()
            os._exit(0 if alive and ticks.wait(60) else 3)
        _, status = os.waitpid(pid, 0)
        worker.wake()
        assert ticks.wait(60), "the parent's worker stopped"
        print("child", os.waitstatus_to_exitcode(status))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "child 0"


def test_interpreter_exit_does_not_hang_on_a_stuck_worker() -> None:
    result = run_script(
        """
        import threading
        from mangaroute.runtime import PeriodicWorker
        inside = threading.Event()
        def stuck():
            inside.set()
            threading.Event().wait()  # never returns
        worker = PeriodicWorker("mangaroute-stuck", 3600, stuck)
        worker.start()
        worker.wake()
        assert inside.wait(60)
        idle = PeriodicWorker("mangaroute-idle", 3600, lambda: None)
        idle.start()
        print("exiting")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "exiting\n"
    assert result.stderr == ""


def test_rate_limited_log_lets_one_line_out_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock(0)
    log = RateLimitedLog(10.0, clock, logging.getLogger("mangaroute.test"))
    with caplog.at_level(logging.WARNING, logger="mangaroute.test"):
        assert log.warn("store down %s", "a") is True
        clock.advance(seconds=9.999)
        assert log.warn("store down %s", "b") is False
        assert log.warn("store down %s", "c") is False
        assert log.suppressed == 2
        clock.advance(seconds=0.001)
        assert log.warn("store down %s", "d") is True
    assert [r.getMessage() for r in caplog.records] == [
        "store down a",
        "store down d (2 similar warnings suppressed)",
    ]
    assert log.suppressed == 0
    assert log.admit() is None  # within 10 s of "d"
