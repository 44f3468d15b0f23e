"""Dashboard and alarms as code, and the ``mangaroute telemetry`` commands (moto for --apply)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from mangaroute import load_default_config, parse_config
from mangaroute.core.errors import ConfigError
from mangaroute.telemetry import dashboard as board
from mangaroute.telemetry.cli import run
from tests.telemetry.conftest import ClientFactory
from tests.telemetry.helpers import MANGA_CONFIG


def cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = run(["telemetry", *argv], out)
    return code, out.getvalue()


def test_settings_come_from_the_config() -> None:
    settings = board.settings_for(load_default_config())
    assert settings.budget_ms == 1500.0
    assert settings.error_rate == 0.05
    assert settings.daily_budget_usd == pytest.approx(2000.0)
    plain = board.settings_for(parse_config(MANGA_CONFIG), budget_ms=900.0)
    assert (plain.budget_ms, plain.error_rate, plain.daily_budget_usd) == (900.0, 0.05, 2000.0)
    with pytest.raises(ValueError):
        board.AlarmSettings(error_rate=1.5)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("budget_ms", 0.0, "<config>: [budget_ms] must be > 0, got 0.0"),
        ("error_rate", 1.5, "<config>: [error_rate] must be between 0 and 1, got 1.5"),
        ("daily_budget_usd", -5.0, "<config>: [daily_budget_usd] must be >= 0, got -5.0"),
        ("max_switches", -1, "<config>: [max_switches] must be >= 0, got -1"),
    ],
)
def test_bad_alarm_settings_name_the_field_and_value(field: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        board.AlarmSettings(**{field: value})
    assert str(caught.value) == message
    assert caught.value.key == field


def test_a_bad_flag_is_a_json_error_naming_the_setting() -> None:
    code, text = cli("alarms", "--json", "--daily-budget-usd", "-5")
    assert code == 2
    assert json.loads(text) == {
        "error": "<config>: [daily_budget_usd] must be >= 0, got -5.0",
        "field": "daily_budget_usd",
        "file": None,
        "type": "ConfigError",
    }


def test_the_dashboard_covers_every_target() -> None:
    config = load_default_config()
    body = board.dashboard_body(config)
    titles = [w["properties"]["title"] for w in body["widgets"]]
    assert titles == [
        "Routing decisions by target",
        "Inference latency p99 by target (ms)",
        "Success rate by target",
        "Inference cost, hourly and cumulative (USD)",
        "Pattern switches",
        "Breaker state (0 closed, 1 half-open, 2 open)",
        "Config reloads (accepted / rejected)",
        "Telemetry datapoints dropped",
    ]
    reloads = body["widgets"][6]["properties"]["metrics"]
    assert reloads == [
        ["MangaAssist/Deployment", "ConfigReload", "Result", "accepted", {"label": "accepted"}],
        ["MangaAssist/Deployment", "ConfigReload", "Result", "rejected", {"label": "rejected"}],
    ]
    latency = body["widgets"][1]["properties"]
    assert latency["stat"] == "p99"
    assert latency["region"] == "ap-northeast-1"
    assert latency["annotations"]["horizontal"][0]["value"] == 1500.0
    rows = latency["metrics"]
    assert [row[:6] for row in rows] == [
        ["MangaAssist/Deployment", "InferenceLatency", "Target", t.name, "Pattern", t.pattern]
        for t in config.targets
    ]
    cost = body["widgets"][3]["properties"]["metrics"]
    assert cost[-1] == [
        {"expression": "RUNNING_SUM(total)", "label": "cumulative", "id": "cumulative"}
    ]
    positions = {(w["x"], w["y"]) for w in body["widgets"]}
    assert len(positions) == len(body["widgets"])


def test_the_alarms_and_their_thresholds() -> None:
    config = load_default_config()
    params = {a["AlarmName"]: a for a in board.alarms(config)}
    assert len(params) == 2 * len(config.targets) + 2
    p99 = params["mangaroute-p99-latency-provisioned-sonnet"]
    assert (p99["ExtendedStatistic"], p99["Threshold"]) == ("p99", 1500.0)
    assert p99["Dimensions"] == [
        {"Name": "Target", "Value": "provisioned-sonnet"},
        {"Name": "Pattern", "Value": "bedrock_provisioned"},
    ]
    errors = params["mangaroute-error-rate-ondemand-haiku"]
    assert (errors["Statistic"], errors["Threshold"]) == ("Average", 0.95)
    assert errors["ComparisonOperator"] == "LessThanThreshold"
    storm = params["mangaroute-switch-storm"]
    assert (storm["Period"], storm["Threshold"], storm["Dimensions"]) == (900, 3.0, [])
    spend = params["mangaroute-spend-pace"]
    committed = 2 * 23.0 + 2 * 1.89  # model units and instances are paid by the hour anyway
    assert spend["Threshold"] == pytest.approx(2000.0 / 24 - committed)
    assert all(a["TreatMissingData"] == "notBreaching" for a in params.values())
    assert not any(a["ActionsEnabled"] for a in params.values())
    with_actions = board.alarms(
        config, settings=board.AlarmSettings(actions=("arn:aws:sns:ap-northeast-1:1:ops",))
    )
    assert all(a["AlarmActions"] == ["arn:aws:sns:ap-northeast-1:1:ops"] for a in with_actions)


def test_cli_prints_without_calling_anything() -> None:
    code, text = cli("dashboard")
    assert code == 0
    assert "Inference latency p99 by target (ms)  [p99, 300 s]" in text
    assert "Nothing was called" in text
    code, text = cli("alarms", "--budget-ms", "1200")
    assert code == 0
    assert "mangaroute-p99-latency-ondemand-haiku: InferenceLatency p99 > 1200" in text


def test_cli_json_and_dry_run() -> None:
    code, text = cli("dashboard", "--json")
    assert code == 0 and "widgets" in json.loads(text)
    code, text = cli("dashboard", "--dry-run", "--namespace", "Test/NS", "--name", "D")
    [call] = json.loads(text)
    assert call["operation"] == "put_dashboard"
    assert call["params"]["DashboardName"] == "D"
    assert "Test/NS" in call["params"]["DashboardBody"]
    out = io.StringIO()
    assert run(["cloudwatch", "alarms", "--dry-run", "--alarm-action", "arn:x"], out) == 0
    calls = json.loads(out.getvalue())
    assert {c["operation"] for c in calls} == {"put_metric_alarm"}
    assert all(c["params"]["AlarmActions"] == ["arn:x"] for c in calls)
    code, text = cli("alarms", "--json", "--prefix", "ma", "--max-switches", "5")
    names = [a["AlarmName"] for a in json.loads(text)]
    assert "ma-switch-storm" in names


def test_cli_apply_against_moto(
    moto: str, client_for: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    code, text = cli("dashboard", "--apply", "--endpoint-url", moto)
    assert code == 0, text
    assert "put_dashboard MangaAssist-Deployment: HTTP 200" in text
    code, text = cli("alarms", "--apply", "--json", "--endpoint-url", moto)
    assert code == 0
    assert {item["status"] for item in json.loads(text)} == {200}
    client: Any = client_for(moto)
    stored = json.loads(
        client.get_dashboard(DashboardName="MangaAssist-Deployment")["DashboardBody"]
    )
    assert stored == board.dashboard_body(load_default_config())
    alarms = client.describe_alarms()["MetricAlarms"]
    expected = {a["AlarmName"]: a for a in board.alarms(load_default_config())}
    assert {a["AlarmName"] for a in alarms} == set(expected)
    for alarm in alarms:
        want = expected[alarm["AlarmName"]]
        assert alarm["Threshold"] == pytest.approx(want["Threshold"])
        assert alarm["MetricName"] == want["MetricName"]
    code, _ = cli("alarms", "--apply", "--endpoint-url", moto)  # idempotent
    assert code == 0
    assert len(client.describe_alarms()["MetricAlarms"]) == len(expected)


def test_cli_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    bad = tmp_path / "bad.toml"
    bad.write_text("[router]\nnope = 1\n")
    assert cli("dashboard", "--config", str(bad))[0] == 2
    assert "mangaroute telemetry: error" in capsys.readouterr().err
    assert cli("alarms", "--budget-ms", "-5")[0] == 2
    assert cli()[0] == 2
    assert cli("dashboard", "--apply", "--dry-run")[0] == 2
    unreachable = "http://127.0.0.1:9"
    code, _ = cli(
        "dashboard", "--apply", "--endpoint-url", unreachable, "--region", "us-east-1",
        "--max-attempts", "1",
    )  # fmt: skip
    assert code == 1
    assert "AWS call failed" in capsys.readouterr().err
