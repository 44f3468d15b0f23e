"""Outcomes of a call, the one table of AWS error codes, and how exceptions map to them.

Four outcomes, each with a small integer code used on the hot path:

* ``ok`` - an answer arrived;
* ``throttled`` - the target is healthy but full (HTTP 429, ``ThrottlingException``); it counts
  against capacity, never against health;
* ``error`` - the call failed;
* ``timeout`` - no answer within the deadline.

:data:`ERROR_CODES` is the only place an AWS error code is given a meaning: a :class:`Fault`
saying what the code tells us about the target. Everything else reads it - ``Router.call()``
through :func:`classify_exception`, ``Router.record`` through :data:`CLIENT_FAULT_CODES`, and
``mangaroute.invoke.rules``, which adds a verdict (fail over, eject, raise) per fault without
naming a code - so a code means the same thing on every path.

Errors a caller causes (``ValidationException``) are recorded as ``error`` but do not count
against the target's health: a bad prompt must not eject a good target.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Any


class Outcome(StrEnum):
    OK = "ok"
    THROTTLED = "throttled"
    ERROR = "error"
    TIMEOUT = "timeout"


OK, THROTTLED, ERROR, TIMEOUT = 0, 1, 2, 3
OUTCOME_CODES: dict[str, int] = {
    Outcome.OK: OK,
    Outcome.THROTTLED: THROTTLED,
    Outcome.ERROR: ERROR,
    Outcome.TIMEOUT: TIMEOUT,
}
OUTCOMES_BY_CODE: tuple[Outcome, ...] = (
    Outcome.OK,
    Outcome.THROTTLED,
    Outcome.ERROR,
    Outcome.TIMEOUT,
)


class Fault(StrEnum):
    """What an error code says about the target that returned it."""

    THROTTLED = "throttled"
    """Healthy but full: try elsewhere; counts against capacity, never against health."""
    TIMEOUT = "timeout"
    """No answer in time."""
    UNAVAILABLE = "unavailable"
    """Down, starting or failing inside (a 5xx)."""
    MISSING = "missing"
    """The target is wrong for this account: not found, or no access to it."""
    CALLER = "caller"
    """The request is bad; recorded, never held against the target's health."""
    MODEL = "model"
    """The model itself failed on this input."""

    @property
    def outcome(self) -> Outcome:
        """The outcome recorded for a call that failed with this fault."""
        return _OUTCOMES.get(self, Outcome.ERROR)


_OUTCOMES: Mapping[Fault, Outcome] = MappingProxyType(
    {Fault.THROTTLED: Outcome.THROTTLED, Fault.TIMEOUT: Outcome.TIMEOUT}
)

ERROR_CODES: Mapping[str, Fault] = MappingProxyType(
    {
        # Bedrock Runtime Converse / ConverseStream errors (API reference, "Errors"):
        "ThrottlingException": Fault.THROTTLED,  # 429, account quota
        "ServiceQuotaExceededException": Fault.THROTTLED,  # 400, "resubmit later"
        "ModelTimeoutException": Fault.TIMEOUT,  # 408
        "ServiceUnavailableException": Fault.UNAVAILABLE,  # 503
        "ModelNotReadyException": Fault.UNAVAILABLE,  # 429, model not yet serving
        "InternalServerException": Fault.UNAVAILABLE,  # 500
        "ResourceNotFoundException": Fault.MISSING,  # 404
        "AccessDeniedException": Fault.MISSING,  # 403
        "ValidationException": Fault.CALLER,  # 400
        "ModelErrorException": Fault.MODEL,  # 424
        "ModelStreamErrorException": Fault.MODEL,  # in-stream, 424
        # SageMaker Runtime InvokeEndpoint errors (API reference, "Errors"):
        "ServiceUnavailable": Fault.UNAVAILABLE,  # 503
        "InternalFailure": Fault.UNAVAILABLE,  # 500
        "InternalDependencyException": Fault.UNAVAILABLE,  # 530
        "ValidationError": Fault.CALLER,  # 400 (but see endpoint_missing)
        "ModelError": Fault.MODEL,  # 424
        # Throttling codes of other AWS front doors, all in botocore's standard retry mode's
        # throttled list (botocore/retries/standard.py, ThrottledRetryableChecker): a proxy or
        # gateway in front of a target answers with them. RequestLimitExceeded is EC2's
        # "request rate exceeded" (EC2 API reference, "Error codes").
        "TooManyRequestsException": Fault.THROTTLED,
        "ProvisionedThroughputExceededException": Fault.THROTTLED,
        "Throttling": Fault.THROTTLED,
        "RequestLimitExceeded": Fault.THROTTLED,
        # botocore's standard retry mode's transient codes that say "timed out":
        "RequestTimeout": Fault.TIMEOUT,
        "RequestTimeoutException": Fault.TIMEOUT,
    }
)
"""Every AWS error code mangaroute gives a meaning, by code (PascalCase) -> :class:`Fault`.
An unlisted code is an ``error`` held against the target's health."""


def codes_of(fault: Fault) -> frozenset[str]:
    """The codes of :data:`ERROR_CODES` that mean ``fault``."""
    return frozenset(code for code, meaning in ERROR_CODES.items() if meaning is fault)


THROTTLE_CODES = codes_of(Fault.THROTTLED)
"""Error codes that mean "full, try elsewhere"."""
TIMEOUT_CODES = codes_of(Fault.TIMEOUT)
CLIENT_FAULT_CODES = codes_of(Fault.CALLER)
"""Error codes the caller causes; recorded, but never held against the target's health."""

_TIMEOUT_EXCEPTION_NAMES = frozenset(
    {"ReadTimeoutError", "ConnectTimeoutError", "ConnectTimeout", "ReadTimeout", "Timeout"}
)
_ENDPOINT_NOT_FOUND = re.compile(r"\bEndpoint\b.*\bnot found\b", re.IGNORECASE)


def fault_of_code(code: str, *, endpoint_missing: bool = False) -> Fault | None:
    """The :class:`Fault` of an error code (PascalCase), or ``None`` if it is not listed.

    SageMaker answers a missing endpoint with ``ValidationError`` "Endpoint X of account Y
    not found." - a wrong target, not a bad request; ``endpoint_missing`` (see
    :func:`endpoint_missing`) turns that one caller fault into :attr:`Fault.MISSING`.
    """
    fault = ERROR_CODES.get(code)
    if fault is Fault.CALLER and endpoint_missing:
        return Fault.MISSING
    return fault


def error_code_of(exc: BaseException) -> str:
    """The AWS error code of an exception, or its class name.

    botocore's ``ClientError`` carries ``response["Error"]["Code"]``; this reads it by shape,
    so the core does not import botocore.
    """
    response: Any = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error")
        if isinstance(error, dict):
            code = error.get("Code")
            if isinstance(code, str) and code:
                return code
    return type(exc).__name__


def pascal_code(exc: BaseException) -> str:
    """:func:`error_code_of`, PascalCase: ConverseStream's in-stream exceptions arrive as
    their lower-camel member name (``throttlingException``), and mean what the code does."""
    code = error_code_of(exc)
    return code[:1].upper() + code[1:]


def endpoint_missing(exc: BaseException) -> bool:
    """Whether the error's message says "Endpoint ... not found" (read by shape)."""
    response: Any = getattr(exc, "response", None)
    try:
        message = response["Error"]["Message"]
    except (TypeError, KeyError):
        return False
    return isinstance(message, str) and _ENDPOINT_NOT_FOUND.search(message) is not None


def fault_of(exc: BaseException) -> tuple[Fault | None, str]:
    """``(fault, error_code)`` of an exception from a model call; fault ``None`` if its code
    is not in :data:`ERROR_CODES`."""
    code = pascal_code(exc)
    return fault_of_code(code, endpoint_missing=endpoint_missing(exc)), code


def classify_exception(exc: BaseException) -> tuple[Outcome, str]:
    """Map an exception raised by a model call to ``(outcome, error_code)``: the code's
    meaning in :data:`ERROR_CODES` first, then timeouts by exception type."""
    fault, code = fault_of(exc)
    if fault is not None:
        return fault.outcome, code
    if isinstance(exc, TimeoutError) or type(exc).__name__ in _TIMEOUT_EXCEPTION_NAMES:
        return Outcome.TIMEOUT, code
    return Outcome.ERROR, code
