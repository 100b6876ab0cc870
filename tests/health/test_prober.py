"""The Prober against real loopback servers: bounded concurrency, per-provider credentials,
and loops that follow the table as providers come and go. The loops wait on virtual time
(``VirtualTime``): a test advances the clock instead of sleeping through an interval."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from provider_router.api import LLMProviderSpec, SecretKeyRef
from provider_router.engine import Health, ProbeResult, RoutingTable
from provider_router.health import Prober
from provider_router.mock_provider import MockProvider

from .conftest import VirtualTime

StartMock = Callable[..., Awaitable[MockProvider]]


@pytest.fixture
async def start_mock() -> AsyncIterator[StartMock]:
    """``await start_mock(**fields)``: a started ``MockProvider`` on loopback, stopped after."""
    started: list[MockProvider] = []

    async def start(**fields: Any) -> MockProvider:
        mock = MockProvider(f"mock-{len(started)}", **fields)
        await mock.start()
        started.append(mock)
        return mock

    yield start
    for mock in started:
        await mock.stop()


def paths(server: MockProvider) -> list[str]:
    return [request.path for request in server.requests]


def spec(url: str, **extra: object) -> LLMProviderSpec:
    return LLMProviderSpec.model_validate({"baseURL": url, **extra})


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def test_bounded_concurrency_with_200_providers(start_mock: StartMock) -> None:
    server = await start_mock(latency=0.02)
    url = server.url
    table = RoutingTable()
    for i in range(200):
        table.upsert_provider("default", f"p{i}", spec(f"{url}/p{i}"))
    # A client with room for 1,000 connections: only the semaphore may hold probes back.
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=1000)) as client:
        prober = Prober(table, concurrency=8, client=client, initial_delay=0.0)
        prober.start()
        try:
            await wait_for(lambda: all(s.health is Health.HEALTHY for s in table.providers()),
                           timeout=10)
        finally:
            await prober.stop()
        assert not client.is_closed  # a client passed in belongs to the caller
    assert len(set(paths(server))) == 200
    assert server.max_in_flight == 8
    assert prober.max_in_flight == 8


async def test_results_reach_the_table_and_the_hook(start_mock: StartMock) -> None:
    good, bad = await start_mock(), await start_mock()
    bad.fail(503)
    good_url, bad_url = good.url, bad.url
    table = RoutingTable()
    table.upsert_provider("ns", "good", spec(good_url))
    table.upsert_provider("ns", "bad", spec(bad_url, healthCheck={"failureThreshold": 1}))
    seen: list[tuple[str, str, ProbeResult]] = []

    async def hook(namespace: str, name: str, result: ProbeResult) -> None:
        seen.append((namespace, name, result))

    async with Prober(table, on_result=hook, initial_delay=0.0) as prober:
        await wait_for(lambda: len(seen) >= 2)
        assert prober.probed == {("ns", "good"), ("ns", "bad")}
    results = {name: result for _, name, result in seen}
    assert results["good"].ok
    assert results["bad"].reason == "ServerError"
    assert table.provider("ns", "good").health is Health.HEALTHY
    assert table.provider("ns", "bad").health is Health.UNHEALTHY


async def test_a_failing_hook_does_not_stop_probing(start_mock: StartMock,
                                                    virtual_time: VirtualTime) -> None:
    server = await start_mock()
    url = server.url
    table = RoutingTable()
    table.upsert_provider("default", "p", spec(url, healthCheck={"intervalSeconds": 1,
                                                                 "timeoutSeconds": 1}))
    calls = 0

    def hook(namespace: str, name: str, result: ProbeResult) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("hook bug")

    async with Prober(table, on_result=hook, initial_delay=0.0, jitter=0.0,
                      sleep=virtual_time.sleep):
        await wait_for(lambda: calls == 1 and virtual_time.sleeping == 1)
        virtual_time.advance(1)
        await wait_for(lambda: calls == 2 and virtual_time.sleeping == 1)
    assert len(server.requests) == 2


async def _quiet_loop() -> None:
    """Let every ready task run; with no nap ended, no probe can start meanwhile."""
    for _ in range(20):
        await asyncio.sleep(0)


async def test_credentials_go_only_to_their_provider(start_mock: StartMock) -> None:
    first, second = await start_mock(), await start_mock()
    url1, url2 = first.url, second.url
    secrets = {("team-a", "creds-a"): {"key": "token-for-a"},
               ("team-b", "creds-b"): {"key": "token-for-b"}}
    lookups: list[tuple[str, str]] = []

    def credential_for(namespace: str, ref: SecretKeyRef) -> str | None:
        lookups.append((namespace, ref.name))
        return secrets.get((namespace, ref.name), {}).get(ref.key)

    table = RoutingTable()
    table.upsert_provider("team-a", "a", spec(
        url1 + "/a", credentialsSecretRef={"name": "creds-a", "key": "key"}))
    table.upsert_provider("team-a", "plain", spec(url1 + "/plain"))
    table.upsert_provider("team-b", "b", spec(
        url2 + "/b", apiFormat="anthropic", credentialsSecretRef={"name": "creds-b",
                                                                  "key": "key"}))
    # The same secret name in another namespace is another secret: b's ref does not reach a's.
    table.upsert_provider("team-b", "borrower", spec(
        url2 + "/borrower", credentialsSecretRef={"name": "creds-a", "key": "key"}))
    async with Prober(table, credential_for=credential_for, initial_delay=0.0):
        await wait_for(lambda: len(first.requests) >= 2 and len(second.requests) >= 2)

    def headers_for(server: MockProvider, prefix: str) -> dict[str, str]:
        (headers,) = [r.headers for r in server.requests if r.path.startswith(prefix)][:1]
        return {k.lower(): v for k, v in headers.items()}

    a = headers_for(first, "/a/")
    assert a["authorization"] == "Bearer token-for-a"
    plain = headers_for(first, "/plain/")
    assert "authorization" not in plain
    assert "x-api-key" not in plain
    b = headers_for(second, "/b/")
    assert b["x-api-key"] == "token-for-b"
    assert "authorization" not in b
    borrower = headers_for(second, "/borrower/")
    assert "authorization" not in borrower
    assert "x-api-key" not in borrower
    for server, token in ((first, "token-for-b"), (second, "token-for-a")):
        assert all(token not in str(r.headers) for r in server.requests)
    assert sorted(set(lookups)) == [("team-a", "creds-a"), ("team-b", "creds-a"),
                                    ("team-b", "creds-b")]


async def test_disabled_and_unchecked_providers_are_not_probed(start_mock: StartMock) -> None:
    server = await start_mock()
    url = server.url
    table = RoutingTable()
    table.upsert_provider("default", "on", spec(url + "/on"))
    table.upsert_provider("default", "off", spec(url + "/off", disabled=True))
    table.upsert_provider("default", "nocheck", spec(url + "/nocheck",
                                                     healthCheck={"enabled": False}))
    async with Prober(table, initial_delay=0.0) as prober:
        await wait_for(lambda: len(server.requests) >= 1)
        assert prober.probed == {("default", "on")}
        assert await prober.probe_now("default", "off") is None
    assert paths(server) == ["/on/v1/models"]


async def test_sync_follows_added_changed_and_removed_providers(
        start_mock: StartMock, virtual_time: VirtualTime) -> None:
    server = await start_mock()
    url = server.url
    table = RoutingTable()
    table.upsert_provider("default", "a", spec(url + "/a", healthCheck={"intervalSeconds": 60}))
    async with Prober(table, initial_delay=0.0, sleep=virtual_time.sleep) as prober:
        await wait_for(lambda: "/a/v1/models" in paths(server))

        table.upsert_provider("default", "b", spec(url + "/b"))
        prober.sync()
        await wait_for(lambda: "/b/v1/models" in paths(server))

        # A changed spec is probed again promptly, at its new address.
        table.upsert_provider("default", "a", spec(url + "/a2",
                                                   healthCheck={"intervalSeconds": 60}))
        prober.sync()
        await wait_for(lambda: "/a2/v1/models" in paths(server))

        table.remove_provider("default", "b")
        table.upsert_provider("default", "a", spec(url + "/a2", disabled=True,
                                                   healthCheck={"intervalSeconds": 60}))
        prober.sync()
        assert prober.probed == set()
        count = len(server.requests)
        await wait_for(lambda: virtual_time.sleeping == 0)  # every loop is gone
        virtual_time.advance(3600)
        await _quiet_loop()
        assert len(server.requests) == count


async def test_each_loop_sleeps_its_interval(start_mock: StartMock,
                                             virtual_time: VirtualTime) -> None:
    server = await start_mock()
    url = server.url
    table = RoutingTable()
    table.upsert_provider("default", "p", spec(url, healthCheck={"intervalSeconds": 10,
                                                                 "timeoutSeconds": 1}))
    async with Prober(table, initial_delay=3.0, jitter=0.0, rng=random.Random(5),
                      sleep=virtual_time.sleep) as prober:
        # First a random start delay, capped by initial_delay; no probe before it ends.
        await wait_for(lambda: virtual_time.sleeping == 1)
        (start,) = virtual_time.naps
        assert 0.0 < start <= 3.0
        await _quiet_loop()
        assert server.requests == []
        virtual_time.advance(start)
        for probes in (1, 2, 3):
            await wait_for(lambda n=probes: len(server.requests) == n  # type: ignore[misc]
                           and virtual_time.sleeping == 1)
            assert virtual_time.naps[-1] == 10.0
            virtual_time.advance(9.9)  # not yet: the nap is 10 s
            await _quiet_loop()
            assert len(server.requests) == probes
            virtual_time.advance(0.1)
        await wait_for(lambda: len(server.requests) == 4 and virtual_time.sleeping == 1)
        # The loop reads the interval from the table: a new spec is probed at once, then
        # sleeps the new interval.
        table.upsert_provider("default", "p", spec(url, healthCheck={"intervalSeconds": 30,
                                                                     "timeoutSeconds": 1}))
        prober.sync()
        await wait_for(lambda: virtual_time.naps[-1] == 30.0 and virtual_time.sleeping == 1)
    assert len(server.requests) == 5


async def test_jitter_spreads_the_naps_around_the_interval(
        start_mock: StartMock, virtual_time: VirtualTime) -> None:
    server = await start_mock()
    url = server.url
    table = RoutingTable()
    table.upsert_provider("default", "p", spec(url, healthCheck={"intervalSeconds": 10,
                                                                 "timeoutSeconds": 1}))
    async with Prober(table, initial_delay=0.0, jitter=0.2, rng=random.Random(11),
                      sleep=virtual_time.sleep):
        for probes in range(1, 21):
            await wait_for(lambda n=probes: len(server.requests) == n  # type: ignore[misc]
                           and virtual_time.sleeping == 1)
            virtual_time.advance(virtual_time.naps[-1])
    naps = virtual_time.naps
    assert len(naps) >= 20
    assert all(8.0 <= nap <= 12.0 for nap in naps)
    assert len(set(naps)) == len(naps)  # each nap drawn anew
    assert min(naps) < 10.0 < max(naps)


async def test_stop_closes_its_own_client(start_mock: StartMock) -> None:
    table = RoutingTable()
    prober = Prober(table)
    prober.start()
    client = prober.client
    await prober.stop()
    assert client.is_closed
