"""Every attribute, metric and value name mangaroute's telemetry emits, in one place.

The GenAI names follow the OpenTelemetry GenAI semantic conventions (v1.37 naming and later:
``gen_ai.provider.name``, not the deprecated ``gen_ai.system``), now maintained in the
``open-telemetry/semantic-conventions-genai`` repository (``docs/gen-ai/gen-ai-metrics.md``,
``docs/gen-ai/aws-bedrock.md``). They are plain strings here on purpose: the incubating
constants of ``opentelemetry-semantic-conventions`` are deprecated and move between releases,
and a library that depends on ``opentelemetry-api`` only should not pull them in.

Names under ``mangaroute.`` are this project's own.
"""

from __future__ import annotations

from typing import Final

# -- GenAI semantic conventions: attributes --------------------------------------------------
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_REQUEST_STREAM: Final = "gen_ai.request.stream"
GEN_AI_REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: Final = "gen_ai.usage.cache_creation.input_tokens"
"""Prompt-cache tokens (Converse's ``cacheReadInputTokens`` / ``cacheWriteInputTokens``). The
conventions that define them (semantic-conventions PR #3163) also make
``gen_ai.usage.input_tokens`` include them, where Bedrock's ``inputTokens`` does not: spans
add them in."""
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"

# -- general semantic conventions (stable) ---------------------------------------------------
ERROR_TYPE: Final = "error.type"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
CLOUD_REGION: Final = "cloud.region"

# -- well-known values ----------------------------------------------------------------------
OPERATION_CHAT: Final = "chat"
PROVIDER_AWS_BEDROCK: Final = "aws.bedrock"
"""The conventions' value for Bedrock (``aws-bedrock.md``: MUST be ``aws.bedrock``)."""
PROVIDER_AWS_SAGEMAKER: Final = "aws.sagemaker"
"""Not a well-known value of the conventions (they list none for SageMaker); the conventions
allow a custom value, and this one follows the ``aws.<service>`` shape of ``aws.bedrock``."""
PROVIDER_AWS_LAMBDA: Final = "aws.lambda"
"""Custom value, as for SageMaker: a Lambda function fronting a model."""
TOKEN_TYPE_INPUT: Final = "input"
TOKEN_TYPE_OUTPUT: Final = "output"
ERROR_OTHER: Final = "_OTHER"
"""The conventions' fallback ``error.type`` (used here when too many distinct codes appear)."""

# -- GenAI semantic conventions: metrics ------------------------------------------------------
METRIC_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
METRIC_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
METRIC_TIME_TO_FIRST_CHUNK: Final = "gen_ai.client.operation.time_to_first_chunk"

DURATION_BUCKETS_S: Final = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)
"""Explicit bucket boundaries the conventions give for ``operation.duration`` and
``time_to_first_chunk`` (seconds)."""

TOKEN_BUCKETS: Final = (
    1,
    4,
    16,
    64,
    256,
    1024,
    4096,
    16384,
    65536,
    262144,
    1048576,
    4194304,
    16777216,
    67108864,
)
"""Explicit bucket boundaries the conventions give for ``gen_ai.client.token.usage``."""

# -- mangaroute's own span attributes ---------------------------------------------------------
ROUTE_SPAN_NAME: Final = "route"
DECISION_ID: Final = "mangaroute.decision.id"
REQUEST_CLASS: Final = "mangaroute.request_class"
POLICY: Final = "mangaroute.policy"
REASON: Final = "mangaroute.reason"
TARGET: Final = "mangaroute.target"
PATTERN: Final = "mangaroute.pattern"
FALLBACKS: Final = "mangaroute.fallbacks"
CANDIDATES: Final = "mangaroute.candidates"
EXCLUDED: Final = "mangaroute.excluded"
"""``name=reason`` for each eligible target a filter dropped (from the snapshot's route)."""
PRIMARY: Final = "mangaroute.primary"
BUDGET_MS: Final = "mangaroute.budget_ms"
"""The latency budget left (ms): on the route span at its start, on an attempt at its start."""
ATTEMPT: Final = "mangaroute.attempt"
"""1 for the first attempt of a routed call, 2 for the next, ..."""
ATTEMPT_KIND: Final = "mangaroute.attempt.kind"
ATTEMPTS: Final = "mangaroute.attempts"
FAILOVERS: Final = "mangaroute.failovers"
ANSWERED_BY: Final = "mangaroute.answered_by"
OUTCOME: Final = "mangaroute.outcome"
FROM_TARGET: Final = "mangaroute.from_target"
TO_TARGET: Final = "mangaroute.to_target"
BREAKER_STATE: Final = "mangaroute.breaker.state"
FROM_STATE: Final = "mangaroute.breaker.from_state"

# -- mangaroute's own metrics -----------------------------------------------------------------
METRIC_DECISIONS: Final = "mangaroute.decisions"
METRIC_FAILOVERS: Final = "mangaroute.failovers"
METRIC_BREAKER_STATE: Final = "mangaroute.breaker.state"
METRIC_BREAKER_TRANSITIONS: Final = "mangaroute.breaker.transitions"
METRIC_SWITCHES: Final = "mangaroute.switches"
METRIC_SPEND: Final = "mangaroute.spend"
METRIC_CACHE_TOKENS: Final = "mangaroute.cache.tokens"
CACHE_KIND: Final = "mangaroute.cache.kind"
"""``read`` or ``write``: which prompt-cache tokens ``mangaroute.cache.tokens`` counts."""
CACHE_READ: Final = "read"
CACHE_WRITE: Final = "write"
METRIC_DROPPED: Final = "mangaroute.telemetry.dropped"
METRIC_RELOADS: Final = "mangaroute.config.reloads"
RELOAD_RESULT: Final = "mangaroute.reload.result"
"""``accepted`` or ``rejected``: how a config reload ended (``mangaroute.config.reloads``)."""

INSTRUMENTATION_NAME: Final = "mangaroute"
