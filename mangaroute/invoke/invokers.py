"""How one target is called: an :class:`Invoker` per deployment pattern.

An invoker turns the Converse request into the target's API call with the client it is
handed, and returns a Converse-shaped answer. Bedrock targets - on-demand model ids,
cross-region inference-profile ids, provisioned-model ARNs - all take Converse with
``modelId`` set to the target's ``model_id``, so one :class:`BedrockInvoker` serves them.
SageMaker real-time and serverless endpoints share one
:class:`~mangaroute.invoke.sagemaker.SageMakerInvoker` (a serverless endpoint is invoked
exactly like a real-time one). Lambda targets need an invoker of your own (see
``docs/invoke.md``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

from mangaroute.core.targets import Target

__all__ = ["BedrockInvoker", "EventSource", "Invoker", "ReplayedStream"]


class EventSource(Protocol):
    """An open ConverseStream: iterate for event dicts; always close."""

    def __iter__(self) -> Iterator[dict[str, Any]]: ...

    def close(self) -> None: ...


class Invoker(Protocol):
    """Calls targets of one pattern."""

    @property
    def service(self) -> str:
        """The boto3 service whose client :meth:`converse` takes (``bedrock-runtime``)."""
        ...

    def converse(self, client: Any, target: Target, request: Mapping[str, Any]) -> dict[str, Any]:
        """Call ``target``; return a Converse response (``output``, ``stopReason``, ``usage``)."""
        ...

    def converse_stream(
        self, client: Any, target: Target, request: Mapping[str, Any]
    ) -> EventSource:
        """Open a stream of ConverseStream events from ``target``."""
        ...


class BedrockInvoker:
    """Bedrock runtime ``Converse`` / ``ConverseStream`` with ``modelId=target.model_id``."""

    service = "bedrock-runtime"

    def converse(self, client: Any, target: Target, request: Mapping[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = client.converse(modelId=target.model_id, **request)
        return response

    def converse_stream(
        self, client: Any, target: Target, request: Mapping[str, Any]
    ) -> EventSource:
        stream: EventSource = client.converse_stream(modelId=target.model_id, **request)["stream"]
        return stream


class ReplayedStream:
    """ConverseStream events made from a whole answer, for targets that do not stream."""

    __slots__ = ("_events",)

    def __init__(self, events: Sequence[dict[str, Any]]) -> None:
        self._events = events

    @classmethod
    def of(cls, response: Mapping[str, Any]) -> ReplayedStream:
        """The events Bedrock would send for ``response``: one delta with the whole text."""
        message = response.get("output", {}).get("message", {})
        text = "".join(b.get("text", "") for b in message.get("content", ()))
        events: list[dict[str, Any]] = [{"messageStart": {"role": "assistant"}}]
        if text:
            events.append({"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": text}}})
            events.append({"contentBlockStop": {"contentBlockIndex": 0}})
        events.append({"messageStop": {"stopReason": response.get("stopReason", "end_turn")}})
        metadata = {"usage": response.get("usage", {}), "metrics": response.get("metrics", {})}
        events.append({"metadata": metadata})
        return cls(events)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._events)

    def close(self) -> None:
        """Nothing to release."""
