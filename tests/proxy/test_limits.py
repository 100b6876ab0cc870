"""Body limits: proxied prompts may be larger than route requests, up to their own limit;
errors are in the shape of the path's SDK, and bad input is never a 500."""

from __future__ import annotations

from pathlib import Path

import orjson

from proxy.conftest import proxy_env
from support.fake_llm import FakeLLM


def chat_of(size: int) -> bytes:
    return orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "x" * size}]})


async def test_a_proxied_body_may_exceed_the_route_api_limit_but_not_its_own(
        tmp_path: Path) -> None:
    async with proxy_env(tmp_path, (FakeLLM("alpha"), {})) as env:
        async with env.http() as http:
            headers = {"content-type": "application/json"}
            big = await http.post("/v1/chat/completions", content=chat_of(2 << 20),
                                  headers=headers)
            assert big.status_code == 200
            prefixed = await http.post("/proxy/default/main/v1/chat/completions",
                                       content=chat_of(2 << 20), headers=headers)
            assert prefixed.status_code == 200
            route = await http.post("/v1/route", content=chat_of(2 << 20), headers=headers)
            assert route.status_code == 413
        async with env.http() as http:
            huge = await http.post("/v1/chat/completions", content=chat_of(5 << 20),
                                   headers=headers)
        assert huge.status_code == 413
        assert huge.json()["error"]["details"]["limit"] == 4 << 20


async def test_router_errors_on_openai_paths_have_the_openai_shape(tmp_path: Path) -> None:
    async with proxy_env(tmp_path, (FakeLLM("alpha"), {})) as env:
        async with env.http() as http:
            unknown = await http.post("/proxy/default/nope/v1/chat/completions",
                                      json={"model": "m"})
            bad = await http.post("/v1/chat/completions", content=b"{not json")
            wrong = await http.get("/proxy/default/main/v1/chat/completions")
            nowhere = await http.post("/proxy/default/main/v2/chat", json={})
        assert unknown.status_code == 404
        assert unknown.json()["error"]["type"] == "not_found_error"
        assert unknown.json()["error"]["code"] == "unknown_policy"
        assert bad.status_code == 400
        assert bad.json()["error"]["type"] == "invalid_request_error"
        assert bad.json()["error"]["param"] == "body"
        assert wrong.status_code == 405
        assert nowhere.status_code == 404
        assert env.fakes["alpha"].seen == []
