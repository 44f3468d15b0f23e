"""boto3 clients for routed calls: botocore's retries off, read timeouts from the budget.

botocore fixes retries and timeouts per *client* (``Config``), not per call. So
:class:`ClientCache` keeps one client per ``(service, region, timeout bucket)``: the budget
left when an attempt starts is rounded *down* to a geometric ladder (three steps per
doubling by default: 50 ms, 63 ms, 79 ms, 100 ms, ... 60 s), so a hung target is cut before
the deadline and a small, bounded set of clients serves every budget - about 15 per service
and region for budgets up to 1.5 s. Clients are made on first use (tens of milliseconds
each; :meth:`ClientCache.warm` makes them up front), are thread-safe, and are closed by
:meth:`ClientCache.close`. Every one has ``retries={"total_max_attempts": 1}``: the router,
not botocore, decides whether to try again, and where.

Clients you made yourself go in :class:`FixedClients`; they are used as they are (their own
timeouts), and one warning is logged if their retries are on.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import boto3
from botocore.config import Config

__all__ = ["ClientCache", "ClientProvider", "FixedClients"]

_LOG = logging.getLogger("mangaroute.invoke")
NO_RETRIES: dict[str, Any] = {"total_max_attempts": 1}


class ClientProvider(Protocol):
    """Hands out the boto3 client for one attempt."""

    def client(self, service: str, region: str, timeout_s: float | None) -> Any:
        """A client of ``service`` in ``region`` whose read timeout is at most ``timeout_s``
        real seconds (``None``: no budget; the provider's longest timeout)."""
        ...

    def close(self) -> None:
        """Release what the provider created."""
        ...


class ClientCache:
    """Creates and caches boto3 clients per service, region and read-timeout bucket.

    ``session`` is a ``boto3.session.Session`` (default: a new one, with the usual credential
    chain); ``endpoint_url`` points every service (a string) or some (a mapping by service
    name) at another endpoint, such as the :mod:`mangaroute.testing` stand-in; ``config`` is
    merged under mangaroute's own settings (so ``max_pool_connections``, proxies or
    ``user_agent_extra`` stay yours, while retries and timeouts are set per bucket).
    """

    def __init__(
        self,
        session: Any = None,
        *,
        endpoint_url: str | Mapping[str, str] | None = None,
        config: Config | None = None,
        steps_per_doubling: int = 3,
        min_timeout_s: float = 0.05,
        max_timeout_s: float = 60.0,
        connect_timeout_s: float = 1.0,
    ) -> None:
        if steps_per_doubling < 1:
            raise ValueError(f"steps_per_doubling must be >= 1, got {steps_per_doubling}")
        if not 0 < min_timeout_s <= max_timeout_s < math.inf or connect_timeout_s <= 0:
            raise ValueError("need 0 < min_timeout_s <= max_timeout_s and connect_timeout_s > 0")
        self._session = session if session is not None else boto3.session.Session()
        self._endpoint_url = endpoint_url
        self._config = Config(max_pool_connections=64)
        if config is not None:
            self._config = self._config.merge(config)
        self._steps = steps_per_doubling
        self._min_s = min_timeout_s
        self._max_s = max_timeout_s
        self._top = self._step(max_timeout_s)
        self._connect_s = connect_timeout_s
        self._clients: dict[tuple[str, str, int], Any] = {}
        self._lock = threading.Lock()
        self._closed = False

    def _step(self, timeout_s: float) -> int:
        return math.floor(math.log2(timeout_s / self._min_s) * self._steps + 1e-9)

    def bucket(self, timeout_s: float | None) -> float:
        """The read timeout used for a budget of ``timeout_s`` (never above it, except that
        nothing goes below ``min_timeout_s``)."""
        return self._timeout(self._key_step(timeout_s))

    def _key_step(self, timeout_s: float | None) -> int:
        if timeout_s is None or timeout_s >= self._max_s:
            return self._top + 1  # the longest timeout itself, off the ladder
        if timeout_s <= self._min_s:
            return 0
        return self._step(timeout_s)

    def _timeout(self, step: int) -> float:
        if step > self._top:
            return self._max_s
        timeout: float = self._min_s * 2.0 ** (step / self._steps)
        return timeout

    def client(self, service: str, region: str, timeout_s: float | None) -> Any:
        key = (service, region, self._key_step(timeout_s))
        found = self._clients.get(key)
        if found is not None:
            return found
        with self._lock:  # boto3 sessions are not thread-safe; clients are
            found = self._clients.get(key)
            if found is None:
                if self._closed:
                    raise RuntimeError("the client cache is closed")
                found = self._create(service, region, self._timeout(key[2]))
                self._clients[key] = found
        return found

    def _create(self, service: str, region: str, read_timeout_s: float) -> Any:
        url = self._endpoint_url
        if isinstance(url, Mapping):
            url = url.get(service)
        config = self._config.merge(
            Config(
                retries=dict(NO_RETRIES),
                read_timeout=read_timeout_s,
                connect_timeout=min(read_timeout_s, self._connect_s),
            )
        )
        return self._session.client(service, region_name=region, endpoint_url=url, config=config)

    def warm(self, services: Iterable[tuple[str, str]], max_budget_s: float) -> int:
        """Create, now, every client a budget of up to ``max_budget_s`` can use, for each
        ``(service, region)``; returns how many exist."""
        for service, region in services:
            for step in range(min(self._key_step(max_budget_s), self._top) + 1):
                self.client(service, region, self._timeout(step))
        return len(self._clients)

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
            self._closed = True
        for client in clients:
            client.close()


class FixedClients:
    """Your own clients, by service name or ``(service, region)``; used as they are.

    Their read timeouts are whatever you configured, so the deadline only governs whether a
    fallback starts. mangaroute warns once per client whose retries are on.
    """

    def __init__(self, clients: Mapping[str | tuple[str, str], Any]) -> None:
        self._clients = dict(clients)
        self._checked: set[int] = set()

    def client(self, service: str, region: str, timeout_s: float | None) -> Any:
        found = self._clients.get((service, region)) or self._clients.get(service)
        if found is None:
            known = ", ".join(map(str, self._clients))
            raise LookupError(f"no {service} client for region {region} (have: {known})")
        if id(found) not in self._checked:
            self._checked.add(id(found))
            retries = getattr(found.meta.config, "retries", None) or {}
            if retries.get("total_max_attempts") != 1 and retries.get("max_attempts") != 0:
                _LOG.warning(
                    "the %s client retries on its own; routed calls work best with "
                    "Config(retries={'total_max_attempts': 1})",
                    service,
                )
        return found

    def close(self) -> None:
        """Your clients stay open: you made them."""
