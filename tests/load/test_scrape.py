"""Scraping vLLM's ``/metrics`` and Ollama's ``/api/ps`` from real loopback servers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from provider_router.api import LLMProviderSpec, SecretKeyRef
from provider_router.engine import LoadSample, RoutingTable
from provider_router.health import Prober, load_url, scrape

from .conftest import FakeOllama, FakeVllm, StartApp


def spec(url: str, **extra: object) -> LLMProviderSpec:
    extra.setdefault("apiFormat", "vllm")
    extra.setdefault("healthCheck", {"enabled": False})
    extra.setdefault("loadMetrics", {"enabled": True, "intervalSeconds": 1})
    return LLMProviderSpec.model_validate({"baseURL": url, **extra})


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("kv_name", ["vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"])
async def test_vllm_figures_under_either_kv_gauge_name(start_app: StartApp,
                                                        kv_name: str) -> None:
    server = FakeVllm(running=3, waiting=7, kv=0.42, kv_name=kv_name)
    url = await start_app(server.app)
    async with httpx.AsyncClient(timeout=5.0) as client:
        sample = await asyncio.wait_for(scrape(client, spec(url)), 10)
    assert sample == LoadSample(running=3.0, waiting=7.0, kv_cache_usage=0.42)


async def test_ollama_ps_gives_the_loaded_models(start_app: StartApp) -> None:
    server = FakeOllama(tags=("llama3:8b", "qwen2:7b", "phi3:mini"),
                        loaded=("qwen2:7b", "llama3:8b"))
    url = await start_app(server.app)
    async with httpx.AsyncClient(timeout=5.0) as client:
        sample = await asyncio.wait_for(scrape(client, spec(url, apiFormat="ollama")), 10)
    assert sample.loaded_models == ("llama3:8b", "qwen2:7b")
    assert sample.queue is None  # Ollama exports no queue: ranking stays on leases


def test_figures_are_read_at_the_server_root_not_under_v1() -> None:
    assert load_url(spec("http://vllm:8000/v1")) == "http://vllm:8000/metrics"
    assert load_url(spec("http://ollama:11434", apiFormat="ollama")) == \
        "http://ollama:11434/api/ps"
    assert load_url(spec("http://x:1", loadMetrics={"enabled": True, "path": "/m"})) == \
        "http://x:1/m"
    assert load_url(spec("http://x:1", loadMetrics={"enabled": False})) is None
    # OpenAI exports no load: without a path of its own nothing is scraped.
    assert load_url(spec("http://x:1", apiFormat="openai")) is None


async def test_the_prober_scrapes_on_the_interval_with_the_providers_credential(
        start_app: StartApp) -> None:
    scraped, plain, off = FakeVllm(running=2), FakeVllm(), FakeVllm()
    urls = [await start_app(s.app) for s in (scraped, plain, off)]
    table = RoutingTable()
    table.upsert_provider("ns", "scraped", spec(
        urls[0], credentialsSecretRef={"name": "vllm", "key": "token"}))
    table.upsert_provider("ns", "plain", spec(urls[1]))
    table.upsert_provider("ns", "off", spec(urls[2], loadMetrics={"enabled": False}))
    secrets = {("ns", "vllm"): "sk-vllm-only"}
    samples: list[tuple[str, LoadSample]] = []

    def credential_for(namespace: str, ref: SecretKeyRef) -> str | None:
        return secrets.get((namespace, ref.name))

    prober = Prober(table, credential_for=credential_for, initial_delay=0.0,
                    on_sample=lambda ns, name, sample, flipped: samples.append((name, sample)))
    prober.start()
    try:
        assert prober.scraped == {("ns", "scraped"), ("ns", "plain")}
        assert prober.probed == set()  # health checks are off: scraping stands alone
        await wait_for(lambda: scraped.scrapes >= 2 and plain.scrapes >= 2)
        live = table.provider("ns", "scraped").live
        assert live is not None
        assert live.sample == LoadSample(running=2.0, waiting=0.0, kv_cache_usage=0.1)
        # A spec turning scraping off stops its loop.
        table.upsert_provider("ns", "plain", spec(urls[1], loadMetrics={"enabled": False}))
        prober.sync()
        assert prober.scraped == {("ns", "scraped")}
    finally:
        await asyncio.wait_for(prober.stop(), 10)
    assert off.scrapes == 0
    assert set(scraped.auth) == {"Bearer sk-vllm-only"}
    assert set(plain.auth) == {None}
    assert {name for name, _ in samples} == {"scraped", "plain"}


async def test_a_failed_scrape_records_nothing(start_app: StartApp) -> None:
    server = FakeVllm(running=5)
    url = await start_app(server.app)
    table = RoutingTable()
    table.upsert_provider("ns", "v", spec(url))
    prober = Prober(table, initial_delay=0.0)
    try:
        first = await asyncio.wait_for(prober.scraper.scrape_now("ns", "v"), 10)
        assert first is not None
        server.failing = True
        second = await asyncio.wait_for(prober.scraper.scrape_now("ns", "v"), 10)
        assert second is None
        live = table.provider("ns", "v").live
        assert live is not None
        assert live.sample == first  # the last good figures stay, until they go stale
        assert prober.scraper.failures == 1
    finally:
        await asyncio.wait_for(prober.stop(), 10)
