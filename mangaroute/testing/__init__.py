"""A local, scriptable stand-in for the Bedrock runtime and SageMaker runtime APIs.

Real boto3 clients talk to it unchanged through ``endpoint_url``::

    from mangaroute.testing import Latency, StandIn, TargetScript

    script = TargetScript(latency=Latency(ttft_p50_ms=600, ttft_p99_ms=1500, per_token_ms=12))
    with StandIn(models={"anthropic.claude-3-haiku-20240307-v1:0": script}, time_scale=0.01) as s:
        client = boto3.client("bedrock-runtime", endpoint_url=s.endpoint_url, ...)

Standard library only; nothing here imports the rest of mangaroute. See ``docs/testing.md``.
"""

from mangaroute.testing.errors import (
    BEDROCK_ERRORS,
    BEDROCK_STREAM_EXCEPTIONS,
    DISCONNECT,
    SAGEMAKER_ERRORS,
    Service,
)
from mangaroute.testing.eventstream import (
    ChecksumMismatchError,
    EventStreamError,
    Message,
    decode_message,
    decode_messages,
    encode_message,
)
from mangaroute.testing.script import (
    Burst,
    CallPlan,
    Latency,
    Outage,
    StreamFailure,
    TargetScript,
    ToolUse,
    plan_call,
)
from mangaroute.testing.server import StandIn
from mangaroute.testing.target import CallRecord, Target, TargetStats

__all__ = [
    "BEDROCK_ERRORS",
    "BEDROCK_STREAM_EXCEPTIONS",
    "DISCONNECT",
    "SAGEMAKER_ERRORS",
    "Burst",
    "CallPlan",
    "CallRecord",
    "ChecksumMismatchError",
    "EventStreamError",
    "Latency",
    "Message",
    "Outage",
    "Service",
    "StandIn",
    "StreamFailure",
    "Target",
    "TargetScript",
    "TargetStats",
    "ToolUse",
    "decode_message",
    "decode_messages",
    "encode_message",
    "plan_call",
]
