"""The error codes each stand-in service can answer with, and their HTTP statuses.

The statuses are the ``error.httpStatusCode`` values of botocore's service models
(``botocore/data/bedrock-runtime/2023-09-30/service-2.json`` and
``botocore/data/sagemaker-runtime/2017-05-13/service-2.json``); a test pins them against the
installed botocore. botocore's rest-json parser takes the code from the
``x-amzn-errortype`` header, so the status only has to be plausible — but retry logic keys on
it, so it is kept exact.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from types import MappingProxyType

__all__ = [
    "BEDROCK_ERRORS",
    "BEDROCK_STREAM_EXCEPTIONS",
    "DISCONNECT",
    "SAGEMAKER_ERRORS",
    "Service",
    "stream_exception_type",
]

BEDROCK_ERRORS: Mapping[str, int] = MappingProxyType(
    {
        "AccessDeniedException": 403,
        "InternalServerException": 500,
        "ModelErrorException": 424,
        "ModelNotReadyException": 429,
        "ModelTimeoutException": 408,
        "ResourceNotFoundException": 404,
        "ServiceUnavailableException": 503,
        "ThrottlingException": 429,
        "ValidationException": 400,
    }
)
"""Errors that ``Converse`` and ``ConverseStream`` declare, by code → HTTP status."""

SAGEMAKER_ERRORS: Mapping[str, int] = MappingProxyType(
    {
        "InternalDependencyException": 530,
        "InternalFailure": 500,
        "ModelError": 424,
        "ModelNotReadyException": 429,
        "ServiceUnavailable": 503,
        "ValidationError": 400,
        # Not in InvokeEndpoint's model, but what a saturated real-time endpoint answers:
        # HTTP 400 with code ThrottlingException (SageMaker API reference, "Common Errors";
        # reported in opensearch-project/ml-commons#2429).
        "ThrottlingException": 400,
    }
)
"""Errors of sagemaker-runtime ``InvokeEndpoint``, by code → HTTP status."""

BEDROCK_STREAM_EXCEPTIONS = frozenset(
    {
        "internalServerException",
        "modelStreamErrorException",
        "serviceUnavailableException",
        "throttlingException",
        "validationException",
    }
)
"""In-stream exception members of ``ConverseStreamOutput``; also botocore's error code."""

DISCONNECT = "disconnect"
"""A mid-stream "failure" that drops the connection without an exception frame."""


class Service(Enum):
    """A stand-in service: its error catalogue and what it answers in two common cases."""

    BEDROCK = "bedrock-runtime"
    SAGEMAKER = "sagemaker-runtime"

    @property
    def errors(self) -> Mapping[str, int]:
        return BEDROCK_ERRORS if self is Service.BEDROCK else SAGEMAKER_ERRORS

    @property
    def throttle_error(self) -> str:
        """The code a throttled call gets (``ThrottlingException`` on both services)."""
        return "ThrottlingException"

    @property
    def not_found_error(self) -> str:
        """Bedrock answers 404 for an unknown model; SageMaker a 400 ``ValidationError``."""
        return "ResourceNotFoundException" if self is Service.BEDROCK else "ValidationError"

    def check(self, code: str) -> str:
        """Return ``code`` if this service can answer with it, else raise ``ValueError``."""
        if code not in self.errors:
            known = ", ".join(sorted(self.errors))
            raise ValueError(f"{self.value} has no error {code!r}; known: {known}")
        return code


def stream_exception_type(code: str) -> str:
    """Map ``ThrottlingException`` or ``throttlingException`` to the in-stream member name.

    ``:exception-type`` carries the *member* name of the event-stream union, which is the
    error code lower-camel-cased, and botocore reports exactly that string as
    ``Error.Code`` of the ``EventStreamError`` it raises. ``DISCONNECT`` passes through.
    """
    if code == DISCONNECT:
        return code
    member = code[:1].lower() + code[1:]
    if member not in BEDROCK_STREAM_EXCEPTIONS:
        known = ", ".join(sorted(BEDROCK_STREAM_EXCEPTIONS))
        raise ValueError(f"no in-stream exception {code!r}; known: {known}, {DISCONNECT}")
    return member
