"""The drop-in package's public names are pinned; ``import mangaroute`` still imports no
boto3 until a drop-in name is used."""

from __future__ import annotations

import subprocess
import sys

import mangaroute.dropin


def test_all_is_pinned() -> None:
    assert set(mangaroute.dropin.__all__) == {
        "BUDGET_KEY",
        "SESSION_KEY",
        "RoutedBedrockRuntime",
        "RoutedSession",
        "RoutedStreamResponse",
        "RoutingContext",
        "bedrock_runtime",
        "context",
        "current_context",
        "routed_session",
    }
    for name in mangaroute.dropin.__all__:
        assert hasattr(mangaroute.dropin, name), name


def test_the_top_level_names_load_the_drop_in_on_first_use() -> None:
    code = (
        "import sys, mangaroute\n"
        "before = 'boto3' in sys.modules\n"
        "f = mangaroute.bedrock_runtime\n"
        "from mangaroute.dropin import bedrock_runtime, context, routed_session\n"
        "same = (f is bedrock_runtime and mangaroute.context is context\n"
        "        and mangaroute.routed_session is routed_session)\n"
        "print(before, 'boto3' in sys.modules, same)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "True", "True"]
