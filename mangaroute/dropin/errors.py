"""Errors of a routed drop-in call, raised as the boto3 client's own exception classes.

Framework code catches ``client.exceptions.ThrottlingException`` or a
``botocore.exceptions.ClientError`` with ``response["Error"]["Code"]``; a routed call must
raise those, not mangaroute's :class:`~mangaroute.invoke.InvocationError` hierarchy. Each
error is raised as the pass-through client's modelled class for its code (so ``except``
clauses written against *that* client match, even when mangaroute's own clients come from
another botocore session), with ``routing`` (the attempts) attached and the mangaroute error
as ``__cause__``. HTTP statuses come from botocore's service model, not from a table here.

A call no target answered gets the code of what stopped it, by the meaning core's one table
(``mangaroute.core.outcome.ERROR_CODES``) gives the last attempt's error:

=============================  ==============================================
last attempt's fault           raised as
=============================  ==============================================
throttled                      ``ThrottlingException`` (429)
timeout, or deadline run out   ``ModelTimeoutException`` (408)
model                          ``ModelErrorException`` (424)
unavailable, missing, other    ``ServiceUnavailableException`` (503)
=============================  ==============================================

An error the failover rules raise unchanged (``ValidationException``) keeps its code; a
SageMaker target's code becomes the Bedrock code of the same meaning (``ValidationError`` ->
``ValidationException``). A Bedrock code of the right meaning is kept as it came
(``ModelNotReadyException``, ``InternalServerException``, ...). ``missing`` (a target's
``ResourceNotFoundException`` / ``AccessDeniedException``) becomes
``ServiceUnavailableException``: the caller's model id - a request class - exists; one of the
targets behind it is misconfigured.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from mangaroute.core.errors import InvalidRequest
from mangaroute.core.outcome import Fault, endpoint_missing, fault_of_code
from mangaroute.invoke.errors import DeadlineExceeded, InvocationError

__all__ = ["client_error", "code_of_failure"]

_BY_FAULT = {
    Fault.THROTTLED: "ThrottlingException",
    Fault.TIMEOUT: "ModelTimeoutException",
    Fault.MODEL: "ModelErrorException",
    Fault.CALLER: "ValidationException",
}
_UNAVAILABLE = "ServiceUnavailableException"


def code_of_failure(error: InvocationError, modelled: frozenset[str]) -> str:
    """The Bedrock error code a routed call that raised ``error`` answers with."""
    codes = [a.error_code for a in error.attempts if a.error_code]
    if not codes:
        return _BY_FAULT[Fault.TIMEOUT] if isinstance(error, DeadlineExceeded) else _UNAVAILABLE
    last = codes[-1][:1].upper() + codes[-1][1:]
    fault = fault_of_code(last)
    if fault is None or fault is Fault.MISSING:
        return _UNAVAILABLE
    return _same_meaning(last, fault, modelled)


def _same_meaning(code: str, fault: Fault, modelled: frozenset[str]) -> str:
    """``code`` if bedrock-runtime models it, else its Bedrock code of the same meaning."""
    return code if code in modelled else _BY_FAULT.get(fault, _UNAVAILABLE)


def client_error(client: Any, exc: BaseException, operation: str) -> BaseException:
    """``exc`` as ``client`` would raise it: its modelled ``ClientError`` subclass, or
    ``exc`` itself when it is not an AWS error (``ParamValidationError``, a dropped
    connection after the first token, ...)."""
    unchanged = exc
    modelled = frozenset(s.name for s in client.meta.service_model.error_shapes)
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        if code in modelled:
            cls = client.exceptions.from_code(code)
            return unchanged if type(exc) is cls else _raised(cls, exc.response, operation)
        fault = fault_of_code(code, endpoint_missing=endpoint_missing(exc))
        if fault is None or fault is Fault.MISSING:
            return unchanged
        message = str(error.get("Message", ""))
        return _make(client, _same_meaning(code, fault, modelled), message, operation)
    if isinstance(exc, InvocationError):
        code = code_of_failure(exc, modelled)
        routed = _make(client, code, str(exc), operation)
        routed.routing = exc.routing  # type: ignore[attr-defined]
        return routed
    if isinstance(exc, InvalidRequest):
        return _make(client, "ValidationException", str(exc), operation)
    return exc


def _make(client: Any, code: str, message: str, operation: str) -> BaseException:
    shape = client.meta.service_model.shape_for(code)
    status = shape.metadata.get("error", {}).get("httpStatusCode", 400)
    response = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
        "message": message,
    }
    return _raised(client.exceptions.from_code(code), response, operation)


def _raised(cls: Any, response: Any, operation: str) -> BaseException:
    """``cls(response, operation)``, as botocore builds a modelled error."""
    error: BaseException = cls(response, operation)
    return error
