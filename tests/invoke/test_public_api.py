"""The invoke package's public API is declared once and pinned."""

from __future__ import annotations

import mangaroute.invoke

EXPECTED = {
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
}


def test_all_is_pinned() -> None:
    assert set(mangaroute.invoke.__all__) == EXPECTED
    for name in EXPECTED:
        assert hasattr(mangaroute.invoke, name), name


def test_errors_are_mangaroute_errors() -> None:
    from mangaroute import MangarouteError  # noqa: PLC0415

    for name in (
        "InvocationError",
        "FailoverExhausted",
        "DeadlineExceeded",
        "MalformedResponse",
        "UnsupportedRequest",
        "UnsupportedTarget",
    ):
        assert issubclass(getattr(mangaroute.invoke, name), MangarouteError)
    assert issubclass(mangaroute.invoke.DeadlineExceeded, TimeoutError)
