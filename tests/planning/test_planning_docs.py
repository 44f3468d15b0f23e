"""docs/planning.md: every console block is the tool's exact output, every quoted number is
computed by the tool (``--json`` or the library), in the sentence that quotes it."""

from __future__ import annotations

import io
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from mangaroute.config.schema import with_reference
from mangaroute.planning import TrafficProfile, compute_load, latency_score
from mangaroute.planning.cli import run
from mangaroute.planning.sections import PROFILE_DOCUMENT, SECTIONS

DOC = Path(__file__).resolve().parents[2] / "docs" / "planning.md"
BLOCK = re.compile(r"```console\n\$ mangaroute (?P<cmd>[^\n]*)\n(?P<out>.*?)\n```", re.S)


def _json(*argv: str) -> Any:
    out = io.StringIO()
    assert run(["plan", *argv, "--json"], out) == 0
    return json.loads(out.getvalue())


def doc_values() -> dict[str, str]:
    """The numbers docs/planning.md quotes, formatted as it quotes them."""
    thr = _json("throughput")
    rec = {r["pattern"]: r for r in _json("recommend")["ranked"]}
    tco = {r["pattern"]: r for r in _json("tco")}
    sized = {r["pattern"]: r for r in _json("tco", "--sized-mus")}
    load, prov, sm = thr["load"], thr["bedrock_provisioned"], thr["sagemaker_realtime"]
    two_mu_messages = 2 * 40_000 / TrafficProfile().tokens_per_message
    five_x = compute_load(TrafficProfile(peak_multiplier=5)).peak_window_share
    return {
        "avg_rps": f"{load['avg_rps']:.2f}",
        "peak_rps": f"{load['peak_rps']:.2f}",
        "burst_rps": f"{load['burst_rps']:.2f}",
        "peak_tpm": f"{load['peak_tokens_per_minute']:,}",
        "peak_share": f"{load['peak_window_share'] * 100:.1f} %",
        "sonnet_mus": str(prov["sonnet_mus"]),
        "haiku_mus": str(prov["haiku_mus"]),
        "sonnet_hourly": f"${prov['sonnet_hourly_usd']:,.2f}",
        "haiku_hourly": f"${prov['haiku_hourly_usd']:,.2f}",
        "reserved": str(thr["lambda_on_demand"]["reserved_concurrency"]),
        "provisioned": str(thr["lambda_on_demand"]["provisioned_concurrency"]),
        "sm_min": str(sm["min_instances"]),
        "sm_max": str(sm["max_instances"]),
        "aws_target": f"{sm['target_invocations_per_minute'] * 0.5:g}",
        "tco_sagemaker": f"${tco['sagemaker_realtime']['total_usd']:,.2f}",
        "tco_provisioned": f"${tco['bedrock_provisioned']['total_usd']:,.2f}",
        "tco_provisioned_sized": f"${sized['bedrock_provisioned']['total_usd']:,.2f}",
        "hybrid_mus": f"{tco['hybrid']['quantities']['sonnet_mus_for_share']:g}",
        "est_provisioned": f"${rec['bedrock_provisioned']['estimated_monthly_usd']:,.2f}",
        "est_sagemaker": f"${rec['sagemaker_realtime']['estimated_monthly_usd']:,.2f}",
        "requests_month": f"{load['peak_rps'] * 86_400 * 30:,.0f}",
        "messages_month": f"{TrafficProfile().daily_messages * 30:,}",
        "msgs_per_min_2mu": f"{two_mu_messages:g}",
        "rps_2mu": f"{two_mu_messages / 60:.1f}",
        "target_rps_10": f"{10 / 60:.2f}",
        "peak_share_5x": f"{five_x * 100:.0f} %",
        "seed_score_over": f"{latency_score(1515, 1500, seed_exact=True):g}",
    }


# Each quoted number in the sentence that quotes it (whitespace-normalised).
SENTENCES = [
    "1,000,000 messages a day are {avg_rps} req/s on average",
    "is {peak_rps} req/s and a flash-sale burst (×2) {burst_rps} req/s",
    "the peak is {peak_tpm} tokens/min, so Bedrock provisioned throughput needs "
    "**{sonnet_mus} Sonnet model units** at 40,000 tokens/min each (or {haiku_mus} Haiku MUs",
    "Lambda needs {reserved} reserved and {provisioned} provisioned concurrency",
    "SageMaker needs {sm_min}–{sm_max} ml.g5.2xlarge instances at 8 req/s each",
    "scores 0 and one 1 % slower scores {seed_score_over}.",
    "SageMaker is cheapest ({tco_sagemaker}) only because the seed prices it at 2–4 instances, "
    "where the sizing above says {sm_min}–{sm_max}; provisioned throughput is cheap "
    "({tco_provisioned}) only because",
    "{peak_tpm} tokens/min at peak, i.e. {sonnet_mus} Sonnet MUs (or {haiku_mus} Haiku MUs)",
    "Two Sonnet MUs carry 80,000 tokens/min — {msgs_per_min_2mu} messages a minute, about "
    "{rps_2mu} req/s.",
    "the burst of {burst_rps} req/s is below 70 % of 500 req/s",
    "Without the Lambda branch, {sonnet_mus} MUs fail",
    "({sonnet_hourly} or {haiku_hourly} an hour, not their sum)",
    "the peak needs {sm_min} instances and the burst {sm_max} with spares",
    "10/min is {target_rps_10} req/s per instance",
    "(0.5 gives {aws_target} for g5.2xlarge)",
    "hard-codes 2 Sonnet MUs ({tco_provisioned}; with the sized {sonnet_mus} MUs it is "
    "{tco_provisioned_sized})",
    "it needs {hybrid_mus} MUs.",
    "at the {peak_rps} req/s peak that is {requests_month} requests, 3.5 × the "
    "{messages_month} messages",
    "the estimates ({est_provisioned} provisioned, {est_sagemaker} SageMaker)",
    "×3.5 for 6 hours puts {peak_share} of the day's messages",
    "would need {peak_share_5x} of the day's traffic",
]


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def test_console_blocks_are_the_tools_output(doc: str) -> None:
    blocks = list(BLOCK.finditer(doc))
    assert len(blocks) >= 6
    for block in blocks:
        argv = shlex.split(block["cmd"])
        out = io.StringIO()
        assert run(argv, out) == 0, block["cmd"]
        assert out.getvalue().rstrip("\n") == block["out"], block["cmd"]


@pytest.mark.parametrize("sentence", SENTENCES)
def test_quoted_numbers_come_from_the_tool(doc: str, sentence: str) -> None:
    values = doc_values()
    expected = _flat(re.sub(r"\{(\w+)\}", lambda m: values[m[1]], sentence))
    assert expected in _flat(doc)


def test_every_quoted_value_is_checked() -> None:
    used = {name for s in SENTENCES for name in re.findall(r"\{(\w+)\}", s)}
    assert used == set(doc_values())


def test_the_mangaassist_headline_numbers(doc: str) -> None:
    values = doc_values()
    assert (values["avg_rps"], values["peak_rps"], values["burst_rps"]) == (
        "11.57",
        "40.51",
        "81.02",
    )
    assert (values["peak_tpm"], values["sonnet_mus"], values["haiku_mus"]) == (
        "1,944,444",
        "49",
        "25",
    )
    assert "## Where the seed's stated results differ from its own formulas" in doc


def test_the_profile_reference_is_generated_from_the_declared_sections(doc: str) -> None:
    assert doc == with_reference(doc, PROFILE_DOCUMENT), (
        "docs/planning.md's profile reference is out of date with mangaroute/planning/"
        'sections.py: regenerate it with python -c "import pathlib; from mangaroute.config.'
        "schema import with_reference as w; from mangaroute.planning.sections import "
        "PROFILE_DOCUMENT as d; p = pathlib.Path('docs/planning.md'); "
        'p.write_text(w(p.read_text(), d))"'
    )
    start, end = doc.index(PROFILE_DOCUMENT.mark), doc.index(PROFILE_DOCUMENT.end)
    reference = doc[start:end]
    for name, (cls, section) in SECTIONS.items():
        table = reference.split(f"### `[{name}]`", 1)[1].split("\n### ", 1)[0]
        assert f"`{cls.__module__}.{cls.__qualname__}`" in table
        rows = [line for line in table.splitlines() if line.startswith("| `")]
        assert [row.split(" | ")[0] for row in rows] == [f"| `{k.name}`" for k in section.keys]
        for row, key in zip(rows, section.keys, strict=True):
            assert (row.split(" | ")[2] == "required") == key.required, row
