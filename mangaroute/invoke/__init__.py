"""Routed invocation: Bedrock Converse / ConverseStream and SageMaker endpoints, with
failover inside the deadline. See ``docs/invoke.md``.

::

    from mangaroute import Router
    from mangaroute.invoke import RoutedClient

    with RoutedClient(Router.default()) as bedrock:
        reply = bedrock.converse(
            messages=[{"role": "user", "content": [{"text": "..."}]}],
            request_class="simple",
            budget_ms=1500,
        )
        reply["output"]["message"], reply.routing.target, reply.routing.attempts
"""

from mangaroute.invoke.client import DEFAULT_INVOKERS, InvokeSettings, RoutedClient
from mangaroute.invoke.client_cache import ClientCache, ClientProvider, FixedClients
from mangaroute.invoke.deadline import Deadline
from mangaroute.invoke.errors import (
    DeadlineExceeded,
    FailoverExhausted,
    InvocationError,
    MalformedResponse,
    UnsupportedRequest,
    UnsupportedTarget,
)
from mangaroute.invoke.hedging import HedgeBudget, HedgePolicy
from mangaroute.invoke.invokers import BedrockInvoker, EventSource, Invoker, ReplayedStream
from mangaroute.invoke.result import Attempt, AttemptKind, ConverseResponse, RoutingResult
from mangaroute.invoke.retry import RetryBudget, RetryPolicy
from mangaroute.invoke.rules import Failure, Verdict, classify_failure
from mangaroute.invoke.sagemaker import EndpointMapping, SageMakerInvoker, TgiMapping
from mangaroute.invoke.stream import AsyncRoutedStream, RoutedStream

__all__ = [
    "DEFAULT_INVOKERS",
    "AsyncRoutedStream",
    "Attempt",
    "AttemptKind",
    "BedrockInvoker",
    "ClientCache",
    "ClientProvider",
    "ConverseResponse",
    "Deadline",
    "DeadlineExceeded",
    "EndpointMapping",
    "EventSource",
    "FailoverExhausted",
    "Failure",
    "FixedClients",
    "HedgeBudget",
    "HedgePolicy",
    "InvocationError",
    "InvokeSettings",
    "Invoker",
    "MalformedResponse",
    "ReplayedStream",
    "RetryBudget",
    "RetryPolicy",
    "RoutedClient",
    "RoutedStream",
    "RoutingResult",
    "SageMakerInvoker",
    "TgiMapping",
    "UnsupportedRequest",
    "UnsupportedTarget",
    "Verdict",
    "classify_failure",
]
