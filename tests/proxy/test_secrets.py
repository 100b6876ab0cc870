"""A provider's key reaches that provider and nothing else: no answer, log line or metric."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from proxy.conftest import free_port, proxy_env
from standalone.test_secret_leaks import record_text
from support.fake_llm import FakeLLM

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


async def test_keys_appear_only_at_their_own_provider(tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    down = f"http://127.0.0.1:{free_port()}"
    seen: list[str] = []
    async with proxy_env(tmp_path, (FakeLLM("limited", behaviour="status", status=429,
                                            retry_after="1"), {}),
                         (down, {}),
                         (FakeLLM("broken", behaviour="break"), {}),
                         (FakeLLM("good"), {}),
                         (FakeLLM("claude"), {"apiFormat": "anthropic"})) as env:
        async with env.http() as http:
            calls = [("POST", "/v1/chat/completions", {**CHAT, "stream": True}),
                     ("POST", "/v1/chat/completions", CHAT),
                     ("POST", "/v1/completions", {"model": "m", "prompt": "x"}),
                     ("POST", "/v1/embeddings", {"model": "m", "input": "x"}),
                     ("POST", "/v1/messages", {"model": "c", "max_tokens": 5,
                                               "messages": CHAT["messages"]}),
                     ("POST", "/v1/messages", {"model": "c", "max_tokens": 5, "stream": True,
                                               "messages": CHAT["messages"]}),
                     ("GET", "/v1/models", None),
                     ("POST", "/proxy/default/nope/v1/chat/completions", CHAT),
                     ("POST", "/v1/chat/completions", {"model": 5}),
                     ("GET", "/v1/providers", None), ("GET", "/v1/policies", None),
                     ("GET", "/metrics", None)]
            for method, path, body in calls:
                response = await http.request(method, path, json=body,
                                              headers={"authorization": "Bearer caller"})
                seen.append(f"{path} {response.status_code} {response.headers} "
                            f"{response.text}")
        fakes = env.fakes
        assert fakes["limited"].seen, "the 429 provider was tried"
        for name, key in env.keys.items():
            for text in seen:
                assert key not in text, f"{name}'s key in an answer"
            for record in caplog.records:
                assert key not in record_text(record), f"{name}'s key in a log record"
            for other, fake in fakes.items():
                found = any(key in repr(s.headers) for s in fake.seen)
                assert found == (other == name and bool(fake.seen)), (name, other)
