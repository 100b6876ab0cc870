"""Failover before the answer starts, none after, and what each attempt teaches the engine."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest

from provider_router.proxy import ProxyOptions
from proxy.conftest import ProxyEnv, free_port, proxy_env
from support.fake_llm import COMPLETION_TOKENS, PROMPT_TOKENS, FakeLLM

CHAT = {"model": "gpt-fake", "messages": [{"role": "user", "content": "hi"}]}


def sdk(env: ProxyEnv) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=env.url + "/v1", api_key="caller", max_retries=0,
                              timeout=10.0, http_client=httpx.AsyncClient(trust_env=False))


def outcomes(env: ProxyEnv, name: str) -> dict[str, int]:
    return dict(env.table.provider("default", name).outcomes)


@pytest.mark.parametrize("stream", [False, True])
async def test_a_refused_connection_moves_to_the_next_provider(tmp_path: Path,
                                                              stream: bool) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    async with proxy_env(tmp_path, (down, {}), (FakeLLM("beta"), {})) as env:
        async with env.http() as http:
            response = await http.post("/v1/chat/completions", json={**CHAT, "stream": stream})
        assert response.status_code == 200
        assert response.headers["x-router-provider"] == "default/beta"
        assert "fake provider" in response.text or "provider" in response.text
        assert outcomes(env, "down0") == {"error": 1}
        assert outcomes(env, "beta") == {"success": 1}
        assert env.table.in_flight_leases() == 0


async def test_a_503_moves_to_the_next_provider(tmp_path: Path) -> None:
    async with proxy_env(tmp_path, (FakeLLM("alpha", behaviour="status", status=503), {}),
                         (FakeLLM("beta"), {})) as env:
        client = sdk(env)
        raw = await client.chat.completions.with_raw_response.create(**CHAT)  # type: ignore[call-overload]
        assert raw.headers["x-router-provider"] == "default/beta"
        assert len(env.fakes["alpha"].calls("/v1/chat/completions")) == 1
        assert outcomes(env, "alpha") == {"error": 1}
        await client.close()


async def test_a_429_starts_the_cooldown_from_retry_after_and_moves_on(tmp_path: Path) -> None:
    async with proxy_env(tmp_path, (FakeLLM("alpha", behaviour="status", status=429,
                                            retry_after="42"), {}),
                         (FakeLLM("beta"), {})) as env:
        async with env.http() as http:
            first = await http.post("/v1/chat/completions", json=CHAT)
            assert first.headers["x-router-provider"] == "default/beta"
            state = env.table.provider("default", "alpha")
            now = env.table.clock()
            assert state.cooling_until is not None
            assert 40 <= state.cooling_until - now <= 42.5, "Retry-After, not the policy's 30 s"
            second = await http.post("/v1/chat/completions", json=CHAT)
            assert second.headers["x-router-provider"] == "default/beta"
        assert len(env.fakes["alpha"].calls("/v1/chat/completions")) == 1, "cooling down"
        assert outcomes(env, "alpha") == {"rate_limited": 1}


async def test_when_every_provider_fails_the_last_answer_is_relayed(tmp_path: Path) -> None:
    async with proxy_env(tmp_path, (FakeLLM("alpha", behaviour="status", status=503), {}),
                         (FakeLLM("beta", behaviour="status", status=429, retry_after="5"),
                          {})) as env:
        async with env.http() as http:
            response = await http.post("/v1/chat/completions", json=CHAT)
        assert response.status_code == 429
        assert response.headers["retry-after"] == "5"
        assert response.json()["error"]["message"] == "beta says 429"


async def test_a_timeout_before_the_first_byte_moves_on(tmp_path: Path) -> None:
    async with proxy_env(tmp_path, (FakeLLM("alpha", behaviour="hang"), {}),
                         (FakeLLM("beta"), {})) as env:
        async with env.http() as http:
            response = await http.post("/v1/chat/completions", json=CHAT)
        assert response.headers["x-router-provider"] == "default/beta"
        assert outcomes(env, "alpha") == {"timeout": 1}


async def test_no_retry_after_the_first_byte(tmp_path: Path) -> None:
    async with proxy_env(tmp_path, (FakeLLM("alpha", behaviour="break"), {}),
                         (FakeLLM("beta"), {})) as env:
        client = sdk(env)
        stream = await client.chat.completions.create(**CHAT, stream=True)  # type: ignore[call-overload]
        received: list[str] = []

        async def read_all() -> None:
            async for chunk in stream:
                received.extend(c.delta.content or "" for c in chunk.choices)

        with pytest.raises(openai.APIError, match="broke the stream"):
            await read_all()
        assert received == ["Hello"], "the first event arrived, then the error"
        assert env.fakes["beta"].seen == [], "retried after the first byte"
        assert outcomes(env, "alpha") == {"error": 1}
        assert env.table.in_flight_leases() == 0
        await client.close()


async def test_usage_reaches_spend_and_the_budget(tmp_path: Path) -> None:
    # 1,000 tokens cost 1 USD here, so one call (17 tokens) spends 0.017 of a 0.01 budget.
    async with proxy_env(tmp_path, (FakeLLM("alpha"), {"costPer1kTokens": 1.0}),
                         policy={"budget": {"limitUSD": 0.01, "window": "1h"}}) as env:
        async with env.http() as http:
            first = await http.post("/v1/chat/completions", json=CHAT)
            assert first.status_code == 200
            state = env.table.provider("default", "alpha")
            expected = (PROMPT_TOKENS + COMPLETION_TOKENS) / 1000.0
            assert state.spend_usd == pytest.approx(expected)
            policy = env.table.policy("default", "main")
            assert policy.spend_total == pytest.approx(expected)
            second = await http.post("/v1/chat/completions", json=CHAT)
        assert second.status_code == 503, "the budget is spent"
        assert "OverBudget" in second.text
        assert len(env.fakes["alpha"].calls("/v1/chat/completions")) == 1


async def test_one_deadline_covers_every_attempt(tmp_path: Path) -> None:
    options = ProxyOptions(connect_seconds=1.0, first_byte_seconds=1.0, idle_seconds=1.0,
                           deadline_seconds=1.5)
    async with proxy_env(tmp_path, (FakeLLM("first", behaviour="hang"), {}),
                         (FakeLLM("second", behaviour="hang"), {}), (FakeLLM("third"), {}),
                         options=options) as env:
        async with env.http() as http:
            response = await http.post("/v1/chat/completions", json=CHAT)
        assert response.status_code == 504
        assert response.json()["error"]["code"] == "upstream_timeout"
        assert outcomes(env, "first") == {"timeout": 1}
        assert outcomes(env, "second") == {"timeout": 1}, "tried for what was left"
        assert env.fakes["third"].seen == [], "tried after the deadline"


async def test_a_stream_that_goes_silent_ends_with_an_error_event(tmp_path: Path) -> None:
    options = ProxyOptions(connect_seconds=1.0, first_byte_seconds=2.0, idle_seconds=0.5,
                           deadline_seconds=5.0)
    async with proxy_env(tmp_path, (FakeLLM("alpha", behaviour="stall"), {}),
                         (FakeLLM("beta"), {}), options=options) as env:
        client = sdk(env)
        stream = await client.chat.completions.create(**CHAT, stream=True)  # type: ignore[call-overload]

        async def read_all() -> None:
            async for _ in stream:
                pass

        with pytest.raises(openai.APIError, match=r"sent nothing for 0\.5 s"):
            await read_all()
        assert outcomes(env, "alpha") == {"timeout": 1}
        assert env.fakes["beta"].seen == []
        await client.close()
