"""Fixtures for the route API's tests: a routing table on a fake clock, and the real server.

Every test talks HTTP to a real server bound to a free loopback port, in the test's own event
loop, so what is tested is what workloads get: parsing, status codes, headers, JSON. Time is
the table's injected clock, moved by hand, so circuits, cooldowns and leases need no sleeping.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from provider_router.api import LLMProviderSpec, RoutingPolicySpec
from provider_router.engine import RoutingTable
from provider_router.service import RouteService, Server, ServiceMetrics, create_app

NS = "default"
LEASE_TTL = 60.0


@dataclass
class FakeClock:
    now: float = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def provider_spec(name: str, **fields: Any) -> LLMProviderSpec:
    """A provider spec from wire-style fields; health checks off unless asked for, so that a
    new provider is routable at once (no prober runs in these tests)."""
    fields.setdefault("baseURL", f"http://{name}.llm.test:8000")
    fields.setdefault("healthCheck", {"enabled": False})
    return LLMProviderSpec.model_validate(fields)


@dataclass
class Api:
    """The running server and a client for it, plus the table behind it."""

    client: httpx.AsyncClient
    server: Server
    app: RouteService
    table: RoutingTable
    clock: FakeClock

    def add_provider(self, name: str, namespace: str = NS,
                     labels: dict[str, str] | None = None, **fields: Any) -> None:
        self.table.upsert_provider(namespace, name, provider_spec(name, **fields), labels)

    def add_policy(self, name: str, namespace: str = NS, **fields: Any) -> None:
        self.table.upsert_policy(namespace, name, RoutingPolicySpec.model_validate(fields))

    async def route(self, **params: Any) -> httpx.Response:
        query = {k: ("true" if v is True else "false" if v is False else v)
                 for k, v in params.items() if v is not None}
        return await self.client.get("/v1/route", params=query)

    async def route_ok(self, **params: Any) -> dict[str, Any]:
        response = await self.route(**params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def pick(self, **params: Any) -> str:
        """The primary provider's name, for a route without a lease unless asked."""
        params.setdefault("lease", False)
        body = await self.route_ok(**params)
        return str(body["provider"]["name"])

    async def report(self, **body: Any) -> httpx.Response:
        return await self.client.post("/v1/report", json=body)

    async def provider(self, name: str, namespace: str = NS) -> dict[str, Any]:
        response = await self.client.get("/v1/providers", params={"namespace": namespace})
        assert response.status_code == 200, response.text
        for entry in response.json()["providers"]:
            if entry["name"] == name:
                return dict(entry)
        raise AssertionError(f"provider {name} not listed")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def table(clock: FakeClock) -> RoutingTable:
    return RoutingTable(clock=clock, rng=random.Random(1234), lease_ttl=LEASE_TTL)


@pytest.fixture
async def api(table: RoutingTable, clock: FakeClock) -> AsyncIterator[Api]:
    """The route API over ``table``."""
    app = create_app(table)
    async with Server(app, "127.0.0.1", 0) as server, httpx.AsyncClient(
            base_url=server.url, timeout=10.0) as client:
        yield Api(client, server, app, table, clock)


@pytest.fixture
async def any_api(table: RoutingTable, clock: FakeClock) -> AsyncIterator[Api]:
    """The route API with metrics of its own."""
    app = create_app(table, metrics=ServiceMetrics())
    async with Server(app, "127.0.0.1", 0) as server, \
            httpx.AsyncClient(base_url=server.url, timeout=10.0) as client:
        yield Api(client, server, app, table, clock)


@dataclass
class ThreadedServer:
    url: str
    app: RouteService


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[ThreadedServer]:
    """The route API in a thread of its own, for synchronous clients (schemathesis).

    Its providers are always eligible and have names a fuzzer will not guess, so that a 5xx
    can only mean a bug or a documented 503 (a capability no provider has)."""
    table = RoutingTable(clock=FakeClock(), rng=random.Random(7), lease_ttl=LEASE_TTL)
    for name in ("fuzz-alpha-7f3a", "fuzz-beta-9c1d"):
        table.upsert_provider(NS, name, provider_spec(name, capabilities=["chat"]), {})
    table.upsert_policy(NS, "fuzz-policy-2b8e",
                        RoutingPolicySpec.model_validate({"default": True}))
    app = create_app(table, readiness=lambda: (True, {"tableSynced": True}))
    loop = asyncio.new_event_loop()
    server = Server(app, "127.0.0.1", 0)
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        started.set()
        loop.run_until_complete(server.wait())

    thread = threading.Thread(target=run, name="fuzz-server", daemon=True)
    thread.start()
    assert started.wait(10), "the fuzz server did not start"
    try:
        yield ThreadedServer(server.url, app)
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(timeout=15)
        thread.join(timeout=10)
        loop.close()
