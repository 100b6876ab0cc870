"""What providers say about themselves reaches routing through proxied answers: a stated
"no requests left" moves the next call elsewhere before the provider answers 429, and
``GET /v1/models`` lists the models a provider was found to serve."""

from __future__ import annotations

from pathlib import Path

from proxy.conftest import proxy_env
from support.fake_llm import FakeLLM

CHAT = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}


async def test_a_stated_zero_remaining_moves_the_next_call_to_the_fallback(
        tmp_path: Path) -> None:
    spent = FakeLLM("alpha", answer_headers={"x-ratelimit-remaining-requests": "0",
                                             "x-ratelimit-reset-requests": "30s"})
    async with proxy_env(tmp_path, (spent, {}), (FakeLLM("beta"), {})) as env:
        async with env.http() as http:
            first = await http.post("/v1/chat/completions", json=CHAT)
            second = await http.post("/v1/chat/completions", json=CHAT)
        assert first.status_code == second.status_code == 200
        assert first.headers["x-router-provider"] == "default/alpha"
        assert second.headers["x-router-provider"] == "default/beta"
        reasons = env.table.provider_availability("default", "alpha").reasons
        assert reasons == ["ProviderRequestsExhausted"]


async def test_models_lists_what_a_provider_without_a_model_list_discovered(
        tmp_path: Path) -> None:
    async with proxy_env(tmp_path, (FakeLLM("alpha"), {})) as env:
        env.table.record_models("default", "alpha", ("found-1", "found-2"))
        async with env.http() as http:
            listing = await http.get("/v1/models")
        assert listing.status_code == 200
        assert [m["id"] for m in listing.json()["data"]] == ["found-1", "found-2"]
