"""Fixtures for the load tests: loopback servers shaped like vLLM and Ollama (see
``support.llm_servers``) and a routing table on a hand-driven clock."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from provider_router.engine import RoutingTable
from support.engine import FakeClock
from support.llm_servers import MODEL, FakeOllama, FakeVllm, vllm_metrics

__all__ = ["MODEL", "FakeOllama", "FakeVllm", "StartApp", "vllm_metrics"]

StartApp = Callable[[web.Application], Awaitable[str]]


@pytest.fixture
async def start_app() -> AsyncIterator[StartApp]:
    """Start an aiohttp app on 127.0.0.1, port 0; returns its base URL."""
    runners: list[web.AppRunner] = []

    async def start(app: web.Application) -> str:
        runner = web.AppRunner(app, shutdown_timeout=0.2, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def table(clock: FakeClock) -> RoutingTable:
    return RoutingTable(clock=clock, rng=random.Random(99))
