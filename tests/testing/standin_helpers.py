"""Shared constants and helpers for the stand-in tests (a unique module name on purpose)."""

from __future__ import annotations

REGION = "ap-northeast-1"
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
PROVISIONED = "arn:aws:bedrock:ap-northeast-1:123456789012:provisioned-model/abc123"
PROFILE = "apac.anthropic.claude-3-5-sonnet-20240620-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "Which volume of Frieren comes next?"}]}]


class FakeClock:
    """Virtual monotonic nanoseconds that only move when a test says so."""

    def __init__(self) -> None:
        self.now_ns = 0

    def __call__(self) -> int:
        return self.now_ns

    def advance(self, seconds: float) -> None:
        self.now_ns += int(seconds * 1e9)
