"""The README's Python example runs as written (with a stand-in for the Bedrock client)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

from mangaroute import load_default_config
from mangaroute.planning.cli import run
from mangaroute.testing import StandIn

README = Path(__file__).resolve().parents[1] / "README.md"


class FakeBedrock:
    """Stands in for the user's own client in the router-only example."""

    def __init__(self) -> None:
        self.model_ids: list[str] = []

    def converse(self, *, modelId: str, messages: Any) -> dict[str, Any]:  # noqa: N803
        self.model_ids.append(modelId)
        return {"usage": {"inputTokens": 12, "outputTokens": 34}}


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_the_routed_client_example_answers_through_real_boto3() -> None:
    """The first example, pointed at local stand-ins of the four MangaAssist targets."""
    config = load_default_config()
    models = {t.model_id: None for t in config.targets if t.pattern.value.startswith("bedrock")}
    endpoints = {t.model_id: None for t in config.targets if t.pattern.value.startswith("sage")}
    with StandIn(models=models, endpoints=endpoints, time_scale=0.01) as standin:
        session = (
            "boto3.session.Session(aws_access_key_id='x', aws_secret_access_key='x', "
            "region_name='ap-northeast-1'), endpoint_url=ENDPOINT"
        )
        code = python_blocks()[0].replace("boto3.session.Session()", session)
        assert code != python_blocks()[0]
        namespace: dict[str, Any] = {"ENDPOINT": standin.endpoint_url}
        exec(compile(code, str(README), "exec"), namespace)
        reply = namespace["reply"]
        assert reply["output"]["message"]["role"] == "assistant"
        answered = config.target(reply.routing.target)
        assert standin.target(answered.model_id).stats().calls == 1
        assert [a.outcome for a in reply.routing.attempts] == ["ok"]


def test_the_router_only_example_runs_and_records() -> None:
    second = python_blocks()[1]
    bedrock = FakeBedrock()
    namespace: dict[str, Any] = {"bedrock_runtime": bedrock, "messages": []}
    exec(
        compile(
            "from mangaroute import Router\nrouter = Router.default()\n" + second,
            str(README),
            "exec",
        ),
        namespace,
    )
    router = namespace["router"]
    assert bedrock.model_ids == [namespace["call"].target.model_id]
    views = {view.name: view for view in router.snapshot().targets}
    assert sum(view.requests for view in views.values()) == 2
    assert sum(view.in_flight for view in views.values()) == 0


def _plan(*argv: str) -> Any:
    out = io.StringIO()
    assert run(["plan", *argv, "--json"], out) == 0
    return json.loads(out.getvalue())


def test_the_planning_example_quotes_the_tools_numbers() -> None:
    text = " ".join(README.read_text().split())
    load = _plan("throughput")
    provisioned = load["bedrock_provisioned"]
    ranked = {r["pattern"]: r for r in _plan("recommend")["ranked"]}
    dropped = {r["pattern"]: r["reason"] for r in _plan("recommend")["dropped"]}
    tco = {r["pattern"]: r["total_usd"] for r in _plan("tco")}
    sized = {r["pattern"]: r["total_usd"] for r in _plan("tco", "--sized-mus")}
    quoted = [
        f"{load['load']['avg_rps']:.2f} req/s on average",
        f"{load['load']['peak_rps']:.2f} req/s at the peak",
        f"{load['load']['burst_rps']:.2f} req/s in a flash-sale burst",
        f"{load['load']['peak_tokens_per_minute']:,} tokens/min at the peak",
        f"**{provisioned['sonnet_mus']} Sonnet model units** (or {provisioned['haiku_mus']} Haiku",
        f"bedrock_provisioned scores {ranked['bedrock_provisioned']['total']:.1f}",
        f"sagemaker_realtime {ranked['sagemaker_realtime']['total']:.1f}",
        f"bedrock_ondemand_haiku {ranked['bedrock_ondemand_haiku']['total']:.1f}",
        f"SageMaker real-time ${tco['sagemaker_realtime']:,.2f}",
        f"2 units ${tco['bedrock_provisioned']:,.2f}",
        f"the hybrid ${tco['hybrid']:,.2f}",
        f"Lambda + on-demand ${tco['lambda_on_demand']:,.2f}",
        f"provisioned throughput costs ${sized['bedrock_provisioned']:,.2f}",
    ]
    for sentence in quoted:
        assert sentence in text, sentence
    assert set(dropped) == {"lambda_on_demand", "sagemaker_serverless"}
    assert "4500 ms" in dropped["lambda_on_demand"] and "8000 ms" in dropped["sagemaker_serverless"]
