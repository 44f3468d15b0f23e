"""Outcomes of a call, and how exceptions map to them.

Four outcomes, each with a small integer code used on the hot path:

* ``ok`` - an answer arrived;
* ``throttled`` - the target is healthy but full (HTTP 429, ``ThrottlingException``); it counts
  against capacity, never against health;
* ``error`` - the call failed;
* ``timeout`` - no answer within the deadline.

Errors a caller causes (``ValidationException``) are recorded as ``error`` but do not count
against the target's health: a bad prompt must not eject a good target.
"""

from __future__ import annotations

from enum import StrEnum
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

THROTTLE_CODES = frozenset(
    {
        "ThrottlingException",
        "TooManyRequestsException",
        "ServiceQuotaExceededException",
        "ProvisionedThroughputExceededException",
        "Throttling",
        "RequestLimitExceeded",
    }
)
"""Error codes that mean "full, try elsewhere" (Bedrock, SageMaker and generic AWS codes)."""

TIMEOUT_CODES = frozenset({"ModelTimeoutException", "RequestTimeout", "RequestTimeoutException"})

CLIENT_FAULT_CODES = frozenset({"ValidationException", "ValidationError"})
"""Error codes the caller causes; recorded, but never held against the target's health."""

_TIMEOUT_EXCEPTION_NAMES = frozenset(
    {"ReadTimeoutError", "ConnectTimeoutError", "ConnectTimeout", "ReadTimeout", "Timeout"}
)


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


def classify_exception(exc: BaseException) -> tuple[Outcome, str]:
    """Map an exception raised by a model call to ``(outcome, error_code)``."""
    code = error_code_of(exc)
    if code in THROTTLE_CODES:
        return Outcome.THROTTLED, code
    if (
        code in TIMEOUT_CODES
        or isinstance(exc, TimeoutError)
        or type(exc).__name__ in _TIMEOUT_EXCEPTION_NAMES
    ):
        return Outcome.TIMEOUT, code
    return Outcome.ERROR, code
