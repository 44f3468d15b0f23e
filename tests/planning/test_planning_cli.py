"""``mangaroute plan``: through ``register`` on a tiny parser and through ``run``."""

from __future__ import annotations

import argparse
import io
import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from mangaroute.planning.cli import register, run


def _run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = run(["plan", *argv], out)
    return code, out.getvalue()


def test_register_adds_the_plan_tree_to_any_parser() -> None:
    parser = argparse.ArgumentParser(prog="tiny")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["plan", "tco", "--json"])
    out = io.StringIO()
    assert args.handler(args, out) == 0
    assert json.loads(out.getvalue())[0]["pattern"] == "sagemaker_realtime"


def test_throughput_json() -> None:
    code, text = _run("throughput", "--json")
    assert code == 0
    doc = json.loads(text)
    assert round(doc["load"]["avg_rps"], 2) == 11.57
    assert round(doc["load"]["peak_rps"], 2) == 40.51
    assert round(doc["load"]["burst_rps"], 2) == 81.02
    assert doc["load"]["peak_tokens_per_minute"] == 1_944_444
    assert doc["bedrock_provisioned"]["sonnet_mus"] == 49
    assert doc["bedrock_provisioned"]["haiku_mus"] == 25
    assert doc["seed_pattern"] == "lambda_on_demand"


def test_throughput_table_is_aligned() -> None:
    code, text = _run("throughput")
    assert code == 0
    assert "peak tokens          1,944,444  tokens/min" in text
    assert "49 Sonnet MUs ($1,127.00/h) or 25 Haiku MUs ($125.00/h), OneMonth" in text
    assert "-> the seed's rule picks lambda_on_demand" in text


def test_flags_override_the_profile() -> None:
    code, text = _run("throughput", "--json", "--daily-messages", "2000000", "--burst-factor", "3")
    doc = json.loads(text)
    assert code == 0
    assert doc["traffic"]["daily_messages"] == 2_000_000
    assert round(doc["load"]["burst_rps"], 2) == round(2_000_000 / 86_400 * 3.5 * 3, 2)


def test_recommend_text_and_options() -> None:
    code, text = _run("recommend")
    assert code == 0
    assert "1     bedrock_provisioned      75.4" in text
    assert "lambda_on_demand      effective p99 4500 ms" in text
    code, text = _run("recommend", "--json", "--seed-exact-latency-score")
    doc = json.loads(text)
    assert doc["latency_scoring"] == "seed-exact"
    assert round(doc["ranked"][0]["latency_score"], 2) == 13.33
    code, text = _run("recommend", "--json", "--observed", "sagemaker_serverless=400/800/1300")
    ranked = {r["pattern"]: r for r in json.loads(text)["ranked"]}
    assert ranked["sagemaker_serverless"]["latency_source"] == "observed"
    code, text = _run("recommend", "--json", "--needs-custom-model")
    assert [r["pattern"] for r in json.loads(text)["ranked"]] == ["sagemaker_realtime"]


def test_tco_text_and_sized_mus() -> None:
    code, text = _run("tco")
    assert code == 0
    assert "sagemaker_realtime   $3,402.00       $0.00   $1,200.00   $4,602.00    $0.000153" in text
    code, text = _run("tco", "--json", "--sized-mus")
    totals = {r["pattern"]: r["total_usd"] for r in json.loads(text)}
    assert totals["bedrock_provisioned"] == pytest.approx(206_410.0)
    code, text = _run("tco", "--json", "--sonnet-mus", "10", "--engineer-rate", "200")
    results = {r["pattern"]: r for r in json.loads(text)}
    assert results["bedrock_provisioned"]["compute_usd"] == pytest.approx((10 * 23 * 6 + 30) * 30)
    assert results["hybrid"]["ops_usd"] == 8 * 200


def test_autoscaling_prints_the_plan_and_calls_nothing() -> None:
    code, text = _run("autoscaling")
    assert code == 0
    assert "cron(0 18 * * ? *) Asia/Tokyo: min 3, max 8" in text
    assert "Nothing was called" in text
    code, text = _run("autoscaling", "--dry-run")
    calls = json.loads(text)
    assert len(calls) == 6
    assert calls[0]["operation"] == "register_scalable_target"
    code, text = _run("autoscaling", "--dry-run", "--remove", "--utc-schedules")
    assert [c["operation"] for c in json.loads(text)][-1] == "deregister_scalable_target"
    code, text = _run("autoscaling", "--json", "--utc-schedules")
    assert json.loads(text)[4]["params"]["Schedule"] == "cron(0 9 * * ? *)"


def test_profile_file(tmp_path: Path) -> None:
    text = resources.files("mangaroute.planning").joinpath("mangaassist.toml").read_text("utf-8")
    path = tmp_path / "shop.toml"
    path.write_text(text.replace("daily_messages = 1_000_000", "daily_messages = 86_400"), "utf-8")
    code, out = _run("throughput", "--json", "--profile", str(path))
    assert code == 0
    assert json.loads(out)["load"]["avg_rps"] == 1.0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ("throughput", "--daily-messages", "0"),
            "[traffic] daily_messages: must be > 0, got 0 (set by --daily-messages)",
        ),
        (
            ("throughput", "--daily-messages", "-10"),
            "[traffic] daily_messages: expected an integer >= 0, got -10",
        ),
        (("throughput", "--peak-multiplier", "0.5"), "[traffic] peak_multiplier: must be ≥ 1"),
        (
            ("tco", "--set", "prices.sonnet_mu_hourly=-1"),
            "[prices] sonnet_mu_hourly: expected a number >= 0, got -1",
        ),
        (
            ("tco", "--set", "prices.bogus=1"),
            "[prices] bogus: is not a known key (expected one of: e",
        ),
        (("tco", "--set", "nonsense"), "--set: expected SECTION.KEY=VALUE"),
        (
            ("recommend", "--observed", "lambda_on_demand=1/2"),
            "--observed: expected PATTERN=P50/P90/P99",
        ),
        (
            ("autoscaling", "--max-instances", "2"),
            "[autoscaling] peak_min_instances: must lie within",
        ),
    ],
)
def test_invalid_input_exits_2_naming_the_field(
    argv: tuple[str, ...], message: str, capsys: Any
) -> None:
    code, out = _run(*argv)
    assert code == 2
    assert out == ""
    err = capsys.readouterr().err
    assert message in err
    assert err.startswith(f"mangaroute plan {argv[0]}: error: ")


def test_missing_price_in_a_profile_file_exits_2(tmp_path: Path, capsys: Any) -> None:
    text = resources.files("mangaroute.planning").joinpath("mangaassist.toml").read_text("utf-8")
    path = tmp_path / "noprice.toml"
    path.write_text(text.replace("haiku_input_per_mtok = 0.25\n", ""), "utf-8")
    assert _run("tco", "--profile", str(path))[0] == 2
    assert f"{path}: [prices] haiku_input_per_mtok: is required\n" in capsys.readouterr().err


def test_usage_errors_exit_2(capsys: Any) -> None:
    assert _run()[0] == 2
    assert _run("throughput", "--daily-messages", "many")[0] == 2
    assert _run("autoscaling", "--apply", "--status")[0] == 2
    assert "usage:" in capsys.readouterr().err
