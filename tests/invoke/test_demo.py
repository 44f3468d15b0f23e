"""``mangaroute demo`` end to end: real boto3, the stand-in, the exit-code rule."""

from __future__ import annotations

import argparse
import io
import json
import sys

import pytest

from mangaroute import demo
from mangaroute.demo import Served, avoidable, register, run

FAST = ["--requests", "120", "--concurrency", "8", "--time-scale", "0.1"]
SCALE = "0.5"
"""For runs that must answer everything: at half real time a 500 ms pause of a loaded machine
is 1 s of the 3 s budget, not 5 s (at 0.1, with two CPU burners beside the tests, up to 4 of
120 requests ran out of budget while a fallback was up; at 0.5 none did)."""
STEADY = ["--requests", "120", "--concurrency", "8", "--time-scale", SCALE]


def test_demo_json_summary_and_success(capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    code = run(["demo", "--json", *STEADY], out)
    summary = json.loads(out.getvalue())
    assert code == 0, summary["errors"]
    assert summary["requests"] == summary["answered"] == 120
    assert summary["within_budget"] == 120 and summary["avoidable_failures"] == 0
    assert summary["failovers"] > 0 and summary["phases"]["outage"]["failovers"] > 0
    assert summary["primary"] == "provisioned-sonnet"
    outage = summary["phases"]["outage"]
    # issued while the primary was down; one may land just after it came back
    assert outage["answered_by"].get("provisioned-sonnet", 0) <= 2
    shares = [t["share"] for t in summary["targets"].values()]
    assert sum(shares) == pytest.approx(1.0, abs=0.01)
    assert all(t["cost_usd"] >= 0 for t in summary["targets"].values())
    assert summary["p50_ms"] <= summary["p99_ms"] <= 3000
    assert len(summary["outage_s"]) == 2
    assert "[  120/120]" in capsys.readouterr().err  # progress goes to stderr with --json


def test_demo_exits_non_zero_when_a_healthy_fallback_was_left_untried() -> None:
    out = io.StringIO()
    # 300 ms fits no target's p50: calls time out and no fallback is tried
    assert run(["demo", "--json", "--budget-ms", "300", *FAST], out) == 1
    summary = json.loads(out.getvalue())
    assert summary["avoidable_failures"] > 0
    assert summary["errors"].get("DeadlineExceeded", 0) > 0


def test_demo_text_output() -> None:
    out = io.StringIO()
    assert run(["demo", "--requests", "40", "--concurrency", "4", "--time-scale", SCALE], out) == 0
    text = out.getvalue()
    assert text.count("[") >= 2 and "\r" not in text  # periodic lines, not a TTY
    for heading in ("answered", "within 3 s", "failovers", "p50 ms", "p99 ms", "share", "cost $"):
        assert heading in text
    assert "OK: no request failed" in text


def test_the_avoidable_rule() -> None:
    def served(latency: float | None, tried: set[str], down: set[str]) -> Served:
        return Served("simple", "outage", latency, None, 0, frozenset(tried), frozenset(down))

    targets = ("a", "b")
    assert not avoidable(served(500.0, {"a"}, set()), targets)  # answered
    assert avoidable(served(None, {"a"}, set()), targets)  # b was up and never tried
    assert not avoidable(served(None, {"a", "b"}, set()), targets)  # every target tried
    assert not avoidable(served(None, {"a"}, {"b"}), targets)  # b was down


def test_register_adds_the_demo_command(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="mangaroute")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["demo", "--requests", "10", "--seed", "3", "--config", "x.toml"])
    assert (args.requests, args.concurrency, args.seed, args.config) == (10, 16, 3, "x.toml")
    assert callable(args.handler)
    with pytest.raises(SystemExit) as exited:
        parser.parse_args(["demo", "--help"])
    assert exited.value.code == 0
    assert "--concurrency" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        parser.parse_args(["demo", "--requests", "0"])


def test_demo_otel_counts_spans_and_genai_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    assert run(["demo", "--json", "--otel", *STEADY], out) == 0
    summary = json.loads(out.getvalue())
    assert summary["settings"]["otel"] is True
    spans, metrics = summary["otel"]["spans"], summary["otel"]["metrics"]
    assert spans["route"] == {"kind": "INTERNAL", "count": 120, "errors": 0}
    attempts = {name: s for name, s in spans.items() if name != "route"}
    assert all(name.startswith("chat ") and s["kind"] == "CLIENT" for name, s in attempts.items())
    tried = sum(s["count"] for s in attempts.values())
    failed = sum(s["errors"] for s in attempts.values())
    # every attempt after a request's first is a failover (after a failed attempt) or a
    # hedge (hedging is on by default for manga questions)
    assert tried == 120 + summary["failovers"] + summary["hedges"]
    assert failed >= summary["failovers"] > 0
    assert metrics["gen_ai.client.operation.duration"]["measurements"] == tried
    # input and output tokens of every attempt that answered: the 120 answers, and a race's
    # loser that answered after all (its span ends "cancelled" but it was billed: docs/invoke.md)
    usage = metrics["gen_ai.client.token.usage"]["measurements"]
    assert 2 * 120 <= usage <= 2 * (120 + summary["hedges"])
    assert metrics["gen_ai.client.operation.duration"]["unit"] == "s"
    printed = out.getvalue() + capsys.readouterr().err
    assert not [prompt for prompt in demo._PROMPTS if prompt in printed]


def test_demo_otel_text_tables() -> None:
    out = io.StringIO()
    args = ["demo", "--otel", "--requests", "40", "--concurrency", "4", "--time-scale", SCALE]
    assert run(args, out) == 0
    text = out.getvalue()
    summary_end = text.index("OK: no request failed")
    tables = text[text.index("OpenTelemetry (in-memory exporters):") :]
    assert text.index("OpenTelemetry") > summary_end  # after the summary
    assert "INTERNAL     40       0  route" in tables
    assert "gen_ai.client.operation.duration" in tables and "measurements" in tables


def test_demo_otel_without_the_sdk_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [n for n in sys.modules if n.startswith("opentelemetry.sdk.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk", None)  # as if not installed
    out = io.StringIO()
    assert run(["demo", "--otel", *FAST], out) == 2
    assert out.getvalue() == ""
    assert "pip install opentelemetry-sdk" in capsys.readouterr().err
