"""One error table: every code in core's ERROR_CODES means the same on every path.

Each code is sent by a real HTTP server on loopback (or the stand-in, where the service can
answer it) and read by real boto3; its outcome must be the one the table gives through
``Router.call()``, through ``RoutedClient`` and through ``failure_of_code`` (the simulator's
entry point). The docs table and the rules docstring are checked against the table too.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EventStreamError

from mangaroute import BreakerState, FakeClock, Outcome, Router
from mangaroute.core.outcome import (
    CLIENT_FAULT_CODES,
    ERROR_CODES,
    THROTTLE_CODES,
    Fault,
    classify_exception,
)
from mangaroute.invoke import ClientCache, FailoverExhausted, InvokeSettings, rules
from mangaroute.invoke.rules import VERDICTS, Verdict, classify_failure, failure_of_code
from mangaroute.testing import StandIn
from mangaroute.testing.errors import BEDROCK_ERRORS, SAGEMAKER_ERRORS
from tests.invoke.conftest import ClientFactory
from tests.invoke.support import (
    MESSAGES,
    PROVISIONED,
    REGION,
    SCALE,
    Recorder,
    make_router,
    session,
)

CODES = sorted(ERROR_CODES)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "invoke.md"


class _ErrorHandler(BaseHTTPRequestHandler):
    """Answers every request with the server's current AWS rest-json error."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        server: ErrorServer = self.server  # type: ignore[assignment]
        body = json.dumps({"message": "scripted"}).encode()
        self.send_response(server.status)
        self.send_header("x-amzn-errortype", server.code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class ErrorServer(HTTPServer):
    code = "ThrottlingException"
    status = 400

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def errors() -> Iterator[ErrorServer]:
    server = ErrorServer(("127.0.0.1", 0), _ErrorHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    yield server
    server.shutdown()
    thread.join()
    server.server_close()


def held_against_health(fault: Fault) -> bool:
    return fault not in (Fault.THROTTLED, Fault.CALLER)


def test_the_table_gives_every_code_one_fault_and_every_fault_one_verdict() -> None:
    assert set(VERDICTS) == set(Fault)
    assert "RequestLimitExceeded" in THROTTLE_CODES
    assert rules.THROTTLE_CODES == THROTTLE_CODES  # invoke reads core's set, not its own
    assert rules.CALLER_FAULT_CODES == CLIENT_FAULT_CODES
    derived = (
        rules.THROTTLE_CODES,
        rules.UNAVAILABLE_CODES,
        rules.EJECT_CODES,
        rules.CALLER_FAULT_CODES,
        rules.MODEL_ERROR_CODES,
    )
    timeouts = {code for code, fault in ERROR_CODES.items() if fault is Fault.TIMEOUT}
    assert sum(len(codes) for codes in derived) + len(timeouts) == len(ERROR_CODES)


@pytest.mark.parametrize("code", CODES)
def test_failure_of_code_follows_the_table(code: str) -> None:
    fault = ERROR_CODES[code]
    for status in (0, 400, 503):  # a listed code's meaning does not depend on the status
        failure = failure_of_code(code, status=status)
        assert (failure.outcome, failure.verdict, failure.error_code) == (
            fault.outcome,
            VERDICTS[fault],
            code,
        )


@pytest.mark.parametrize("code", CODES)
def test_an_in_stream_spelling_means_the_same(code: str) -> None:
    member = code[:1].lower() + code[1:]
    error = EventStreamError({"Error": {"Code": member, "Message": "m"}}, "ConverseStream")
    fault = ERROR_CODES[code]
    assert classify_exception(error) == (fault.outcome, code)
    assert classify_failure(error).outcome is fault.outcome


@pytest.mark.parametrize("code", CODES)
def test_router_call_records_the_tables_outcome(
    code: str, errors: ErrorServer, recorder: Recorder
) -> None:
    """Three failures in a row open the breaker (consecutive_failures = 3) exactly when the
    code's fault is held against the target's health."""
    errors.code = code
    fault = ERROR_CODES[code]
    clock = FakeClock(10**12)
    router = make_router(clock, recorder)
    bedrock = session().client("bedrock-runtime", region_name=REGION, endpoint_url=errors.url)
    try:
        for _ in range(3):
            with pytest.raises(ClientError), router.call("solo") as call:
                bedrock.converse(modelId=call.target.model_id, messages=MESSAGES)
            clock.advance(ms=5)
    finally:
        bedrock.close()
    assert [(o[0], o[1], o[4]) for o in recorder.outcomes] == [("primary", fault.outcome, code)] * 3
    breaker = router.snapshot().target("primary").breaker
    assert (breaker is BreakerState.OPEN) is held_against_health(fault)


@pytest.mark.parametrize("code", CODES)
def test_routed_client_records_the_tables_outcome_and_verdict(
    code: str, errors: ErrorServer, recorder: Recorder, make_client: ClientFactory
) -> None:
    errors.code = code
    fault = ERROR_CODES[code]
    clock = FakeClock(10**12)
    router = make_router(clock, recorder)
    cache = ClientCache(session(), endpoint_url=errors.url, min_timeout_s=0.001)
    client = make_client(
        router,
        clients=cache,
        clock=clock,
        settings=InvokeSettings(time_scale=SCALE),
        refresh_snapshots=False,
    )
    try:
        with pytest.raises((ClientError, FailoverExhausted)) as caught:
            client.converse(messages=MESSAGES, request_class="solo")
    finally:
        client.close()
        cache.close()
    assert [(o[0], o[1], o[4]) for o in recorder.outcomes] == [("primary", fault.outcome, code)]
    raised_unchanged = isinstance(caught.value, ClientError)
    assert raised_unchanged is (VERDICTS[fault] is Verdict.RAISE)
    if not raised_unchanged:
        assert isinstance(caught.value, FailoverExhausted)
        (attempt,) = caught.value.attempts
        assert (attempt.outcome, attempt.error_code) == (fault.outcome.value, code)
    ejected = router.snapshot().target("primary").breaker is BreakerState.OPEN
    assert ejected is (VERDICTS[fault] is Verdict.EJECT)


@pytest.mark.parametrize(
    ("code", "request_class", "target"),
    [(code, "chat", PROVISIONED) for code in sorted(BEDROCK_ERRORS)]
    + [(code, "manga", "manga-ft") for code in sorted(SAGEMAKER_ERRORS)],
)
def test_the_stand_ins_errors_follow_the_table(
    code: str,
    request_class: str,
    target: str,
    standin: StandIn,
    router: Router,
    recorder: Recorder,
    make_client: ClientFactory,
) -> None:
    """Every error the stand-in's services can answer is in the table, and is recorded with
    the table's outcome when a real boto3 client meets it."""
    assert code in ERROR_CODES
    standin.target(target).fail_with(code)
    client = make_client(router)
    with contextlib.suppress(ClientError, FailoverExhausted):
        client.converse(messages=MESSAGES, request_class=request_class)
    first = recorder.outcomes[0]
    assert (first[1], first[4]) == (ERROR_CODES[code].outcome, code)


def test_request_limit_exceeded_is_throttled_on_every_path(
    errors: ErrorServer, recorder: Recorder
) -> None:
    """The code the two old tables disagreed on: throttled, failed over, never against
    health - through Router.call() (which used to say so) and RoutedClient (which raised it)."""
    errors.code, errors.status = "RequestLimitExceeded", 503
    failure = failure_of_code("RequestLimitExceeded", status=503)
    assert (failure.outcome, failure.verdict) == (Outcome.THROTTLED, Verdict.FAILOVER)
    router = make_router(FakeClock(10**12), recorder)
    bedrock = session().client("bedrock-runtime", region_name=REGION, endpoint_url=errors.url)
    try:
        with pytest.raises(ClientError) as caught, router.call("solo") as call:
            bedrock.converse(modelId=call.target.model_id, messages=MESSAGES)
    finally:
        bedrock.close()
    assert classify_exception(caught.value) == (Outcome.THROTTLED, "RequestLimitExceeded")
    assert classify_failure(caught.value).verdict is Verdict.FAILOVER
    assert recorder.outcomes[0][1] is Outcome.THROTTLED


def _table_rows(text: str) -> list[tuple[str, str]]:
    """(first column, second column) of each row of the Failover rules table."""
    section = text.split("## Failover rules", 1)[1]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return [(cells[1], cells[2].strip()) for cells in (row.split("|") for row in rows)]


def _docstring_rows(text: str) -> list[tuple[str, str]]:
    """(first column, second column) of the rules table in the module docstring; a row's
    continuation lines have an empty second column."""
    lines = text.splitlines()
    rules_at = [i for i, line in enumerate(lines) if line.startswith("=====")]
    lines = lines[rules_at[1] + 1 : rules_at[2]]
    rows: list[tuple[str, str]] = []
    for line in lines:
        first, second = line[:56], line[56:65].strip()
        if second or not rows:
            rows.append((first, second))
        else:
            rows[-1] = (rows[-1][0] + " " + first, rows[-1][1])
    return rows


@pytest.mark.parametrize("code", CODES)
def test_the_docs_table_says_what_the_table_does(code: str) -> None:
    fault = ERROR_CODES[code]
    rows = [row for row in _table_rows(DOCS.read_text()) if f"`{code}`" in row[0]]
    assert rows, f"{code} is missing from docs/invoke.md's failover table"
    assert all(recorded.startswith(fault.outcome.value) for _, recorded in rows)
    word = re.compile(r"(?<![A-Za-z])" + re.sub(r"Exception$", "", code))
    rows = [row for row in _docstring_rows(rules.__doc__ or "") if word.search(row[0])]
    assert rows, f"{code} is missing from the rules docstring table"
    assert all(recorded.startswith(fault.outcome.value) for _, recorded in rows)
