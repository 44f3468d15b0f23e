"""sagemaker-runtime ``InvokeEndpoint`` against a stand-in text-generation "model".

The stand-in model speaks the request/response bodies of the Hugging Face Text Generation
Inference (TGI) container that SageMaker LLM endpoints commonly run::

    request   {"inputs": "<prompt>", "parameters": {"max_new_tokens": 64}}
    response  [{"generated_text": "<answer>"}]            Content-Type: application/json

Only ``inputs`` (a string) is required; ``parameters.max_new_tokens`` caps the answer. A
body the model cannot read gets what a real container's 4xx becomes at the SageMaker front
end: ``ModelError`` (HTTP 424) with ``OriginalStatusCode`` 400.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from mangaroute.testing.errors import Service
from mangaroute.testing.script import CallPlan
from mangaroute.testing.wire import Exchange, send_error, send_json

__all__ = ["GenerateRequest", "parse_generate_request", "send_model_error", "serve_invoke"]


@dataclass(frozen=True, slots=True)
class GenerateRequest:
    """What the stand-in model reads from a TGI-style body."""

    max_new_tokens: int | None = None


def parse_generate_request(body: bytes) -> GenerateRequest:
    """Read a TGI-style request; ``ValueError`` says why it is not one."""
    try:
        request = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError("request body is not JSON") from exc
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), str):
        raise ValueError('body must be an object with a string "inputs"')
    parameters = request.get("parameters") or {}
    limit = parameters.get("max_new_tokens") if isinstance(parameters, dict) else None
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise ValueError("parameters.max_new_tokens must be a non-negative integer")
    return GenerateRequest(limit)


def serve_invoke(exchange: Exchange, plan: CallPlan, request: GenerateRequest) -> None:
    """Wait the generation time, then answer ``[{"generated_text": ...}]``."""
    pieces = plan.pieces()
    if request.max_new_tokens is not None:
        pieces = pieces[: request.max_new_tokens]
    exchange.pause_ms(plan.generation_ms(len(pieces)))
    headers = {"x-Amzn-Invoked-Production-Variant": "AllTraffic"}
    send_json(exchange, 200, [{"generated_text": "".join(pieces)}], headers)


def send_model_error(exchange: Exchange, endpoint: str, original_status: int, why: str) -> None:
    """``ModelError``: the container answered ``original_status``; SageMaker relays 424."""
    extra = {
        "OriginalStatusCode": original_status,
        "OriginalMessage": why,
        "LogStreamArn": f"arn:aws:logs:::log-group:/aws/sagemaker/Endpoints/{endpoint}",
    }
    send_error(exchange, Service.SAGEMAKER, "ModelError", f"Received client error: {why}", extra)
