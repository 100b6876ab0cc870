"""The official openai SDK, pointed at the router, talks to a provider it never sees."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest

from proxy.conftest import ProxyEnv, proxy_env
from support.fake_llm import COMPLETION_TOKENS, PROMPT_TOKENS, FakeLLM

CALLER_KEY = "sk-caller-must-not-travel"


def sdk(env: ProxyEnv, base: str = "/v1") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=env.url + base, api_key=CALLER_KEY, max_retries=0,
                              timeout=10.0, http_client=httpx.AsyncClient(trust_env=False))


async def test_chat_through_the_sdk_reaches_the_provider_with_its_own_key(
        tmp_path: Path) -> None:
    async with proxy_env(tmp_path, (FakeLLM("alpha"), {"models": ["gpt-fake"]})) as env:
        client = sdk(env)
        raw = await client.chat.completions.with_raw_response.create(
            model="gpt-fake", messages=[{"role": "user", "content": "hi"}])
        answer = raw.parse()
        assert answer.choices[0].message.content == "Hello from the fake provider."
        assert answer.usage is not None
        assert answer.usage.prompt_tokens == PROMPT_TOKENS
        assert raw.headers["x-router-provider"] == "default/alpha"
        assert raw.headers["x-router-policy"] == "default/main"
        [seen] = env.fakes["alpha"].calls("/v1/chat/completions")
        assert seen.headers["Authorization"] == f"Bearer {env.keys['alpha']}"
        assert CALLER_KEY not in repr(seen.headers)
        assert seen.body["model"] == "gpt-fake"
        await client.close()


async def test_streamed_chat_arrives_chunk_by_chunk_without_the_usage_it_did_not_ask_for(
        tmp_path: Path) -> None:
    async with proxy_env(tmp_path, (FakeLLM("alpha"), {})) as env:
        client = sdk(env)
        stream = await client.chat.completions.create(
            model="gpt-fake", messages=[{"role": "user", "content": "hi"}], stream=True)
        chunks = [chunk async for chunk in stream]
        words = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert words == "Hello from the fake provider."
        assert all(c.choices for c in chunks), "the usage chunk the client did not ask for"
        assert all(c.usage is None for c in chunks)
        [seen] = env.fakes["alpha"].calls("/v1/chat/completions")
        assert seen.body["stream_options"] == {"include_usage": True}, "asked on its behalf"
        state = env.table.provider("default", "alpha")
        assert state.tokens.total(env.table.clock()) == PROMPT_TOKENS + COMPLETION_TOKENS
        await client.close()


async def test_a_client_that_asks_for_usage_gets_it(tmp_path: Path) -> None:
    async with proxy_env(tmp_path, (FakeLLM("alpha"), {})) as env:
        client = sdk(env)
        stream = await client.chat.completions.create(
            model="gpt-fake", messages=[{"role": "user", "content": "hi"}], stream=True,
            stream_options={"include_usage": True})
        chunks = [chunk async for chunk in stream]
        assert chunks[-1].usage is not None
        assert chunks[-1].usage.completion_tokens == COMPLETION_TOKENS
        await client.close()


async def test_named_policy_prefix_embeddings_and_models(tmp_path: Path) -> None:
    async with proxy_env(tmp_path, (FakeLLM("alpha"), {"models": ["gpt-fake", "embed-fake"]}),
                         (FakeLLM("claude"), {"apiFormat": "anthropic",
                                              "models": ["claude-fake"]})) as env:
        client = sdk(env, "/proxy/default/main/v1")
        models = await client.models.list()
        assert sorted(m.id for m in models.data) == ["embed-fake", "gpt-fake"]
        embedded = await client.embeddings.create(model="embed-fake", input="hello")
        assert embedded.data[0].embedding == [0.1, 0.2, 0.3]
        assert env.fakes["alpha"].calls("/v1/embeddings")
        await client.close()


async def test_openai_paths_never_reach_an_anthropic_provider(tmp_path: Path) -> None:
    async with proxy_env(tmp_path, (FakeLLM("claude"), {"apiFormat": "anthropic"})) as env:
        client = sdk(env)
        with pytest.raises(openai.APIStatusError) as raised:
            await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}])
        assert raised.value.status_code == 503
        body = raised.value.body
        assert isinstance(body, dict)
        assert body["code"] == "no_provider_available"
        assert "lacks wire:openai" in str(body["details"]["candidates"])
        assert env.fakes["claude"].seen == []
        await client.close()


async def test_a_large_answer_is_relayed_whole(tmp_path: Path) -> None:
    async with proxy_env(tmp_path, (FakeLLM("alpha"), {})) as env:
        client = sdk(env)
        inputs = [f"text {i}" for i in range(40_000)]  # an answer of about 3 MB
        embedded = await client.embeddings.create(model="embed-fake", input=inputs)
        assert len(embedded.data) == len(inputs)
        assert embedded.data[-1].index == len(inputs) - 1
        state = env.table.provider("default", "alpha")
        assert state.tokens.total(env.table.clock()) == 3 * len(inputs)
        await client.close()


async def test_metrics_count_attempts_tokens_and_time_to_first_token(tmp_path: Path) -> None:
    async with proxy_env(tmp_path, (FakeLLM("alpha"), {})) as env:
        client = sdk(env)
        await client.chat.completions.create(model="m", messages=[{"role": "user",
                                                                   "content": "hi"}])
        stream = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=True)
        _ = [chunk async for chunk in stream]
        await client.close()
        async with env.http() as http:
            text = (await http.get("/metrics")).text
        labels = 'namespace="default",outcome="success",policy="main",provider="alpha"'
        assert f"provider_router_proxy_requests_total{{{labels}}} 2.0" in text
        assert f"provider_router_proxy_request_duration_seconds_count{{{labels}}} 2.0" in text
        who = 'namespace="default",policy="main",provider="alpha"'
        assert f"provider_router_proxy_time_to_first_token_seconds_count{{{who}}} 2.0" in text
        assert (f'provider_router_proxy_tokens_total{{kind="input",{who}}} '
                f"{2.0 * PROMPT_TOKENS}") in text
        assert f"provider_router_proxy_streams_in_flight{{{who}}} 0.0" in text


async def test_the_first_chunk_arrives_before_the_provider_has_finished(tmp_path: Path) -> None:
    fake = FakeLLM("alpha", chunk_delay=0.3)
    async with proxy_env(tmp_path, (fake, {})) as env:
        client = sdk(env)
        stream = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=True)
        first = await stream.__anext__()
        assert first.choices[0].delta.content == "Hello"
        assert fake.finished == 0, "the stream was buffered until the provider finished"
        rest = [chunk async for chunk in stream]
        assert len(rest) == 5
        await client.close()
