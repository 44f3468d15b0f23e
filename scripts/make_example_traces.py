#!/usr/bin/env python3
"""Write the example traces that ship with mangaroute (``mangaroute/data/traces``).

    python scripts/make_example_traces.py                 # rewrite the shipped examples
    python scripts/make_example_traces.py --out /tmp/x    # somewhere else (the up-to-date test)

One synthetic MangaAssist hour, 20:00-21:00 JST on 2025-01-15 (the simulated day), as two
files describing the same 400 messages:

* ``example.csv``: ISO 8601 timestamps with the +09:00 offset, token counts, class,
  ``max_tokens`` and cached input tokens;
* ``example-invocation-log.jsonl``: the same messages as Bedrock model-invocation log records
  (UTC timestamps to the second, ``modelId`` by class, Converse ``inferenceConfig.maxTokens``
  and ``usage.cacheReadInputTokens``; ``inputTokenCount`` excludes the cached tokens, as
  Converse's ``inputTokens`` does), plus two records of throttled calls that a replay skips.
  Prompts and answers are left out.

Nothing here is recorded traffic: arrivals rise through the hour towards the evening peak,
classes follow the seed's mix (simple 50 %, complex 40 %, manga 10 %) and tokens are lognormal
around the shipped day's means. Deterministic: the same files every run.
"""

from __future__ import annotations

import argparse
import json
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "mangaroute" / "data" / "traces"
MESSAGES = 400
START = datetime(2025, 1, 15, 11, 0, tzinfo=UTC)  # 20:00 JST
JST = timedelta(hours=9)
CLASSES = (
    # name, share, input and output token means, max_tokens
    ("simple", 0.5, 450, 250, 512),
    ("complex", 0.4, 550, 350, 1024),
    ("manga", 0.1, 500, 300, 768),
)
MODELS = {
    "simple": "anthropic.claude-3-haiku-20240307-v1:0",
    "complex": "anthropic.claude-3-5-sonnet-20240620-v1:0",
    "manga": "arn:aws:bedrock:ap-northeast-1:111122223333:custom-model/mangaassist-manga-ft",
}


@dataclass(frozen=True)
class Message:
    time: datetime
    klass: str
    input: int
    """All input tokens, cached ones included."""
    output: int
    max_tokens: int
    cached: int


def messages(rng: random.Random) -> list[Message]:
    """The hour's messages, in time order."""
    # Rate rising linearly from 1x to 2x through the hour: inverse transform of the ramp.
    seconds = sorted(int(3600 * (math.sqrt(1 + 3 * rng.random()) - 1)) for _ in range(MESSAGES))
    rows = []
    for second in seconds:
        pick, share = rng.random(), 0.0
        for shape in CLASSES:
            share += shape[1]
            if pick < share:
                break
        name, _, tin, tout, limit = shape
        cached = rng.choice((0, 0, 0, 256)) if name == "complex" else 0
        rows.append(
            Message(
                START + timedelta(seconds=second),
                name,
                max(1, round(rng.lognormvariate(math.log(tin) - 0.06, 0.35))) + cached,
                min(limit, max(1, round(rng.lognormvariate(math.log(tout) - 0.06, 0.35)))),
                limit,
                cached,
            )
        )
    return rows


def csv_text(rows: list[Message]) -> str:
    lines = [
        "# A synthetic MangaAssist hour (20:00-21:00 JST): scripts/make_example_traces.py",
        "timestamp,input_tokens,output_tokens,class,max_tokens,cached_input_tokens",
    ]
    for m in rows:
        local = (m.time + JST).replace(tzinfo=None).isoformat() + "+09:00"
        lines.append(f"{local},{m.input},{m.output},{m.klass},{m.max_tokens},{m.cached}")
    return "\n".join(lines) + "\n"


def log_text(rows: list[Message], rng: random.Random) -> str:
    records: list[dict[str, object]] = []
    for n, m in enumerate(rows):
        stamp = m.time.strftime("%Y-%m-%dT%H:%M:%SZ")
        usage = {"inputTokens": m.input - m.cached, "outputTokens": m.output}
        if m.cached:
            usage["cacheReadInputTokens"] = m.cached
        records.append(
            {
                "schemaType": "ModelInvocationLog",
                "schemaVersion": "1.0",
                "timestamp": stamp,
                "accountId": "111122223333",
                "region": "ap-northeast-1",
                "requestId": f"{rng.getrandbits(128):032x}",
                "operation": "Converse",
                "modelId": MODELS[m.klass],
                "input": {
                    "inputContentType": "application/json",
                    "inputBodyJson": {"inferenceConfig": {"maxTokens": m.max_tokens}},
                    "inputTokenCount": usage["inputTokens"],
                },
                "output": {
                    "outputContentType": "application/json",
                    "outputBodyJson": {"stopReason": "end_turn", "usage": usage},
                    "outputTokenCount": usage["outputTokens"],
                },
            }
        )
        if n in (150, 151):  # a throttled call retried at once: logged, never answered
            records.append(
                {
                    "schemaType": "ModelInvocationLog",
                    "schemaVersion": "1.0",
                    "timestamp": stamp,
                    "requestId": f"{rng.getrandbits(128):032x}",
                    "operation": "Converse",
                    "modelId": MODELS["complex"],
                    "errorCode": "ThrottlingException",
                }
            )
    return "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)


def write(out: Path) -> list[Path]:
    rng = random.Random(20250115)
    rows = messages(rng)
    out.mkdir(parents=True, exist_ok=True)
    files = {"example.csv": csv_text(rows), "example-invocation-log.jsonl": log_text(rows, rng)}
    written = []
    for name, text in files.items():
        path = out / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"folder (default: {OUT})")
    for path in write(parser.parse_args().out):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
