"""A fallback holds a lease while the proxy calls it, and one that filled up is skipped."""

from __future__ import annotations

import asyncio
from pathlib import Path

from provider_router.proxy import ProxyOptions
from proxy.conftest import ProxyEnv, proxy_env
from support.fake_llm import FakeLLM

CHAT = {"model": "gpt-fake", "messages": [{"role": "user", "content": "hi"}]}


async def wait_for_call(env: ProxyEnv, name: str, timeout: float = 10.0) -> None:
    """Until fake ``name`` has received a chat call; fails after ``timeout`` seconds."""
    async def seen() -> None:
        while not env.fakes[name].calls("/v1/chat/completions"):
            await asyncio.sleep(0.01)
    try:
        await asyncio.wait_for(seen(), timeout)
    except TimeoutError:
        raise AssertionError(f"{name} was never called within {timeout} s") from None


async def test_a_fallback_counts_in_flight_while_its_call_runs(tmp_path: Path) -> None:
    async with proxy_env(tmp_path, (FakeLLM("alpha", behaviour="status", status=503), {}),
                         (FakeLLM("beta", answer_delay=1.0), {"maxConcurrent": 4})) as env:
        beta = env.table.provider("default", "beta")
        async with env.http() as http:
            call = asyncio.ensure_future(http.post("/v1/chat/completions", json=CHAT))
            try:
                await wait_for_call(env, "beta")
                assert not call.done()
                assert beta.in_flight == 1, "the fallback's call holds a lease"
                assert env.table.in_flight_leases() == 1, "the primary's was released"
                response = await asyncio.wait_for(call, 10.0)
            finally:
                call.cancel()
        assert response.status_code == 200
        assert response.headers["x-router-provider"] == "default/beta"
        assert beta.in_flight == 0
        assert env.table.in_flight_leases() == 0
        assert dict(beta.outcomes) == {"success": 1}


async def test_a_fallback_that_filled_up_meanwhile_is_skipped(tmp_path: Path) -> None:
    options = ProxyOptions(connect_seconds=2.0, first_byte_seconds=2.0, idle_seconds=3.0,
                           deadline_seconds=8.0)
    async with proxy_env(tmp_path, (FakeLLM("alpha", behaviour="hang"), {}),
                         (FakeLLM("beta"), {"maxConcurrent": 1}), (FakeLLM("gamma"), {}),
                         options=options) as env:
        async with env.http() as http:
            call = asyncio.ensure_future(http.post("/v1/chat/completions", json=CHAT))
            try:
                await wait_for_call(env, "alpha")
                # While the primary hangs, another call takes the fallback's only slot.
                env.table.acquire("default", "main", "beta")
                response = await asyncio.wait_for(call, 10.0)
            finally:
                call.cancel()
        assert response.status_code == 200
        assert response.headers["x-router-provider"] == "default/gamma"
        assert env.fakes["beta"].calls("/v1/chat/completions") == []
        assert env.table.provider("default", "beta").in_flight == 1
        assert env.table.in_flight_leases() == 1
