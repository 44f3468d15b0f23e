"""The README's Python example runs as written (with a stand-in for the Bedrock client)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parents[1] / "README.md"


class FakeBedrock:
    def __init__(self) -> None:
        self.model_ids: list[str] = []

    def converse(self, *, modelId: str, messages: Any) -> dict[str, Any]:  # noqa: N803
        self.model_ids.append(modelId)
        return {"usage": {"inputTokens": 12, "outputTokens": 34}}


def test_the_python_example_runs_and_records() -> None:
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.S)
    assert block is not None
    bedrock = FakeBedrock()
    namespace: dict[str, Any] = {"bedrock": bedrock, "messages": []}
    exec(compile(block.group(1), str(README), "exec"), namespace)
    router = namespace["router"]
    assert bedrock.model_ids == [namespace["call"].target.model_id]
    views = {view.name: view for view in router.snapshot().targets}
    assert sum(view.requests for view in views.values()) == 2
    assert sum(view.in_flight for view in views.values()) == 0
