"""Everything mangaroute hands out that owns threads or clients closes when its ``with`` (or
``async with``) block ends, whatever ends it, and never swallows the block's exception."""

from __future__ import annotations

import asyncio
import threading

import pytest

from mangaroute._closing import AsyncClosesOnExit, ClosesOnExit
from mangaroute.dropin.client import RoutedBedrockRuntime
from mangaroute.dropin.session import RoutedSession
from mangaroute.invoke.client import RoutedClient
from mangaroute.invoke.stream import RoutedStream
from mangaroute.shared.runner import SharedState
from mangaroute.telemetry.cloudwatch import CloudWatchMetrics
from mangaroute.telemetry.otel_metrics import OTelObserver


class _Owner(AsyncClosesOnExit):
    def __init__(self) -> None:
        self.closed_on: list[str] = []

    def close(self) -> None:
        self.closed_on.append(threading.current_thread().name)


def test_with_returns_the_owner_and_closes_it_once() -> None:
    owner = _Owner()
    with owner as entered:
        assert entered is owner
        assert owner.closed_on == []
    assert len(owner.closed_on) == 1


def test_an_exception_in_the_block_closes_the_owner_and_propagates() -> None:
    owner = _Owner()
    with pytest.raises(KeyError, match="boom"), owner:
        raise KeyError("boom")
    assert len(owner.closed_on) == 1


def test_async_with_closes_off_the_event_loop_thread() -> None:
    owner = _Owner()

    async def use() -> str:
        async with owner as entered:
            assert entered is owner
        return threading.current_thread().name

    loop_thread = asyncio.run(use())
    assert len(owner.closed_on) == 1
    assert owner.closed_on[0] != loop_thread  # a blocking close() must not stall the loop


def test_a_subclass_without_close_says_so() -> None:
    class Forgot(ClosesOnExit):
        pass

    with pytest.raises(TypeError, match=r"Forgot.*close"):
        Forgot()  # type: ignore[abstract]


@pytest.mark.parametrize(
    "owner",
    [
        RoutedClient,
        RoutedStream,
        RoutedBedrockRuntime,
        RoutedSession,
        OTelObserver,
        CloudWatchMetrics,
        SharedState,
    ],
)
def test_every_owner_of_threads_or_clients_closes_on_exit(owner: type[object]) -> None:
    assert issubclass(owner, ClosesOnExit)
    assert not getattr(owner, "__abstractmethods__", None)  # it defines close()


def test_routed_client_closes_on_async_exit_too() -> None:
    assert issubclass(RoutedClient, AsyncClosesOnExit)
