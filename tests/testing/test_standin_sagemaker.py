"""sagemaker-runtime InvokeEndpoint through a real boto3 client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from standin_helpers import HAIKU

from mangaroute.testing import SAGEMAKER_ERRORS, Burst, StandIn, TargetScript

ENDPOINT = "sagemaker-manga"


def _body(prompt: str, max_new_tokens: int | None = None) -> bytes:
    request: dict[str, Any] = {"inputs": prompt}
    if max_new_tokens is not None:
        request["parameters"] = {"max_new_tokens": max_new_tokens}
    return json.dumps(request).encode()


@pytest.fixture
def standin() -> Iterator[StandIn]:
    with StandIn(
        endpoints={ENDPOINT: TargetScript(output_tokens=20)}, models={HAIKU: TargetScript()}
    ) as s:
        yield s


def test_invoke_endpoint_returns_tgi_style_json(standin: StandIn, client_for: Any) -> None:
    client = client_for(standin, "sagemaker-runtime")
    response = client.invoke_endpoint(
        EndpointName=ENDPOINT, Body=_body("おすすめの漫画は?"), ContentType="application/json"
    )
    assert response["ContentType"] == "application/json"
    assert response["InvokedProductionVariant"] == "AllTraffic"
    (generated,) = json.loads(response["Body"].read())
    assert len(generated["generated_text"].split()) == 20
    assert standin.target(ENDPOINT).stats().operations == {"InvokeEndpoint": 1}


def test_max_new_tokens_caps_the_answer(standin: StandIn, client_for: Any) -> None:
    client = client_for(standin, "sagemaker-runtime")
    response = client.invoke_endpoint(EndpointName=ENDPOINT, Body=_body("hi", max_new_tokens=3))
    (generated,) = json.loads(response["Body"].read())
    assert len(generated["generated_text"].split()) == 3


@pytest.mark.parametrize(("code", "status"), sorted(SAGEMAKER_ERRORS.items()))
def test_every_sagemaker_error_surfaces_with_its_code(
    standin: StandIn, client_for: Any, code: str, status: int
) -> None:
    standin.target(ENDPOINT).fail_next(code)
    client = client_for(standin, "sagemaker-runtime")
    with pytest.raises(ClientError) as caught:
        client.invoke_endpoint(EndpointName=ENDPOINT, Body=_body("hi"))
    assert caught.value.response["Error"]["Code"] == code
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


def test_unreadable_body_is_a_model_error_from_the_container(
    standin: StandIn, client_for: Any
) -> None:
    client = client_for(standin, "sagemaker-runtime")
    with pytest.raises(client.exceptions.ModelError) as caught:
        client.invoke_endpoint(EndpointName=ENDPOINT, Body=b"not json")
    assert caught.value.response["OriginalStatusCode"] == 400
    assert standin.target(ENDPOINT).stats().outcomes == {"ModelError": 1}


def test_unknown_endpoint_is_a_validation_error(standin: StandIn, client_for: Any) -> None:
    client = client_for(standin, "sagemaker-runtime")
    with pytest.raises(client.exceptions.ValidationError):
        client.invoke_endpoint(EndpointName="no-such-endpoint", Body=_body("hi"))
    with pytest.raises(client.exceptions.ValidationError):
        client.invoke_endpoint(
            EndpointName=HAIKU.replace(":", "-").replace(".", "-"), Body=_body("hi")
        )


def test_models_and_endpoints_are_separate_namespaces(client_for: Any) -> None:
    with StandIn(models={"shared": TargetScript()}) as standin:
        client = client_for(standin, "sagemaker-runtime")
        with pytest.raises(client.exceptions.ValidationError):
            client.invoke_endpoint(EndpointName="shared", Body=_body("hi"))


def test_bursts_apply_to_endpoints(client_for: Any) -> None:
    script = TargetScript(bursts=[Burst("ServiceUnavailable", calls=2, first_call=1)])
    with StandIn(endpoints={ENDPOINT: script}) as standin:
        client = client_for(standin, "sagemaker-runtime")
        codes = []
        for _ in range(4):
            try:
                client.invoke_endpoint(EndpointName=ENDPOINT, Body=_body("hi"))
                codes.append("ok")
            except ClientError as error:
                codes.append(error.response["Error"]["Code"])
    assert codes == ["ok", "ServiceUnavailable", "ServiceUnavailable", "ok"]
