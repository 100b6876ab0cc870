"""A proxied stream's time to first token reaches the engine, and streamed calls rank by it."""

from __future__ import annotations

from pathlib import Path

from provider_router.engine import Outcome, OutcomeKind
from proxy.conftest import proxy_env
from support.fake_llm import FakeLLM

CHAT = {"model": "gpt-fake", "messages": [{"role": "user", "content": "hi"}]}


async def test_a_stream_reports_its_time_to_first_token(tmp_path: Path) -> None:
    # Chunks 0.1 s apart: the stream's first chunk comes well before its end.
    async with proxy_env(tmp_path, (FakeLLM("alpha", chunk_delay=0.1), {}),
                         policy={"strategy": "Latency"}) as env:
        state = env.table.provider("default", "alpha")
        async with env.http() as http:
            streamed = await http.post("/v1/chat/completions", json={**CHAT, "stream": True})
            assert streamed.status_code == 200
            assert "[DONE]" in streamed.text
            ttft, latency = state.reported_ttft_ms, state.reported_latency_ms
            assert ttft is not None
            assert latency is not None
            # The first chunk came at once; the whole took 0.1 s for each later chunk.
            assert 0 <= ttft < latency
            plain = await http.post("/v1/chat/completions", json=CHAT)
            assert plain.status_code == 200
        assert state.reported_ttft_ms == ttft, "a whole answer has no first token"
        assert dict(state.outcomes) == {"success": 2}


async def test_streamed_calls_go_to_the_provider_that_starts_first(tmp_path: Path) -> None:
    async with proxy_env(tmp_path, (FakeLLM("quick"), {"avgLatencyMs": 100}),
                         (FakeLLM("slowstart"), {"avgLatencyMs": 200}),
                         policy={"strategy": "Latency"}) as env:
        # "quick" answers whole sooner, but its streams have been slow to start.
        env.table.report(Outcome(OutcomeKind.SUCCESS, provider="quick", namespace="default",
                                 latency_ms=100, ttft_ms=5000))
        async with env.http() as http:
            plain = await http.post("/v1/chat/completions", json=CHAT)
            streamed = await http.post("/v1/chat/completions", json={**CHAT, "stream": True})
        assert plain.headers["x-router-provider"] == "default/quick"
        assert streamed.headers["x-router-provider"] == "default/slowstart"
