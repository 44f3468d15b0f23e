"""Every pattern is callable: provisioned ARNs, inference profiles, endpoints; Lambda is yours."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from mangaroute import Pattern, Router, Target, parse_config
from mangaroute.invoke import (
    ClientCache,
    EventSource,
    ReplayedStream,
    RoutedClient,
    UnsupportedTarget,
)
from mangaroute.testing import StandIn
from tests.invoke.conftest import ClientFactory
from tests.invoke.support import (
    CONFIG,
    ENDPOINT,
    MESSAGES,
    PROFILE,
    PROVISIONED,
    scaled_clock,
    session,
)


def test_a_provisioned_arn_is_the_model_id(
    standin: StandIn, router: Router, make_client: ClientFactory
) -> None:
    reply = make_client(router).converse(messages=MESSAGES, request_class="solo")
    assert reply.routing.attempts[0].model_id == PROVISIONED
    assert standin.target(PROVISIONED).stats().operations == {"Converse": 1}
    assert standin.unknown_calls() == {}


def test_an_inference_profile_id_is_the_model_id(
    standin: StandIn, router: Router, make_client: ClientFactory
) -> None:
    client = make_client(router)
    client.converse(messages=MESSAGES, request_class="profile")
    with client.converse_stream(messages=MESSAGES, request_class="profile") as stream:
        list(stream)
    operations = standin.target(PROFILE).stats().operations
    assert operations == {"Converse": 1, "ConverseStream": 1}


LAMBDA_CONFIG = (
    CONFIG
    + """
[targets.fn]
pattern = "lambda_on_demand"
model_id = "mangaassist-answer"
region = "ap-northeast-1"

[classes.lambda]
targets = ["fn", "haiku"]
policy = "ordered"
"""
)


def test_lambda_targets_need_an_invoker_of_your_own() -> None:
    router = Router(parse_config(LAMBDA_CONFIG), clock=scaled_clock)
    with pytest.raises(UnsupportedTarget, match=r"Pattern\.LAMBDA_ON_DEMAND"):
        RoutedClient(router, clients={})


class LambdaInvoker:
    """What a Lambda invoker looks like (here it answers without AWS)."""

    service = "lambda"

    def converse(self, client: Any, target: Target, request: Mapping[str, Any]) -> dict[str, Any]:
        assert client == "lambda-client" and target.model_id == "mangaassist-answer"
        return {
            "output": {"message": {"role": "assistant", "content": [{"text": "from Lambda"}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 2, "outputTokens": 2, "totalTokens": 4},
        }

    def converse_stream(
        self, client: Any, target: Target, request: Mapping[str, Any]
    ) -> EventSource:
        return ReplayedStream.of(self.converse(client, target, request))


def test_a_lambda_invoker_plugs_in(standin: StandIn, make_client: ClientFactory) -> None:
    router = Router(parse_config(LAMBDA_CONFIG), clock=scaled_clock)
    cache = ClientCache(session(), endpoint_url=standin.endpoint_url)

    class Clients:
        def client(self, service: str, region: str, timeout_s: float | None) -> Any:
            return (
                "lambda-client" if service == "lambda" else cache.client(service, region, timeout_s)
            )

        def close(self) -> None:
            cache.close()

    client = make_client(
        router, clients=Clients(), invokers={Pattern.LAMBDA_ON_DEMAND: LambdaInvoker()}
    )
    reply = client.converse(messages=MESSAGES, request_class="lambda")
    assert reply.routing.target == "fn"
    assert reply["output"]["message"]["content"] == [{"text": "from Lambda"}]
    cache.close()


def test_a_serverless_endpoint_is_invoked_like_a_real_time_one(standin: StandIn) -> None:
    serverless = CONFIG.replace(
        'pattern = "sagemaker_realtime"', 'pattern = "sagemaker_serverless"'
    )
    router = Router(parse_config(serverless), clock=scaled_clock)
    assert router.config.target("manga").pattern is Pattern.SAGEMAKER_SERVERLESS
    with RoutedClient(
        router, session=session(), endpoint_url=standin.endpoint_url, clock=scaled_clock
    ) as client:  # mangaroute makes (and closes) its own clients from your session
        reply = client.converse(messages=MESSAGES, request_class="manga")
    assert reply.routing.target == "manga"
    assert standin.target(ENDPOINT).stats().operations == {"InvokeEndpoint": 1}
