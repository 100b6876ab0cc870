"""A mock LLM provider on loopback: OpenAI-compatible, with Ollama's model list.

The demo starts one per LLMProvider so a newcomer can watch routing and failover with no real
back-end, and the tests use it as a real HTTP provider that records every request it gets
(headers included, to prove where credentials go) and can be told to fail (``fail(503)``,
``fail(429, retry_after=30)``) or to answer slowly (``latency``). It is a runtime module, not a
test helper, because ``provider-router demo`` ships it.

Serves ``GET /v1/models``, ``GET /api/tags``, ``POST /v1/chat/completions`` (with a ``usage``
block) and ``POST /v1/embeddings``, plus ``/admin/fail``, ``/admin/recover`` and
``/admin/state`` for switching it from outside the process (curl).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

from aiohttp import web


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""


@dataclass
class MockProvider:
    """An OpenAI-compatible (and Ollama-ish) mock LLM server on loopback.

    Admin endpoints: ``POST /admin/fail`` (``?status=503`` by default; ``?status=429&
    retryAfter=30`` for rate limiting), ``POST /admin/recover``, ``GET /admin/state``.
    While failing, every non-admin request gets the failure status.
    """

    name: str
    models: list[str] = field(default_factory=lambda: ["mock-model"])
    host: str = "127.0.0.1"
    port: int = 0
    api_key: str | None = None
    """When set, non-admin requests without ``Bearer <api_key>`` (or ``x-api-key``) get 401."""
    latency: float = 0.0
    fail_status: int | None = None
    retry_after: float | None = None
    requests: list[RecordedRequest] = field(default_factory=list)
    in_flight: int = 0
    """Requests being answered now; ``max_in_flight``: the most at once (for load tests)."""
    max_in_flight: int = 0
    _runner: web.AppRunner | None = field(default=None, repr=False)
    _completions: int = field(default=0, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/admin/fail", self._fail)
        app.router.add_post("/admin/recover", self._recover)
        app.router.add_get("/admin/state", self._state)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    def fail(self, status: int = 503, retry_after: float | None = None) -> None:
        self.fail_status, self.retry_after = status, retry_after

    def recover(self) -> None:
        self.fail_status, self.retry_after = None, None

    def authorizations(self) -> list[str]:
        """Every credential header value received, in order."""
        return [v for r in self.requests for k, v in r.headers.items()
                if k.lower() in ("authorization", "x-api-key")]

    async def _fail(self, request: web.Request) -> web.Response:
        try:
            status = int(request.query.get("status", "503"))
            retry = request.query.get("retryAfter") or request.query.get("retry_after")
            self.fail(status, float(retry) if retry else None)
        except ValueError:
            return web.json_response({"error": "status and retryAfter must be numbers"},
                                     status=400)
        return web.json_response({"name": self.name, "failing": True, "status": status})

    async def _recover(self, request: web.Request) -> web.Response:
        self.recover()
        return web.json_response({"name": self.name, "failing": False})

    async def _state(self, request: web.Request) -> web.Response:
        return web.json_response({"name": self.name, "failStatus": self.fail_status,
                                  "requests": len(self.requests),
                                  "completions": self._completions})

    def _authorized(self, request: web.Request) -> bool:
        if self.api_key is None:
            return True
        return (request.headers.get("authorization") == f"Bearer {self.api_key}"
                or request.headers.get("x-api-key") == self.api_key)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(RecordedRequest(request.method, request.path,
                                             dict(request.headers), body))
        if self.latency:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                await asyncio.sleep(self.latency)
            finally:
                self.in_flight -= 1
        if self.fail_status is not None:
            headers = ({"Retry-After": f"{self.retry_after:g}"}
                       if self.retry_after is not None else {})
            return web.json_response({"error": {"message": f"{self.name} is failing (mock)",
                                                "type": "mock_failure"}},
                                     status=self.fail_status, headers=headers)
        if not self._authorized(request):
            return web.json_response({"error": {"message": "invalid api key",
                                                "type": "invalid_request_error"}}, status=401)
        path = request.path.rstrip("/")
        if request.method == "GET" and path.endswith("/models"):
            return web.json_response({"object": "list", "data": [
                {"id": m, "object": "model", "created": 0, "owned_by": self.name}
                for m in self.models]})
        if request.method == "GET" and path == "/api/tags":
            return web.json_response({"models": [{"name": m, "model": m} for m in self.models]})
        if request.method == "POST" and path.endswith("/chat/completions"):
            return self._completion(body)
        if request.method == "POST" and path.endswith("/embeddings"):
            return web.json_response({"object": "list", "model": self.models[0], "data": [
                {"object": "embedding", "index": 0, "embedding": [0.0, 0.1, 0.2]}],
                "usage": {"prompt_tokens": 3, "total_tokens": 3}})
        return web.json_response({"error": {"message": f"no route {request.path}"}},
                                 status=404)

    def _completion(self, body: bytes) -> web.Response:
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            return web.json_response({"error": {"message": "body is not JSON"}}, status=400)
        if not isinstance(payload, dict):
            payload = {}
        messages = payload.get("messages") or []
        prompt = " ".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))
        answer = f"Hello from {self.name} (a mock provider of the provider-router demo)."
        prompt_tokens = max(1, len(prompt) // 4)
        completion_tokens = max(1, len(answer) // 4)
        self._completions += 1
        return web.json_response({
            "id": f"chatcmpl-{self.name}-{self._completions}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": payload.get("model") or self.models[0],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": answer}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        })


__all__ = ["MockProvider", "RecordedRequest"]
