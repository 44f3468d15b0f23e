"""Fixtures for the drop-in tests: the stand-in, a router, drop-in clients closed after."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mangaroute import Router
from mangaroute.dropin import RoutedBedrockRuntime, bedrock_runtime
from mangaroute.testing import StandIn
from tests.dropin.support import SCRIPTS, Decisions, make_router
from tests.invoke.conftest import no_leaked_threads  # noqa: F401 (autouse: no thread outlives a test)
from tests.invoke.support import session


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Frameworks build their own boto3 clients beside ours (langchain-aws a control-plane
    one): fake credentials and a region, never a real account."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-northeast-1")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_BEARER_TOKEN_BEDROCK"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def standin() -> Iterator[StandIn]:
    with StandIn(models=SCRIPTS) as s:
        yield s


@pytest.fixture
def decisions() -> Decisions:
    return Decisions()


@pytest.fixture
def router(decisions: Decisions) -> Router:
    return make_router(decisions)


DropinFactory = Callable[..., RoutedBedrockRuntime]


@pytest.fixture
def make_dropin(standin: StandIn) -> Iterator[DropinFactory]:
    """``make_dropin(router, **bedrock_runtime kwargs)`` against the stand-in."""
    made: list[RoutedBedrockRuntime] = []

    def make(router: Router, **kwargs: Any) -> RoutedBedrockRuntime:
        kwargs.setdefault("session", session())
        kwargs.setdefault("endpoint_url", standin.endpoint_url)
        client = bedrock_runtime(router, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def bedrock(make_dropin: DropinFactory, router: Router) -> RoutedBedrockRuntime:
    return make_dropin(router)
