"""The official anthropic SDK, pointed at the router, reaches an Anthropic-format provider."""

from __future__ import annotations

from pathlib import Path

import anthropic
import pytest

from proxy.conftest import ProxyEnv, proxy_env
from support.fake_llm import COMPLETION_TOKENS, PROMPT_TOKENS, FakeLLM

CALLER_KEY = "sk-ant-caller-must-not-travel"


def sdk(env: ProxyEnv) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=env.url, api_key=CALLER_KEY, max_retries=0,
                                    timeout=10.0,
                                    http_client=anthropic.DefaultAsyncHttpxClient(
                                        trust_env=False))


async def test_messages_reach_only_the_anthropic_provider_with_its_key(tmp_path: Path) -> None:
    async with proxy_env(tmp_path, (FakeLLM("gpt"), {}),
                         (FakeLLM("claude"), {"apiFormat": "anthropic"})) as env:
        client = sdk(env)
        message = await client.messages.create(
            model="claude-fake", max_tokens=64, messages=[{"role": "user", "content": "hi"}])
        assert message.content[0].text == "Hello from the fake provider."  # type: ignore[union-attr]
        assert env.fakes["gpt"].seen == [], "an OpenAI-format provider got /v1/messages"
        [seen] = env.fakes["claude"].calls("/v1/messages")
        assert seen.headers["x-api-key"] == env.keys["claude"]
        assert seen.headers["anthropic-version"]
        assert CALLER_KEY not in repr(seen.headers)
        assert "Authorization" not in seen.headers
        state = env.table.provider("default", "claude")
        assert state.tokens.total(env.table.clock()) == PROMPT_TOKENS + COMPLETION_TOKENS
        await client.close()


async def test_streamed_messages(tmp_path: Path) -> None:
    async with proxy_env(tmp_path, (FakeLLM("claude"), {"apiFormat": "anthropic"})) as env:
        client = sdk(env)
        async with client.messages.stream(
                model="claude-fake", max_tokens=64,
                messages=[{"role": "user", "content": "hi"}]) as stream:
            text = "".join([piece async for piece in stream.text_stream])
            final = await stream.get_final_message()
        assert text == "Hello from the fake provider."
        assert final.usage.output_tokens == COMPLETION_TOKENS
        state = env.table.provider("default", "claude")
        assert state.tokens.total(env.table.clock()) == PROMPT_TOKENS + COMPLETION_TOKENS
        await client.close()


async def test_errors_on_the_messages_path_are_in_anthropic_shape(tmp_path: Path) -> None:
    async with proxy_env(tmp_path, (FakeLLM("gpt"), {})) as env:
        client = sdk(env)
        with pytest.raises(anthropic.APIStatusError) as raised:
            await client.messages.create(model="claude-fake", max_tokens=8,
                                         messages=[{"role": "user", "content": "hi"}])
        error = raised.value
        assert error.status_code == 503
        assert isinstance(error.body, dict)
        assert error.body["type"] == "error"
        assert error.body["error"]["type"] == "overloaded_error"
        assert error.body["error"]["code"] == "no_provider_available"
        await client.close()
