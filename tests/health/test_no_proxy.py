"""Probes never go through a proxy from the environment: they carry provider credentials.

A real recording proxy listens on loopback and ``HTTP_PROXY``/``ALL_PROXY`` point at it; the
probes of the Prober and of the embedded API's ``health_check`` must reach the provider
directly, and the proxy must not see a single byte. (A client with the default
``trust_env=True`` sends every probe, credential included, to that proxy.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from aiohttp import web

from provider_router import ProviderInfo, ProviderRouter
from provider_router.engine import Health, RoutingTable
from provider_router.health import Prober, probe_client
from provider_router.mock_provider import MockProvider

StartRaw = Callable[[Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]],
                    Awaitable[str]]
StartApp = Callable[[web.Application], Awaitable[str]]

CREDENTIAL = "sk-must-not-reach-a-proxy"


class RecordingProxy:
    """Accepts connections, keeps what it reads, and answers 502 like a dead upstream."""

    def __init__(self) -> None:
        self.received: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            data = await asyncio.wait_for(reader.read(65536), timeout=5)
            self.received.append(data)
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n"
                         b"connection: close\r\n\r\n")
            await writer.drain()
        finally:
            writer.close()


@pytest.fixture
async def proxy(start_raw: StartRaw, monkeypatch: pytest.MonkeyPatch) -> RecordingProxy:
    recorder = RecordingProxy()
    url = await start_raw(recorder.handle)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "all_proxy"):
        monkeypatch.setenv(name, url)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    return recorder


@pytest.fixture
async def provider() -> AsyncIterator[MockProvider]:
    mock = MockProvider("direct", api_key=CREDENTIAL)
    await mock.start()
    try:
        yield mock
    finally:
        await mock.stop()


async def test_the_proxy_records_a_client_that_trusts_the_environment(
        proxy: RecordingProxy, provider: MockProvider) -> None:
    # The proxy is real: an ordinary client does go through it.
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(f"{provider.url}/v1/models")
    assert response.status_code == 502
    assert proxy.received
    assert provider.requests == []


async def test_embedded_health_check_goes_direct(proxy: RecordingProxy,
                                                 provider: MockProvider) -> None:
    router = ProviderRouter()
    router.register(ProviderInfo("direct", provider.url, credential=CREDENTIAL))
    report = await asyncio.wait_for(router.health_check("direct"), timeout=30)
    assert proxy.received == []
    assert report.status is Health.HEALTHY, report
    assert provider.authorizations() == [f"Bearer {CREDENTIAL}"]


async def test_prober_goes_direct(proxy: RecordingProxy, provider: MockProvider) -> None:
    table = RoutingTable()
    table.upsert_provider("default", "direct", ProviderInfo("direct", provider.url).to_spec())
    async with Prober(table, initial_delay=0.0) as prober:
        result = await asyncio.wait_for(prober.probe_now("default", "direct"), timeout=30)
    assert proxy.received == []
    assert result is not None
    assert result.reason == "Unauthorized"  # no credential given: straight to the provider
    assert len(provider.requests) >= 1


async def test_probe_client_ignores_proxies_and_redirects() -> None:
    async with probe_client() as client:
        assert client.follow_redirects is False
        assert client.trust_env is False
