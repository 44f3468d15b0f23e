"""How targets, reasons and endpoints are named in telemetry.

Small pure functions shared by the span, OpenTelemetry-metric and CloudWatch adapters, so the
three always agree (a target's provider, its server address, a bounded reason label).
"""

from __future__ import annotations

import re
import sys
from functools import lru_cache
from urllib.parse import urlsplit

from mangaroute.core.targets import Pattern, Target
from mangaroute.telemetry import semconv

__all__ = ["botocore_instrumented", "provider_of", "reason_kind", "server_of", "service_of"]

_PROVIDERS: dict[Pattern, str] = {
    Pattern.BEDROCK_PROVISIONED: semconv.PROVIDER_AWS_BEDROCK,
    Pattern.BEDROCK_ON_DEMAND: semconv.PROVIDER_AWS_BEDROCK,
    Pattern.SAGEMAKER_REALTIME: semconv.PROVIDER_AWS_SAGEMAKER,
    Pattern.SAGEMAKER_SERVERLESS: semconv.PROVIDER_AWS_SAGEMAKER,
    Pattern.LAMBDA_ON_DEMAND: semconv.PROVIDER_AWS_LAMBDA,
}

_HOSTS: dict[str, str] = {
    semconv.PROVIDER_AWS_BEDROCK: "bedrock-runtime.{region}.amazonaws.com",
    semconv.PROVIDER_AWS_SAGEMAKER: "runtime.sagemaker.{region}.amazonaws.com",
    semconv.PROVIDER_AWS_LAMBDA: "lambda.{region}.amazonaws.com",
}

_SERVICES: dict[str, str] = {
    semconv.PROVIDER_AWS_BEDROCK: "bedrock-runtime",
    semconv.PROVIDER_AWS_SAGEMAKER: "sagemaker-runtime",
    semconv.PROVIDER_AWS_LAMBDA: "lambda",
}

_DETAIL = re.compile(r"\([^)]*\)")


def provider_of(target: Target) -> str:
    """``gen_ai.provider.name`` of a target: ``aws.bedrock``, ``aws.sagemaker`` or
    ``aws.lambda`` (the last two are custom values; see :mod:`.semconv`)."""
    return _PROVIDERS[target.pattern]


def server_of(target: Target, endpoint_url: str | None = None) -> tuple[str, int]:
    """``(server.address, server.port)`` of a call to ``target``.

    The host of ``endpoint_url`` when the client has one (``client.meta.endpoint_url``: a VPC
    endpoint, a local stand-in), otherwise the service's public regional endpoint.
    """
    if endpoint_url:
        return _parse_endpoint(endpoint_url)
    return _HOSTS[provider_of(target)].format(region=target.region), 443


def service_of(target: Target) -> str:
    """The boto3 service a call to ``target`` goes through (``bedrock-runtime``, ...): the key
    of an ``endpoint_url`` mapping, as :class:`~mangaroute.invoke.ClientCache` takes it."""
    return _SERVICES[provider_of(target)]


@lru_cache(maxsize=64)
def _parse_endpoint(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    host = parts.hostname or url
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        port = 80 if parts.scheme == "http" else 443
    return host, port


def reason_kind(reason: str) -> str:
    """A reason with its measured details removed, fit to be a metric label.

    Switch and breaker reasons carry numbers (``high_latency(2612ms), high_errors(12.0%)``,
    ``consecutive_failures(5)``); as a metric dimension each distinct number would be a new
    time series, so only the kinds are kept: ``high_latency,high_errors``. Spans keep the full
    text.
    """
    kinds = [part.strip() for part in _DETAIL.sub("", reason).split(",")]
    return ",".join(kind for kind in kinds if kind) or "unspecified"


def botocore_instrumented() -> bool:
    """Whether OpenTelemetry's botocore instrumentation is active in this process.

    Read without importing it: when the application never imported the instrumentation it
    cannot be active. When it is active it creates a CLIENT span for every AWS call (for
    Bedrock ``Converse`` one with the GenAI attributes itself), which nests inside the span
    that is current while the boto3 call runs.
    """
    module = sys.modules.get("opentelemetry.instrumentation.botocore")
    instrumentor = getattr(module, "BotocoreInstrumentor", None)
    if instrumentor is None:
        return False
    try:
        return bool(instrumentor().is_instrumented_by_opentelemetry)
    except Exception:  # a future version that changed shape: assume not instrumented
        return False
