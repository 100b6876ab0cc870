"""RouterClient and AsyncRouterClient against a real standalone router and real mock
providers: routing, reporting, listings, and the call context manager's outcome reports."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from provider_router.client import (
    AsyncRouterClient,
    BadRequestError,
    NoProviderAvailableError,
    NotFoundError,
    Outcome,
    RouterClient,
    RouterUnavailableError,
)
from standalone.router_harness import Env


async def provider(env: Env, name: str) -> dict[str, Any]:
    body = (await env.http.get("/v1/providers")).json()
    return next(p for p in body["providers"] if p["name"] == name)


async def test_async_route_report_and_listings(env: Env) -> None:
    async with AsyncRouterClient(env.url) as client:
        route = await client.route(capabilities=["chat"])
        assert route.provider.name == "alpha"
        assert route.provider.namespace == "default"
        assert route.provider.api_base == env.alpha.url + "/v1"
        assert [f.name for f in route.fallbacks] == ["beta"]
        assert route.lease_id
        assert route.policy == "main"
        assert route.strategy == "Priority"
        assert (await provider(env, "alpha"))["inFlight"] == 1
        ack = await client.report(route.lease_id, "success", latency_ms=42.0,
                                  input_tokens=100, output_tokens=20)
        assert ack["leaseReleased"] is True
        assert (await provider(env, "alpha"))["inFlight"] == 0
        ack = await client.report(provider="beta", namespace="default", outcome=Outcome.ERROR,
                                  status_code=500)
        assert ack["provider"] == "beta"
        assert ack["leaseReleased"] is False
        assert [p["name"] for p in await client.providers()] == ["alpha", "beta"]
        assert [p["name"] for p in await client.policies()] == ["main"]
        assert await client.providers(namespace="elsewhere") == []
        assert await client.ready()

        explained = await client.route(explain=True, lease=False)
        assert explained.lease_id is None
        assert explained.candidates is not None
        assert {c.name: c.role for c in explained.candidates} == {"alpha": "primary",
                                                                  "beta": "fallback"}


async def test_time_to_first_token_is_reported_and_stream_is_routed(env: Env) -> None:
    async with AsyncRouterClient(env.url) as client:
        route = await client.route(stream=True)
        assert route.lease_id is not None
        await client.report(route.lease_id, "success", latency_ms=900.0, ttft_ms=35.0)
        assert (await provider(env, route.provider.name))["ttftMs"] == 35.0

    def work() -> float:
        with RouterClient(env.url, namespace="default") as client:
            route = client.route(stream=True)
            assert route.lease_id is not None
            client.report(route.lease_id, "success", latency_ms=900.0, ttft_ms=135.0)
            listed = next(p for p in client.providers() if p["name"] == route.provider.name)
            return float(listed["ttftMs"])

    assert await asyncio.to_thread(work) == pytest.approx(35.0 + 0.2 * 100.0)


async def test_sync_client_in_a_worker_thread(env: Env) -> None:
    def work() -> tuple[str, bool, list[str]]:
        with RouterClient(env.url, namespace="default") as client:
            route = client.route()
            assert route.lease_id is not None
            ack = client.report(route.lease_id, "success", latency_ms=5)
            return route.provider.name, ack["leaseReleased"], [
                p["name"] for p in client.providers()]

    # The sync client blocks, so it runs in a thread while this loop serves the router.
    assert await asyncio.to_thread(work) == ("alpha", True, ["alpha", "beta"])


async def test_api_errors_are_typed(env: Env) -> None:
    async with AsyncRouterClient(env.url) as client:
        with pytest.raises(NotFoundError) as missing:
            await client.route(policy="nope")
        assert missing.value.code == "unknown_policy"
        assert missing.value.status_code == 404
        with pytest.raises(NoProviderAvailableError) as none:
            await client.route(capabilities=["teleport"])
        assert {c["name"] for c in none.value.candidates} == {"alpha", "beta"}
        assert all("MissingCapability" in c["reasons"] for c in none.value.candidates)
        with pytest.raises(BadRequestError) as bad:
            await client.route(capabilities=[""])
        assert bad.value.details["field"].startswith("capability")
        with pytest.raises(NotFoundError) as lease:
            await client.report("no-such-lease", "success")
        assert lease.value.code == "unknown_lease"


async def test_unreachable_router() -> None:
    async with AsyncRouterClient("http://127.0.0.1:9", timeout=1.0) as client:
        with pytest.raises(RouterUnavailableError, match="unreachable"):
            await client.route()


async def test_call_reports_success_with_latency_and_tokens(env: Env) -> None:
    async with (AsyncRouterClient(env.url) as client, httpx.AsyncClient() as http,
                client.call(capabilities=["chat"]) as call):
        assert (await provider(env, "alpha"))["inFlight"] == 1
        response = await http.post(call.provider.api_base + "/chat/completions",
                                   json={"model": "m", "messages": [
                                       {"role": "user", "content": "hi"}]})
        usage = response.json()["usage"]
        call.tokens(usage["prompt_tokens"], usage["completion_tokens"])
    assert call.outcome is Outcome.SUCCESS
    assert call.report_error is None
    assert call.elapsed_ms is not None
    assert call.elapsed_ms > 0
    alpha = await provider(env, "alpha")
    assert alpha["inFlight"] == 0
    assert alpha["outcomes"] == {"success": 1}
    assert alpha["tpmUsed"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_streamed_call_reports_its_time_to_first_token(env: Env) -> None:
    async with AsyncRouterClient(env.url) as client:
        async with client.call(stream=True) as call:
            assert call.ttft_ms is None
            await asyncio.sleep(0.02)
            call.first_token()
            first = call.ttft_ms
            await asyncio.sleep(0.02)
            call.first_token()  # later chunks change nothing
        assert first is not None
        assert call.ttft_ms == first
        assert call.elapsed_ms is not None
        assert 20.0 <= first < call.elapsed_ms
        assert (await provider(env, call.provider.name))["ttftMs"] == pytest.approx(first)

    def work() -> float | None:
        with RouterClient(env.url) as client, client.call(stream=True) as call:
            call.first_token()
        return call.ttft_ms

    assert await asyncio.to_thread(work) is not None


async def test_call_on_http_429_reports_rate_limited_with_retry_after(env: Env) -> None:
    env.alpha.fail(429, retry_after=30)
    async with AsyncRouterClient(env.url) as client, httpx.AsyncClient() as http:
        call = client.call(capabilities=["chat"])

        async def chat() -> None:
            async with call:
                assert call.provider.name == "alpha"
                response = await http.post(call.provider.api_base + "/chat/completions",
                                           json={"model": "m", "messages": []})
                response.raise_for_status()

        with pytest.raises(httpx.HTTPStatusError):
            await chat()
        assert call.outcome is Outcome.RATE_LIMITED
        alpha = await provider(env, "alpha")
        assert "CoolingDown" in alpha["reasons"]
        assert alpha["inFlight"] == 0
        assert 25 < alpha["retryInSeconds"] <= 30
        assert alpha["outcomes"] == {"rate_limited": 1}
        # The next request goes to the fallback while alpha cools down.
        assert (await client.route(lease=False)).provider.name == "beta"


async def test_call_on_timeout_reports_timeout(env: Env) -> None:
    env.alpha.latency = 1.0
    async with AsyncRouterClient(env.url) as client, httpx.AsyncClient(timeout=0.1) as http:
        with pytest.raises(httpx.ReadTimeout):
            async with client.call() as call:
                await http.get(call.provider.api_base + "/models")
    assert call.outcome is Outcome.TIMEOUT
    assert (await provider(env, "alpha"))["outcomes"] == {"timeout": 1}


async def test_call_on_openai_style_error(env: Env) -> None:
    class RateLimitError(Exception):
        """Shaped like openai.RateLimitError: status_code plus an httpx response."""

        def __init__(self) -> None:
            super().__init__("rate limited")
            self.status_code = 429
            self.response = httpx.Response(429, headers={"retry-after-ms": "20000"})

    async with AsyncRouterClient(env.url) as client:
        with pytest.raises(RateLimitError):
            async with client.call():
                raise RateLimitError
    alpha = await provider(env, "alpha")
    assert alpha["outcomes"] == {"rate_limited": 1}
    assert 15 < alpha["retryInSeconds"] <= 20


async def test_call_on_other_errors_reports_error(env: Env) -> None:
    async with AsyncRouterClient(env.url) as client:
        with pytest.raises(ValueError, match="parsing"):
            async with client.call() as call:
                raise ValueError("parsing the answer failed")
        assert call.outcome is Outcome.ERROR
        env.alpha.fail(503)
        async with httpx.AsyncClient() as http:
            with pytest.raises(httpx.HTTPStatusError):
                async with client.call() as call:
                    (await http.get(call.provider.api_base + "/models")).raise_for_status()
    assert (await provider(env, "alpha"))["outcomes"] == {"error": 2}


async def test_explicit_outcomes(env: Env) -> None:
    async with AsyncRouterClient(env.url) as client:
        async with client.call() as call:
            call.rate_limited(retry_after=5)
        assert call.outcome is Outcome.RATE_LIMITED
        alpha = await provider(env, "alpha")
        assert "CoolingDown" in alpha["reasons"]
        assert alpha["retryInSeconds"] <= 5
        async with client.call() as call:
            assert call.provider.name == "beta"
            call.failed("timeout")
    assert (await provider(env, "beta"))["outcomes"] == {"timeout": 1}


async def test_sync_call_context_manager(env: Env) -> None:
    env.alpha.fail(429, retry_after=10)

    def work() -> tuple[str | None, str | None]:
        with RouterClient(env.url) as client, httpx.Client() as http:
            try:
                with client.call(capabilities="chat") as call:
                    http.get(call.provider.api_base + "/models").raise_for_status()
            except httpx.HTTPStatusError:
                pass
            first = call.outcome
            with client.call() as second:
                http.get(second.provider.api_base + "/models").raise_for_status()
            return (first.value if first else None), second.provider.name

    assert await asyncio.to_thread(work) == ("rate_limited", "beta")
    assert (await provider(env, "beta"))["outcomes"] == {"success": 1}


async def test_a_failed_report_never_raises_out_of_the_block(env: Env) -> None:
    async with AsyncRouterClient(env.url) as client:
        async with client.call() as call:
            assert call.lease_id is not None
            await client.report(call.lease_id, "success")  # the lease is gone now
        assert isinstance(call.report_error, NotFoundError)


async def test_cancelled_call_is_not_reported(env: Env) -> None:
    async with AsyncRouterClient(env.url) as client:
        started = asyncio.Event()

        async def work() -> None:
            async with client.call():
                started.set()
                await asyncio.sleep(10)

        task = asyncio.create_task(work())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    alpha = await provider(env, "alpha")
    assert alpha["outcomes"] == {}
    assert alpha["inFlight"] == 1
