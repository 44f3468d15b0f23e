"""``StandIn``: a local HTTP server that answers boto3's bedrock-runtime and sagemaker-runtime.

One stdlib ``ThreadingHTTPServer`` on 127.0.0.1 (port 0 picks a free port), a thread per
connection, HTTP/1.1 keep-alive, chunked bodies for streams. Scripted latency is a wait on
the server's stop event, so a slow target never holds up another request and ``stop()``
interrupts every wait at once; ``stop()`` then shuts the open connections down and joins
every handler thread, so nothing leaks past it.

Time: every scripted duration is *virtual* and the server waits ``duration × time_scale`` of
real time. The clock (``clock()`` → virtual monotonic ns) dates outages; by default it is
the real monotonic clock divided by ``time_scale``, and a test may pass its own.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType, TracebackType
from typing import Self
from urllib.parse import unquote, urlsplit

from mangaroute.testing import bedrock, sagemaker
from mangaroute.testing.errors import Service
from mangaroute.testing.script import TargetScript
from mangaroute.testing.target import Target
from mangaroute.testing.transport import LoopbackServer
from mangaroute.testing.wire import Exchange, StandInStoppedError, send_error, send_json

__all__ = ["Route", "StandIn", "parse_route"]

CONVERSE, CONVERSE_STREAM, INVOKE_ENDPOINT = "Converse", "ConverseStream", "InvokeEndpoint"
_MODEL_PATH = re.compile(r"^/model/(?P<key>.+)/(?P<op>converse|converse-stream)$")
_ENDPOINT_PATH = re.compile(r"^/endpoints/(?P<key>[^/]+)/invocations$")


@dataclass(frozen=True, slots=True)
class Route:
    """Which service, operation and target (decoded model id or endpoint name) a path names."""

    service: Service
    operation: str
    key: str


def parse_route(path: str) -> Route | None:
    """Route a request path. botocore percent-encodes the model id (``:`` and ``/`` too)."""
    path = urlsplit(path).path
    if found := _MODEL_PATH.match(path):
        operation = CONVERSE if found["op"] == "converse" else CONVERSE_STREAM
        return Route(Service.BEDROCK, operation, unquote(found["key"]))
    if found := _ENDPOINT_PATH.match(path):
        return Route(Service.SAGEMAKER, INVOKE_ENDPOINT, unquote(found["key"]))
    return None


class StandIn:
    """A scriptable local Bedrock runtime and SageMaker runtime for tests and demos.

    ``models`` are served at ``/model/{id}/converse`` and ``/converse-stream`` — keyed by
    whatever ``modelId`` the client sends: a model id, an inference-profile id or a
    provisioned-model ARN. ``endpoints`` are served at ``/endpoints/{name}/invocations``.
    Each target's rng is seeded from ``seed`` and its key, so runs repeat exactly.
    """

    def __init__(
        self,
        *,
        models: Mapping[str, TargetScript] | None = None,
        endpoints: Mapping[str, TargetScript] | None = None,
        time_scale: float = 1.0,
        seed: int = 0,
        clock: Callable[[], int] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if not (0 < time_scale < float("inf")):
            raise ValueError(f"time_scale must be positive and finite, got {time_scale}")
        self.time_scale = time_scale
        self._seed = seed
        self._clock = clock or (lambda: int(time.monotonic_ns() / time_scale))
        self._address = (host, port)
        self._lock = threading.Lock()
        self._targets: dict[Service, dict[str, Target]] = {s: {} for s in Service}
        self._unknown: Counter[str] = Counter()
        self._stopping = threading.Event()
        self._server: LoopbackServer | None = None
        self._thread: threading.Thread | None = None
        self._started_ns = self._clock()
        for model_id, script in (models or {}).items():
            self.add_model(model_id, script)
        for name, script in (endpoints or {}).items():
            self.add_endpoint(name, script)

    # --- targets -------------------------------------------------------------------------

    def _add(self, service: Service, key: str, script: TargetScript | None) -> Target:
        target = Target(key, service, script or TargetScript(), f"{self._seed}:{service}:{key}")
        with self._lock:
            if key in self._targets[service]:
                raise ValueError(f"{service.value} target {key!r} already exists")
            self._targets[service][key] = target
        return target

    def add_model(self, model_id: str, script: TargetScript | None = None) -> Target:
        """Serve Bedrock ``Converse``/``ConverseStream`` for ``model_id``."""
        return self._add(Service.BEDROCK, model_id, script)

    def add_endpoint(self, name: str, script: TargetScript | None = None) -> Target:
        """Serve sagemaker-runtime ``InvokeEndpoint`` for endpoint ``name``."""
        return self._add(Service.SAGEMAKER, name, script)

    def target(self, key: str) -> Target:
        """The model or endpoint named ``key`` (models first); ``KeyError`` if neither."""
        with self._lock:
            for service in Service:
                if key in self._targets[service]:
                    return self._targets[service][key]
        raise KeyError(key)

    @property
    def models(self) -> Mapping[str, Target]:
        with self._lock:
            return MappingProxyType(dict(self._targets[Service.BEDROCK]))

    @property
    def endpoints(self) -> Mapping[str, Target]:
        with self._lock:
            return MappingProxyType(dict(self._targets[Service.SAGEMAKER]))

    def unknown_calls(self) -> Mapping[str, int]:
        """Calls to model ids or endpoint names that no target serves, by key."""
        with self._lock:
            return MappingProxyType(dict(self._unknown))

    # --- time ----------------------------------------------------------------------------

    def elapsed_s(self) -> float:
        """Virtual seconds since ``start()`` (outage windows are measured on this)."""
        return (self._clock() - self._started_ns) / 1e9

    def _pause(self, ms: float) -> None:
        if ms > 0 and self._stopping.wait(ms * self.time_scale / 1000):
            raise StandInStoppedError
        if self._stopping.is_set():
            raise StandInStoppedError

    # --- lifecycle -----------------------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:<port>``, for ``boto3.client(..., endpoint_url=...)``."""
        if self._server is None:
            raise RuntimeError("the stand-in is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        """Bind, start serving on a background thread, and start the virtual clock."""
        if self._server is not None or self._stopping.is_set():
            raise RuntimeError("a stand-in starts once")
        self._server = LoopbackServer(self._address, self._serve, self._pause)
        self._started_ns = self._clock()
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"mangaroute-standin-{self._server.server_address[1]}",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Interrupt waits, close connections, join every thread. Safe to call twice."""
        server, thread = self._server, self._thread
        self._stopping.set()
        if server is None or thread is None:
            return
        server.shutdown()
        server.close_open_connections()
        server.server_close()
        thread.join()
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- serving -------------------------------------------------------------------------

    def _lookup(self, route: Route) -> Target | None:
        with self._lock:
            target = self._targets[route.service].get(route.key)
            if target is None:
                self._unknown[route.key] += 1
        return target

    def _serve(self, exchange: Exchange, path: str, body: bytes) -> None:
        route = parse_route(path)
        if route is None:
            headers = {"x-amzn-errortype": "UnknownOperationException"}
            send_json(exchange, 404, {"message": "unknown operation"}, headers)
            return
        target = self._lookup(route)
        if target is None:
            code = route.service.not_found_error
            send_error(exchange, route.service, code, f"{route.key} is not served here")
            return
        try:
            if route.service is Service.BEDROCK:
                self._serve_bedrock(exchange, route, target, body)
            else:
                self._serve_sagemaker(exchange, target, body)
        except OSError:
            target.note_client_disconnect()
            raise

    def _serve_bedrock(self, exchange: Exchange, route: Route, target: Target, body: bytes) -> None:
        try:
            request = bedrock.parse_converse_request(body)
        except ValueError as exc:
            target.reject(route.operation, "ValidationException", self.elapsed_s())
            send_error(exchange, Service.BEDROCK, "ValidationException", str(exc))
            return
        streaming = route.operation == CONVERSE_STREAM
        plan = target.plan(route.operation, self.elapsed_s(), streaming=streaming)
        if plan.error is not None:
            exchange.pause_ms(plan.error_latency_ms)
            message = f"{plan.error} scripted by the mangaroute stand-in"
            send_error(exchange, Service.BEDROCK, plan.error, message)
        elif streaming:
            bedrock.serve_converse_stream(exchange, plan, request)
        else:
            bedrock.serve_converse(exchange, plan, request)

    def _serve_sagemaker(self, exchange: Exchange, target: Target, body: bytes) -> None:
        try:
            request = sagemaker.parse_generate_request(body)
        except ValueError as exc:
            target.reject(INVOKE_ENDPOINT, "ModelError", self.elapsed_s())
            sagemaker.send_model_error(exchange, target.name, 400, str(exc))
            return
        plan = target.plan(INVOKE_ENDPOINT, self.elapsed_s())
        if plan.error is not None:
            exchange.pause_ms(plan.error_latency_ms)
            message = f"{plan.error} scripted by the mangaroute stand-in"
            send_error(exchange, Service.SAGEMAKER, plan.error, message)
        else:
            sagemaker.serve_invoke(exchange, plan, request)
