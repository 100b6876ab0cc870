"""LLM servers shaped like vLLM and Ollama, for the tests of load scraping, rate-limit headers
and discovered models.

``FakeVllm`` serves ``/metrics`` in the Prometheus text format as a vLLM server exports it
(HELP and TYPE lines, per-model labels, counters and histograms around the gauges that matter),
under either KV-cache gauge name vLLM has used; ``FakeOllama`` serves ``/api/ps`` and
``/api/tags``. Both list their models on the probe path, and ``FakeVllm`` answers chat
completions with whatever rate-limit headers a test sets.
"""

from __future__ import annotations

from aiohttp import web

MODEL = "meta-llama/Llama-3.1-8B-Instruct"


def vllm_metrics(running: float, waiting: float, kv: float, kv_name: str,
                 model: str = MODEL) -> str:
    """A vLLM ``/metrics`` page, in shape copied from a real export."""
    labels = f'engine="0",model_name="{model}"'
    return f"""# HELP python_gc_objects_collected_total Objects collected during gc
# TYPE python_gc_objects_collected_total counter
python_gc_objects_collected_total{{generation="0"}} 12403.0
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{{{labels}}} {running}
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{{{labels}}} {waiting}
# HELP {kv_name} KV-cache usage. 1 means 100 percent usage.
# TYPE {kv_name} gauge
{kv_name}{{{labels}}} {kv}
# HELP vllm:prompt_tokens_total Number of prefill tokens processed.
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{{{labels}}} 48213.0
# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{{{labels},le="0.01"}} 3.0
vllm:time_to_first_token_seconds_bucket{{{labels},le="0.1"}} 41.0
vllm:time_to_first_token_seconds_bucket{{{labels},le="+Inf"}} 57.0
vllm:time_to_first_token_seconds_count{{{labels}}} 57.0
vllm:time_to_first_token_seconds_sum{{{labels}}} 3.92
"""


class LoopbackServer:
    """An aiohttp app that serves itself on loopback, in whichever loop starts it."""

    app: web.Application
    _runner: web.AppRunner | None = None

    async def start(self) -> str:
        """Serve on 127.0.0.1, port 0, in the running loop; returns the base URL."""
        self._runner = web.AppRunner(self.app, shutdown_timeout=0.2, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        return f"http://{host}:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class FakeVllm(LoopbackServer):
    """A vLLM-shaped server whose load figures a test sets."""

    def __init__(self, running: float = 0, waiting: float = 0, kv: float = 0.1,
                 kv_name: str = "vllm:kv_cache_usage_perc", models: tuple[str, ...] = (MODEL,)
                 ) -> None:
        self.running, self.waiting, self.kv, self.kv_name = running, waiting, kv, kv_name
        self.models = models
        self.failing = False
        self.rate_headers: dict[str, str] = {}
        self.scrapes = 0
        self.auth: list[str | None] = []
        self.app = web.Application()
        self.app.router.add_get("/metrics", self.metrics)
        self.app.router.add_get("/v1/models", self.list_models)
        self.app.router.add_post("/v1/chat/completions", self.chat)

    async def metrics(self, request: web.Request) -> web.Response:
        self.scrapes += 1
        self.auth.append(request.headers.get("Authorization"))
        if self.failing:
            return web.Response(status=503, text="down")
        return web.Response(text=vllm_metrics(self.running, self.waiting, self.kv,
                                              self.kv_name),
                            content_type="text/plain", charset="utf-8")

    async def list_models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [
            {"id": m, "object": "model", "owned_by": "vllm"} for m in self.models]})

    async def chat(self, request: web.Request) -> web.Response:
        status = 429 if self.rate_headers.get("x-ratelimit-remaining-requests") == "0" else 200
        body = ({"error": {"message": "Rate limit reached", "type": "requests"}}
                if status == 429 else
                {"id": "chatcmpl-1", "object": "chat.completion", "created": 0,
                 "model": self.models[0], "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "hi"}}],
                 "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}})
        return web.json_response(body, status=status, headers=self.rate_headers)


class FakeOllama(LoopbackServer):
    """An Ollama-shaped server: ``/api/tags`` lists models, ``/api/ps`` the loaded ones."""

    def __init__(self, tags: tuple[str, ...], loaded: tuple[str, ...]) -> None:
        self.tags, self.loaded = tags, loaded
        self.app = web.Application()
        self.app.router.add_get("/api/tags", self.list_tags)
        self.app.router.add_get("/api/ps", self.ps)

    async def list_tags(self, request: web.Request) -> web.Response:
        return web.json_response({"models": [
            {"name": t, "model": t, "size": 4_661_224_676, "digest": "a80c4f17acd5"}
            for t in self.tags]})

    async def ps(self, request: web.Request) -> web.Response:
        return web.json_response({"models": [
            {"name": t, "model": t, "size": 5_137_025_024, "size_vram": 5_137_025_024,
             "expires_at": "2026-12-01T12:34:56.000000000Z"} for t in self.loaded]})

