"""Discovered models: what a probe's models listing says a provider serves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from provider_router.api import LLMProviderSpec, RoutingPolicySpec
from provider_router.engine import (
    MAX_DISCOVERED_MODELS,
    NoProviderAvailable,
    RouteRequest,
    RoutingTable,
)
from provider_router.health import Prober
from provider_router.service import Server, create_app

from .conftest import FakeOllama, FakeVllm, StartApp


@pytest.fixture
async def prober(table: RoutingTable) -> AsyncIterator[Prober]:
    prober = Prober(table, initial_delay=0.0)
    yield prober
    await asyncio.wait_for(prober.stop(), 10)


def spec(url: str, **extra: object) -> LLMProviderSpec:
    return LLMProviderSpec.model_validate({"baseURL": url, **extra})


def served_by(table: RoutingTable, model: str) -> set[str]:
    return {table.route(RouteRequest(namespace="ns", model=model, lease=False))
            .target.provider.name for _ in range(6)}


async def test_discovered_models_route_a_model_requirement(
        start_app: StartApp, table: RoutingTable, prober: Prober) -> None:
    vllm = FakeVllm(models=("qwen2-7b", "llama-3.1-8b", "qwen2-7b"))
    ollama = FakeOllama(tags=("llama-3.1-8b", "phi3:mini"), loaded=())
    table.upsert_provider("ns", "vllm", spec(await start_app(vllm.app), apiFormat="vllm"))
    table.upsert_provider("ns", "ollama", spec(await start_app(ollama.app),
                                               apiFormat="ollama"))
    # Lists nothing and is never probed: it serves any model, as before.
    table.upsert_provider("ns", "anything", spec("http://127.0.0.1:9",
                                                  healthCheck={"enabled": False}))
    # Lists its models in the spec: the spec wins over what it would list.
    table.upsert_provider("ns", "listed", spec("http://127.0.0.1:9", models=["phi3:mini"],
                                               healthCheck={"enabled": False}))
    table.upsert_policy("ns", "p", RoutingPolicySpec.model_validate({"default": True}))
    for name in ("vllm", "ollama"):
        result = await asyncio.wait_for(prober.probe_now("ns", name), 10)
        assert result is not None
        assert result.ok
    assert table.provider("ns", "vllm").discovered_models == ("llama-3.1-8b", "qwen2-7b")
    assert table.provider("ns", "ollama").discovered_models == ("llama-3.1-8b", "phi3:mini")
    assert served_by(table, "qwen2-7b") == {"vllm", "anything"}
    assert served_by(table, "llama-3.1-8b") == {"vllm", "ollama", "anything"}
    assert served_by(table, "phi3:mini") == {"ollama", "anything", "listed"}
    # A model nobody listed goes only to the provider that serves anything.
    assert served_by(table, "mistral-7b") == {"anything"}
    table.remove_provider("ns", "anything")
    with pytest.raises(NoProviderAvailable) as caught:
        table.route(RouteRequest(namespace="ns", model="mistral-7b"))
    assert caught.value.excluded == {"ModelNotServed": 3}
    # A later probe that lists more is picked up.
    vllm.models = ("mistral-7b",)
    await asyncio.wait_for(prober.probe_now("ns", "vllm"), 10)
    assert served_by(table, "mistral-7b") == {"vllm"}

    async with Server(create_app(table), "127.0.0.1", 0) as server, \
            httpx.AsyncClient(base_url=server.url, timeout=10.0) as client:
        listed = {p["name"]: p for p in (await client.get("/v1/providers")).json()["providers"]}
    assert listed["vllm"]["discoveredModels"] == ["mistral-7b"]
    assert listed["vllm"]["models"] == []
    assert listed["listed"]["discoveredModels"] == []


def test_discovered_models_are_bounded_and_sorted(table: RoutingTable) -> None:
    table.upsert_provider("ns", "big", spec("http://127.0.0.1:9"))
    names = [f"m{i:04d}" for i in range(1000, 0, -1)] + ["x" * 300, ""]
    assert table.record_models("ns", "big", tuple(names))
    kept = table.provider("ns", "big").discovered_models
    assert len(kept) == MAX_DISCOVERED_MODELS
    assert list(kept) == sorted(kept)
    assert kept[0] == "m0001"
    assert not table.record_models("ns", "big", tuple(reversed(names)))  # no change


def test_discovered_models_survive_a_spec_change(table: RoutingTable) -> None:
    table.upsert_provider("ns", "a", spec("http://127.0.0.1:9"))
    table.record_models("ns", "a", ("m1",))
    table.upsert_provider("ns", "a", spec("http://127.0.0.1:9", priority=5))
    assert table.provider("ns", "a").models == frozenset({"m1"})
