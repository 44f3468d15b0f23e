"""The routed boto3 Session: bedrock-runtime clients route, every other service is boto3's."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest

from mangaroute import InvalidRequest, Router
from mangaroute.dropin import RoutedBedrockRuntime, RoutedSession, routed_session
from mangaroute.testing import StandIn
from tests.dropin.support import HAIKU, PROVISIONED, REGION
from tests.invoke.support import MESSAGES


@pytest.fixture
def session(router: Router, standin: StandIn) -> Iterator[RoutedSession]:
    plain = boto3.session.Session(
        aws_access_key_id="x", aws_secret_access_key="x", region_name=REGION
    )
    with routed_session(router, plain, endpoint_url=standin.endpoint_url) as routed:
        yield routed


def test_bedrock_runtime_clients_route(session: RoutedSession, standin: StandIn) -> None:
    bedrock = session.client("bedrock-runtime", endpoint_url=standin.endpoint_url)
    assert isinstance(bedrock, RoutedBedrockRuntime)
    standin.target(PROVISIONED).fail_with("ThrottlingException")
    reply = bedrock.converse(modelId="mangaroute/chat", messages=MESSAGES)
    assert reply.routing.target == "haiku"
    assert bedrock.converse(modelId=HAIKU, messages=MESSAGES)["stopReason"] == "end_turn"
    assert bedrock.unrouted_calls() == {HAIKU: 1}


def test_clients_of_one_session_share_one_routed_client(session: RoutedSession) -> None:
    first = session.client("bedrock-runtime", region_name="us-east-1")
    second = session.client("bedrock-runtime")
    assert first.routed is second.routed is session.routed_client()
    assert (first.meta.region_name, second.meta.region_name) == ("us-east-1", REGION)


def test_other_services_and_attributes_are_the_sessions(session: RoutedSession) -> None:
    sagemaker = session.client("sagemaker-runtime")
    assert type(sagemaker).__name__ == "SageMakerRuntime"
    assert session.region_name == REGION
    assert session.get_credentials().access_key == "x"
    assert "bedrock-runtime" in session.get_available_services()


def test_close_stops_the_routed_clients_threads(router: Router, standin: StandIn) -> None:
    session = routed_session(router, endpoint_url=standin.endpoint_url)
    session.client("bedrock-runtime", region_name=REGION).converse(
        modelId="chat", messages=MESSAGES
    )
    session.close()  # the autouse fixture fails the test if its refresher thread lives on


def test_a_bad_alias_fails_when_the_session_is_made(router: Router) -> None:
    with pytest.raises(InvalidRequest, match=r"aliases\['x'\] = 'nope' is not a request class"):
        routed_session(router, aliases={"x": "nope"})


def test_the_service_name_may_be_a_keyword(session: RoutedSession) -> None:
    bedrock = session.client(service_name="bedrock-runtime", region_name=REGION)
    assert isinstance(bedrock, RoutedBedrockRuntime)
    assert bedrock.converse(modelId="chat", messages=MESSAGES).routing.target == "primary"
