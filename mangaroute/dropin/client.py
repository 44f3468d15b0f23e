"""A routed bedrock-runtime client that code written for boto3's accepts unchanged.

``converse`` and ``converse_stream`` take boto3's keyword arguments and return boto3's
shapes. A ``modelId`` that names a request class (``"simple"``), ``"<namespace>/<class>"``
(``"mangaroute/simple"``) or an alias (``aliases={"mangaassist/simple": "simple"}``) is routed
by a :class:`~mangaroute.invoke.RoutedClient` - its failover plan, deadlines, records and
spans, nothing re-implemented here. Any other model id or ARN goes to a real boto3 client
unchanged and is counted as unrouted. Every other attribute (``meta``, ``exceptions``,
``invoke_model``, ``apply_guardrail``, ``count_tokens``, ...) is the real client's.
See ``docs/dropin.md``.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NoReturn, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import ParamValidationError
from opentelemetry import metrics

from mangaroute._closing import ClosesOnExit
from mangaroute.core.errors import InvalidRequest, echo
from mangaroute.core.router import Router
from mangaroute.dropin.errors import client_error
from mangaroute.dropin.routing_context import RoutingContext, current_context, split_metadata
from mangaroute.invoke.client import InvokeSettings, RoutedClient
from mangaroute.invoke.deadline import Deadline
from mangaroute.invoke.result import RoutingResult
from mangaroute.invoke.stream import RoutedStream
from mangaroute.telemetry import semconv as sc
from mangaroute.telemetry.instruments import Instrument, mangaroute_meter
from mangaroute.telemetry.tracing import RoutingTelemetry

__all__ = ["RoutedBedrockRuntime", "RoutedStreamResponse", "bedrock_runtime"]

SERVICE = "bedrock-runtime"
DEFAULT_NAMESPACE = "mangaroute"
METRIC_UNROUTED = "mangaroute.dropin.unrouted"
UNROUTED = Instrument(
    METRIC_UNROUTED,
    "{call}",
    "Converse / ConverseStream calls the drop-in client passed straight through: their model "
    "id names no request class.",
)
"""Counter of calls the drop-in client passed straight through, by ``gen_ai.request.model``
(the model id) and ``gen_ai.operation.name`` (``chat``)."""

_Answer = TypeVar("_Answer")


class RoutedStreamResponse(dict[str, Any]):
    """``converse_stream``'s answer, as boto3 shapes it (the events under ``"stream"``),
    with ``routing``: who answered and every attempt."""

    routing: RoutingResult

    def __init__(self, stream: RoutedStream) -> None:
        metadata = {"HTTPStatusCode": 200, "HTTPHeaders": {}}
        super().__init__(stream=_EventStream(stream), ResponseMetadata=metadata)
        self.routing = stream.routing


class _EventStream:
    """The routed stream behind boto3's ``EventStream`` interface (iterate, ``close``)."""

    def __init__(self, stream: RoutedStream) -> None:
        self._stream = stream
        self.routing = stream.routing

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._stream)

    def close(self) -> None:
        self._stream.close()


class RoutedBedrockRuntime(ClosesOnExit):
    """boto3's bedrock-runtime client, with ``converse`` / ``converse_stream`` routed for
    model ids that name a request class. Build it with :func:`bedrock_runtime`."""

    def __init__(
        self,
        router: Router,
        client: Any,
        routed: RoutedClient,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        aliases: Mapping[str, str] | None = None,
        close: tuple[Any, ...] = (),
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        self.router = router
        self.routed = routed
        self._client = client
        self._close = close
        self._classes = routed_ids(router, namespace, aliases or {})
        self._namespace = f"{namespace}/"
        self._unrouted: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._unrouted_metric = UNROUTED.counter(mangaroute_meter(meter_provider))

    # -- boto3's interface ----------------------------------------------------------------

    def converse(self, **kwargs: Any) -> Any:
        """Bedrock ``Converse``: routed when ``modelId`` names a request class."""
        request_class = self._request_class(kwargs, "Converse")
        if request_class is None:
            return self._client.converse(**kwargs)
        return self._call_routed(self.routed.converse, request_class, kwargs, "Converse")

    def converse_stream(self, **kwargs: Any) -> Any:
        """Bedrock ``ConverseStream``: routed when ``modelId`` names a request class. Returns
        once a target has sent its first token; the events are under ``"stream"``."""
        request_class = self._request_class(kwargs, "ConverseStream")
        if request_class is None:
            return self._client.converse_stream(**kwargs)
        stream = self._call_routed(
            self.routed.converse_stream, request_class, kwargs, "ConverseStream"
        )
        return RoutedStreamResponse(stream)

    def deadline(self, budget_ms: float) -> Deadline:
        """A deadline ``budget_ms`` from now on the router's clock, for
        ``mangaroute.context(deadline=...)``: every call in the block shares it."""
        return self.routed.deadline(budget_ms)

    @property
    def exceptions(self) -> Any:
        """The real client's exception classes: routed errors are raised as these."""
        return self._client.exceptions

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._client, name)

    # -- mangaroute's additions -----------------------------------------------------------

    @property
    def routed_model_ids(self) -> Mapping[str, str]:
        """Every ``modelId`` that is routed, and the request class it routes to."""
        return dict(self._classes)

    def unrouted_calls(self) -> dict[str, int]:
        """Calls passed straight through so far, by model id (model ids are not secret)."""
        with self._lock:
            return dict(self._unrouted)

    def close(self) -> None:
        """Close what this client made: its routed client's threads and boto3 clients,
        and the pass-through client (unless you passed it in)."""
        for made_here in self._close:
            made_here.close()

    # -- internals ------------------------------------------------------------------------

    def _raise_as_boto3(self, exc: Exception, operation: str) -> NoReturn:
        """Raise ``exc`` as the pass-through client would (:func:`client_error`), with the
        mangaroute error as its cause; an error boto3 raises as it is stays untouched."""
        translated = client_error(self._client, exc, operation)
        if translated is exc:
            raise exc
        raise translated from exc

    def _call_routed(
        self,
        call: Callable[..., _Answer],
        request_class: str,
        kwargs: Mapping[str, Any],
        operation: str,
    ) -> _Answer:
        """``call`` (the routed client's ``converse`` or ``converse_stream``) with boto3's
        arguments and the routing context; its errors raised as boto3 would raise them."""
        request, ctx = self._routed_request(kwargs, operation)
        try:
            return call(
                request_class=request_class,
                session_id=ctx.session_id,
                budget_ms=ctx.budget_ms,
                deadline=ctx.deadline,
                output_tokens=_max_tokens(request),
                **request,
            )
        except Exception as exc:
            self._raise_as_boto3(exc, operation)

    def _request_class(self, kwargs: Mapping[str, Any], operation: str) -> str | None:
        model_id = kwargs.get("modelId")
        if not isinstance(model_id, str):
            return None  # boto3's own ParamValidationError, no call made: nothing to count
        request_class = self._classes.get(model_id)
        if request_class is not None:
            return request_class
        if model_id.startswith(self._namespace):
            unknown = InvalidRequest(
                f"modelId {echo(model_id)} names no request class; routed model ids: "
                f"{', '.join(sorted(self._classes))}"
            )
            raise client_error(self._client, unknown, operation) from unknown
        with self._lock:
            self._unrouted[model_id] += 1
        self._unrouted_metric.add(
            1, {sc.GEN_AI_REQUEST_MODEL: model_id, sc.GEN_AI_OPERATION_NAME: "chat"}
        )
        return None

    def _routed_request(
        self, kwargs: Mapping[str, Any], operation: str
    ) -> tuple[dict[str, Any], RoutingContext]:
        if "messages" not in kwargs:
            raise ParamValidationError(report='Missing required parameter in input: "messages"')
        request = {k: v for k, v in kwargs.items() if k != "modelId"}
        try:
            ctx, metadata = split_metadata(kwargs.get("requestMetadata"))
        except InvalidRequest as exc:
            self._raise_as_boto3(exc, operation)
        if metadata is None:
            request.pop("requestMetadata", None)
        else:
            request["requestMetadata"] = metadata
        return request, ctx.over(current_context())


def routed_ids(router: Router, namespace: str, aliases: Mapping[str, str]) -> dict[str, str]:
    """``modelId`` -> request class: each class by name and as ``namespace/class``, and the
    aliases (each must name a configured class)."""
    classes = router.request_classes
    ids = {name: name for name in classes}
    ids.update({f"{namespace}/{name}": name for name in classes})
    for alias, name in aliases.items():
        if name not in classes:
            raise InvalidRequest(
                f"aliases[{echo(alias)}] = {echo(name)} is not a request class; configured "
                f"classes: {', '.join(classes)}"
            )
        ids[alias] = name
    return ids


def bedrock_runtime(
    router: Router,
    *,
    session: Any = None,
    region_name: str | None = None,
    endpoint_url: str | None = None,
    config: Config | None = None,
    client: Any = None,
    routed: RoutedClient | None = None,
    namespace: str = DEFAULT_NAMESPACE,
    aliases: Mapping[str, str] | None = None,
    settings: InvokeSettings | None = None,
    telemetry: RoutingTelemetry | None = None,
    meter_provider: metrics.MeterProvider | None = None,
) -> RoutedBedrockRuntime:
    """A bedrock-runtime client to hand to any code that takes boto3's.

    ``session`` (default: a new ``boto3.session.Session()``), ``region_name``,
    ``endpoint_url`` and ``config`` build the pass-through client as
    ``session.client("bedrock-runtime", ...)`` would (the region defaults to the session's,
    then to the first target's); pass ``client`` to use yours. Routed calls go through
    ``routed`` - or a :class:`~mangaroute.invoke.RoutedClient` made here from the same
    session, ``endpoint_url``, ``config``, ``settings`` and ``telemetry`` and closed with
    this client. ``namespace`` and ``aliases`` name the routed model ids. Passed-through
    calls are counted in :meth:`~RoutedBedrockRuntime.unrouted_calls` and in the
    ``mangaroute.dropin.unrouted`` counter of ``meter_provider`` (default: the global one).
    """
    routed_ids(router, namespace, aliases or {})  # refuse a bad alias before making anything
    session = session if session is not None else boto3.session.Session()
    region = region_name or session.region_name or router.targets[0].region
    made: list[Any] = []
    if client is None:  # first: it can fail on bad arguments, and has no thread to stop
        client = session.client(
            SERVICE, region_name=region, endpoint_url=endpoint_url, config=config
        )
        made.append(client)
    if routed is None:
        routed = RoutedClient(
            router,
            session=session,
            endpoint_url=endpoint_url,
            config=config,
            settings=settings,
            telemetry=telemetry,
        )
        made.append(routed)
    return RoutedBedrockRuntime(
        router,
        client,
        routed,
        namespace=namespace,
        aliases=aliases,
        close=tuple(made),
        meter_provider=meter_provider,
    )


def _max_tokens(request: dict[str, Any]) -> int:
    """``inferenceConfig.maxTokens`` when the request sets it (what production knows of the
    answer's length, for deadline-aware policies), else 0 (the policy's typical length)."""
    config = request.get("inferenceConfig")
    value = config.get("maxTokens") if isinstance(config, dict) else None
    return value if type(value) is int and value > 0 else 0
