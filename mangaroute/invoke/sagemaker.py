"""SageMaker endpoints behind the Converse interface: a replaceable request/response mapping.

``invoke_endpoint`` carries whatever bytes the model container reads. The default
:class:`TgiMapping` speaks the Hugging Face Text Generation Inference (TGI) container's JSON,
which SageMaker LLM endpoints commonly run (and the :mod:`mangaroute.testing` stand-in
serves)::

    request   {"inputs": "<prompt>", "parameters": {"max_new_tokens": N, ...}}
    response  [{"generated_text": "<answer>"}]        (or the same object without the list)

The prompt is the system text, then each turn as ``User: ...`` / ``Assistant: ...`` lines,
ending with ``Assistant:``; ``inferenceConfig`` maps to ``max_new_tokens``,
``temperature``, ``top_p`` and ``stop``, and ``additionalModelRequestFields`` is merged
into ``parameters``. Text blocks only: a request with ``toolConfig``, a guardrail, or image,
document or tool blocks raises :class:`~mangaroute.invoke.errors.UnsupportedRequest` and the
router skips the endpoint. Token counts come from ``details`` when the container returns
them, otherwise they are estimated at four characters per token.

For another container, write an :class:`EndpointMapping` (two methods) and pass
``SageMakerInvoker(mapping)`` in ``RoutedClient(invokers=...)``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from mangaroute.core.targets import Target
from mangaroute.invoke.errors import MalformedResponse, UnsupportedRequest
from mangaroute.invoke.invokers import EventSource, ReplayedStream

__all__ = ["EndpointMapping", "SageMakerInvoker", "TgiMapping"]

_CHARS_PER_TOKEN = 4
_UNSUPPORTED_FIELDS = ("toolConfig", "guardrailConfig", "promptVariables")


class EndpointMapping(Protocol):
    """Converse request → endpoint body, and endpoint body → Converse response."""

    @property
    def content_type(self) -> str: ...

    @property
    def accept(self) -> str: ...

    def request_body(self, request: Mapping[str, Any]) -> bytes:
        """The body for ``invoke_endpoint``; ``UnsupportedRequest`` if it cannot be made."""
        ...

    def response(self, body: bytes, request: Mapping[str, Any]) -> dict[str, Any]:
        """A Converse response dict; ``MalformedResponse`` if ``body`` cannot be read."""
        ...


def _estimate(text: str) -> int:
    return -(-len(text) // _CHARS_PER_TOKEN)


def _texts(blocks: Any, where: str) -> list[str]:
    texts = []
    for block in blocks or ():
        if not isinstance(block, Mapping) or not isinstance(block.get("text"), str):
            kinds = ", ".join(block) if isinstance(block, Mapping) else type(block).__name__
            raise UnsupportedRequest(f"{where}: only text blocks reach a TGI endpoint, got {kinds}")
        texts.append(block["text"])
    return texts


@dataclass(frozen=True, slots=True)
class TgiMapping:
    """The Hugging Face TGI container's JSON (see the module docstring)."""

    default_max_new_tokens: int = 512
    content_type: str = "application/json"
    accept: str = "application/json"

    def prompt(self, request: Mapping[str, Any]) -> str:
        lines = ["\n".join(_texts(request.get("system"), "system"))]
        for message in request.get("messages") or ():
            role = "Assistant" if message.get("role") == "assistant" else "User"
            text = "\n".join(_texts(message.get("content"), f"{role.lower()} message"))
            lines.append(f"{role}: {text}")
        lines.append("Assistant:")
        return "\n\n".join(line for line in lines if line)

    def parameters(self, request: Mapping[str, Any]) -> dict[str, Any]:
        config = request.get("inferenceConfig") or {}
        parameters: dict[str, Any] = {
            "max_new_tokens": config.get("maxTokens", self.default_max_new_tokens)
        }
        for ours, theirs in (("temperature", "temperature"), ("topP", "top_p")):
            if ours in config:
                parameters[theirs] = config[ours]
        if config.get("stopSequences"):
            parameters["stop"] = list(config["stopSequences"])
        parameters.update(request.get("additionalModelRequestFields") or {})
        return parameters

    def request_body(self, request: Mapping[str, Any]) -> bytes:
        unsupported = [name for name in _UNSUPPORTED_FIELDS if request.get(name)]
        if unsupported:
            raise UnsupportedRequest(f"a TGI endpoint cannot take {', '.join(unsupported)}")
        body = {"inputs": self.prompt(request), "parameters": self.parameters(request)}
        return json.dumps(body, ensure_ascii=False).encode("utf-8")

    def response(self, body: bytes, request: Mapping[str, Any]) -> dict[str, Any]:
        try:
            parsed = json.loads(body)
            answer = parsed[0] if isinstance(parsed, list) else parsed
            text = answer["generated_text"]
            if not isinstance(text, str):
                raise TypeError
        except (ValueError, LookupError, TypeError) as exc:
            raise MalformedResponse("the endpoint's body is not TGI's generated_text") from exc
        details = answer.get("details") if isinstance(answer.get("details"), dict) else {}
        output_tokens = details.get("generated_tokens", _estimate(text))
        input_tokens = _estimate(self.prompt(request))
        stop = "max_tokens" if details.get("finish_reason") == "length" else "end_turn"
        return {
            "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
            "stopReason": stop,
            "usage": {
                "inputTokens": input_tokens,
                "outputTokens": output_tokens,
                "totalTokens": input_tokens + output_tokens,
            },
        }


class SageMakerInvoker:
    """sagemaker-runtime ``invoke_endpoint`` with ``EndpointName=target.model_id``, through
    an :class:`EndpointMapping`. Streams are replayed from the whole answer (one delta), so
    their time to first token is the full latency."""

    service = "sagemaker-runtime"

    def __init__(self, mapping: EndpointMapping | None = None) -> None:
        self.mapping: EndpointMapping = mapping if mapping is not None else TgiMapping()

    def converse(self, client: Any, target: Target, request: Mapping[str, Any]) -> dict[str, Any]:
        mapping = self.mapping
        body = mapping.request_body(request)
        started = time.perf_counter()
        reply = client.invoke_endpoint(
            EndpointName=target.model_id,
            ContentType=mapping.content_type,
            Accept=mapping.accept,
            Body=body,
        )
        with reply["Body"] as stream:
            payload = stream.read()
        latency_ms = round((time.perf_counter() - started) * 1000)
        response = mapping.response(payload, request)
        response.setdefault("metrics", {"latencyMs": latency_ms})
        response["ResponseMetadata"] = reply.get("ResponseMetadata", {})
        return response

    def converse_stream(
        self, client: Any, target: Target, request: Mapping[str, Any]
    ) -> EventSource:
        return ReplayedStream.of(self.converse(client, target, request))
