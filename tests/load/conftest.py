"""Fixtures for the load tests: loopback servers shaped like vLLM and Ollama (see
``support.llm_servers``) and a routing table on a hand-driven clock."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest

from provider_router.engine import RoutingTable
from support.apps import StartApp, app_starter
from support.engine import FakeClock
from support.llm_servers import MODEL, FakeOllama, FakeVllm, vllm_metrics

__all__ = ["MODEL", "FakeOllama", "FakeVllm", "StartApp", "vllm_metrics"]



@pytest.fixture
async def start_app() -> AsyncIterator[StartApp]:
    """Start an aiohttp app on 127.0.0.1, port 0; returns its base URL."""
    async with app_starter() as start:
        yield start


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def table(clock: FakeClock) -> RoutingTable:
    return RoutingTable(clock=clock, rng=random.Random(99))
