"""The failover rules: what each error from a target means for the routed call.

Every exception an attempt raises is mapped here, at the boundary, to a :class:`Failure`:
the outcome recorded for the target, and a :class:`Verdict` saying what the call does next.
The codes and their meanings are core's one table (``mangaroute.core.outcome.ERROR_CODES``);
this module adds only the verdict per meaning (:data:`VERDICTS`), so a code is recorded the
same through ``Router.call()``, here and in the simulator. The table (also in
``docs/invoke.md``):

=====================================================  =========  ============================
error                                                  recorded   then
=====================================================  =========  ============================
Throttling(Exception), ServiceQuotaExceeded,            throttled  fail over if the budget fits
TooManyRequests, ProvisionedThroughputExceeded,
RequestLimitExceeded
ServiceUnavailable, ModelNotReady, InternalServer,      error      fail over if the budget fits
InternalFailure, InternalDependency, other HTTP 5xx
ModelTimeout, RequestTimeout(Exception), connect and    timeout    fail over if the budget fits
read timeouts
connection refused / closed / dropped mid-response      error      fail over if the budget fits
ResourceNotFound, AccessDenied, SageMaker               error      eject the target, fail over,
``ValidationError`` "Endpoint ... not found"                       log once, loudly
ValidationException / ValidationError                   error [1]  raise unchanged, no retry
ModelError(Exception), ModelStreamErrorException,       error      fail over at most once per call
an endpoint body the mapping cannot read
other 4xx ``ClientError``                               error      raise unchanged
botocore ``ParamValidationError``, other exceptions     --         raise unchanged
the request cannot be expressed for the target          --         skip the target
=====================================================  =========  ============================

[1] recorded, but never held against the target's health (a bad prompt must not eject a
good target). In-stream exceptions of ConverseStream (``throttlingException``, ...) are read
by their PascalCase code and follow the same rows - until the first token has reached the
caller; after that any error is raised unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any

import botocore.exceptions as boto_errors
import urllib3.exceptions as urllib3_errors

from mangaroute.core.outcome import (
    Fault,
    Outcome,
    codes_of,
    fault_of_code,
    pascal_code,
)
from mangaroute.core.outcome import endpoint_missing as _endpoint_missing
from mangaroute.invoke.errors import MalformedResponse, UnsupportedRequest

__all__ = [
    "CALLER_FAULT_CODES",
    "EJECT_CODES",
    "MODEL_ERROR_CODES",
    "THROTTLE_CODES",
    "UNAVAILABLE_CODES",
    "VERDICTS",
    "Failure",
    "Verdict",
    "classify_failure",
    "failure_of_code",
]


class Verdict(StrEnum):
    FAILOVER = "failover"
    """Try the next fallback if the remaining budget fits its predicted latency."""
    EJECT = "eject"
    """Open the target's breaker for a long cool-down, then fail over."""
    MODEL_ERROR = "model_error"
    """Fail over, but at most once per routed call."""
    RAISE = "raise"
    """Give the exception to the caller unchanged."""
    SKIP = "skip"
    """The target cannot carry this request: try the next one, blame nobody."""


@dataclass(frozen=True, slots=True)
class Failure:
    """How one failed attempt is recorded and what the call does next."""

    verdict: Verdict
    outcome: Outcome
    error_code: str
    recorded: bool = True
    """False when the request never reached the target (nothing to learn about it)."""


THROTTLE_CODES = codes_of(Fault.THROTTLED)
UNAVAILABLE_CODES = codes_of(Fault.UNAVAILABLE)
EJECT_CODES = codes_of(Fault.MISSING)
CALLER_FAULT_CODES = codes_of(Fault.CALLER)
MODEL_ERROR_CODES = codes_of(Fault.MODEL)

VERDICTS: Mapping[Fault, Verdict] = MappingProxyType(
    {
        Fault.THROTTLED: Verdict.FAILOVER,
        Fault.TIMEOUT: Verdict.FAILOVER,
        Fault.UNAVAILABLE: Verdict.FAILOVER,
        Fault.MISSING: Verdict.EJECT,
        Fault.CALLER: Verdict.RAISE,
        Fault.MODEL: Verdict.MODEL_ERROR,
    }
)
"""What a routed call does next, per :class:`~mangaroute.core.outcome.Fault`: the codes and
their meanings are core's one table (:data:`~mangaroute.core.outcome.ERROR_CODES`)."""

_TIMEOUTS = (
    boto_errors.ReadTimeoutError,
    boto_errors.ConnectTimeoutError,
    urllib3_errors.TimeoutError,
    TimeoutError,
)
_TRANSPORT = (
    boto_errors.ConnectionError,
    boto_errors.HTTPClientError,
    urllib3_errors.HTTPError,
    ConnectionError,
)


def _status(exc: BaseException) -> int:
    response: Any = getattr(exc, "response", None)
    try:
        return int(response["ResponseMetadata"]["HTTPStatusCode"])
    except (TypeError, KeyError, ValueError):
        return 0


def failure_of_code(code: str, *, status: int = 0, endpoint_missing: bool = False) -> Failure:
    """The :class:`Failure` for an error code (PascalCase) as a target returned it: the code's
    :class:`~mangaroute.core.outcome.Fault` in core's table and that fault's :data:`VERDICTS`
    entry. ``status`` is the HTTP status (0 if unknown: only a 5xx status makes an unlisted
    code fail over); ``endpoint_missing`` marks SageMaker's ``ValidationError`` "Endpoint ...
    not found". :func:`classify_failure` reads exceptions through it, and the simulator
    classifies its simulated error codes with it - so a simulated failure follows exactly the
    rule a real one does."""
    fault = fault_of_code(code, endpoint_missing=endpoint_missing)
    if fault is not None:
        return Failure(VERDICTS[fault], fault.outcome, code)
    if status >= 500:
        return Failure(Verdict.FAILOVER, Outcome.ERROR, code)
    return Failure(Verdict.RAISE, Outcome.ERROR, code)


def _client_error(exc: boto_errors.ClientError) -> Failure:
    missing = _endpoint_missing(exc)
    return failure_of_code(pascal_code(exc), status=_status(exc), endpoint_missing=missing)


def classify_failure(exc: BaseException) -> Failure:
    """Map an exception raised by one attempt to its :class:`Failure`."""
    if isinstance(exc, boto_errors.ClientError):
        return _client_error(exc)
    name = type(exc).__name__
    if isinstance(exc, UnsupportedRequest):
        return Failure(Verdict.SKIP, Outcome.ERROR, name, recorded=False)
    if isinstance(exc, MalformedResponse):
        return Failure(Verdict.MODEL_ERROR, Outcome.ERROR, name)
    if isinstance(exc, _TIMEOUTS):
        return Failure(Verdict.FAILOVER, Outcome.TIMEOUT, name)
    if isinstance(exc, _TRANSPORT):
        return Failure(Verdict.FAILOVER, Outcome.ERROR, name)
    return Failure(Verdict.RAISE, Outcome.ERROR, name, recorded=False)
