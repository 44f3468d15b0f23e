"""Clients: retries off, read timeouts from the budget in a bounded ladder; your own clients."""

from __future__ import annotations

import logging

import pytest
from botocore.config import Config

from mangaroute import Router
from mangaroute.invoke import ClientCache, FixedClients, RoutedClient
from tests.invoke.support import REGION, session


def test_timeout_buckets_never_exceed_the_budget_and_stay_few() -> None:
    cache = ClientCache(session(), endpoint_url="http://127.0.0.1:9")
    budgets = [0.01 * i for i in range(1, 3001)]  # 10 ms ... 30 s
    buckets = [cache.bucket(b) for b in budgets]
    assert all(t <= b or t == 0.05 for t, b in zip(buckets, budgets, strict=True))
    assert all(
        t >= b / 2 ** (1 / 3) - 1e-9 for t, b in zip(buckets, budgets, strict=True) if b >= 0.05
    )
    assert buckets == sorted(buckets)
    assert len(set(buckets)) <= 3 * 10 + 1  # three per doubling from 50 ms to 30 s
    assert cache.bucket(None) == cache.bucket(1e9) == 60.0
    cache.close()


def test_created_clients_have_retries_off_and_the_bucket_timeout() -> None:
    cache = ClientCache(
        session(), endpoint_url="http://127.0.0.1:9", config=Config(user_agent_extra="mine")
    )
    client = cache.client("bedrock-runtime", REGION, 1.5)
    config = client.meta.config
    assert config.retries["total_max_attempts"] == 1
    assert config.read_timeout == pytest.approx(cache.bucket(1.5)) and config.read_timeout <= 1.5
    # yours first (an imported framework, e.g. langchain-aws, may append its own tag)
    assert config.connect_timeout == 1.0 and config.user_agent_extra.split()[0] == "mine"
    assert config.max_pool_connections == 64
    assert cache.client("bedrock-runtime", REGION, 1.49) is client
    assert (
        cache.warm([("bedrock-runtime", REGION), ("sagemaker-runtime", REGION)], 0.2) == 15
    )  # 7 each + the 1.5 s one
    cache.close()
    with pytest.raises(RuntimeError, match="closed"):
        cache.client("bedrock-runtime", REGION, 0.3)


def test_your_own_clients_are_used_as_they_are(
    caplog: pytest.LogCaptureFixture, router: Router
) -> None:
    retrying = session().client(
        "bedrock-runtime",
        region_name=REGION,
        endpoint_url="http://127.0.0.1:9",
        config=Config(retries={"mode": "standard", "max_attempts": 2}),
    )
    fixed = FixedClients({"bedrock-runtime": retrying})
    with caplog.at_level(logging.WARNING, logger="mangaroute.invoke"):
        assert fixed.client("bedrock-runtime", REGION, 0.1) is retrying
        assert fixed.client("bedrock-runtime", REGION, 5.0) is retrying
    assert len(caplog.records) == 1 and "retries on its own" in caplog.records[0].getMessage()
    with pytest.raises(LookupError, match="no sagemaker-runtime client"):
        fixed.client("sagemaker-runtime", REGION, 1.0)
    with RoutedClient(router, clients={"bedrock-runtime": retrying}, refresh_snapshots=False) as c:
        assert isinstance(c.clients, FixedClients)
    retrying.close()
