"""A real local HTTP server that plays an LLM provider, for proxy tests and benchmarks.

It speaks enough of OpenAI's API (chat and text completions, embeddings, models) and of
Anthropic's ``/v1/messages`` for the official SDKs to parse its answers, streamed or not,
and it records every request it gets (headers and body), so tests can check what reached the
provider. ``behaviour`` switches it to failing in the ways failover must handle: refusing
with a status (503, 429 with ``Retry-After``), hanging, breaking a stream after its first
event, or streaming without end (for back-pressure and disconnect tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

CHUNK_WORDS = ("Hello", " from", " the", " fake", " provider", ".")
PROMPT_TOKENS = 11
COMPLETION_TOKENS = len(CHUNK_WORDS)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeLLM:
    """One fake provider. ``behaviour`` is one of: ``ok``, ``status`` (answer ``status``
    with ``retry_after``), ``hang`` (never answer), ``break`` (a stream that dies after its
    first event), ``endless`` (a stream that never ends, written as fast as it is read)."""

    name: str = "fake"
    behaviour: str = "ok"
    status: int = 503
    retry_after: str | None = None
    chunk_delay: float = 0.0
    answer_delay: float = 0.0
    """Seconds before a non-streamed answer."""
    endless_chunk: int = 64 << 10
    answer_headers: dict[str, str] = field(default_factory=dict)
    """Sent with every non-streamed completion (rate-limit statements, say)."""
    seen: list[Seen] = field(default_factory=list)
    finished: int = 0
    """Streams written to their end."""
    written: int = 0
    """Bytes of stream body written (for ``endless``)."""
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when a client (the router) went away in the middle of a stream."""
    url: str = ""
    _runner: web.AppRunner | None = None

    async def start(self) -> FakeLLM:
        app = web.Application(client_max_size=16 << 20)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # Handlers are cancelled when the router hangs up, as a real provider stops working
        # for a client that left; and a stop does not wait for a hanging handler.
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True,
                                     shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def calls(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = raw
        self.seen.append(Seen(request.method, request.path, dict(request.headers), body))
        if request.path.endswith("/models") and request.method == "GET":
            return web.json_response({"object": "list", "data": [
                {"id": "fake-model", "object": "model", "created": 0, "owned_by": self.name}]})
        if self.behaviour == "status":
            headers = {"Retry-After": self.retry_after} if self.retry_after else {}
            return web.json_response({"error": {"message": f"{self.name} says {self.status}",
                                                "type": "server_error", "code": None}},
                                     status=self.status, headers=headers)
        if self.behaviour == "hang":
            await asyncio.sleep(3600)
        body = body if isinstance(body, dict) else {}
        anthropic = request.path.endswith("/messages")
        if body.get("stream"):
            return await self._stream(request, body, anthropic)
        if self.answer_delay:
            await asyncio.sleep(self.answer_delay)
        if anthropic:
            return web.json_response(_message(body, self.name))
        if request.path.endswith("/embeddings"):
            inputs = body.get("input")
            count = len(inputs) if isinstance(inputs, list) else 1
            return web.json_response({"object": "list", "model": body.get("model"), "data": [
                {"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]}
                for i in range(count)], "usage": {"prompt_tokens": 3 * count,
                                                  "total_tokens": 3 * count}})
        return web.json_response(_completion(body, self.name), headers=self.answer_headers)

    async def _stream(self, request: web.Request, body: dict[str, Any],
                      anthropic: bool) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-cache"})
        await response.prepare(request)
        events = _anthropic_events(body) if anthropic else _openai_events(body, self.name)
        try:
            if self.behaviour == "endless":
                filler = b"data: " + orjson.dumps({
                    "id": "x", "object": "chat.completion.chunk", "choices": [],
                    "pad": "x" * self.endless_chunk}) + b"\n\n"
                while True:
                    await response.write(filler)
                    self.written += len(filler)
                    if self.chunk_delay:
                        await asyncio.sleep(self.chunk_delay)
            async for index, event in _enumerate(events):
                await response.write(event)
                if self.behaviour == "stall" and index == 0:
                    await asyncio.sleep(3600)  # the stream started, then nothing more
                if self.behaviour == "break" and index == 0:
                    await asyncio.sleep(0.05)
                    transport = request.transport
                    if transport is not None:
                        transport.abort()
                    return response
                if self.chunk_delay:
                    await asyncio.sleep(self.chunk_delay)
            await response.write_eof()
            self.finished += 1
        except (ConnectionResetError, ConnectionError, asyncio.CancelledError):
            self.disconnected.set()
            raise
        return response


async def _enumerate(events: list[bytes]) -> AsyncIterator[tuple[int, bytes]]:
    for index, event in enumerate(events):
        yield index, event


def _completion(body: dict[str, Any], name: str) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model") or "fake-model", "system_fingerprint": name,
            "choices": [{"index": 0, "finish_reason": "stop", "message": {
                "role": "assistant", "content": "".join(CHUNK_WORDS)}}],
            "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
                      "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS}}


def _openai_events(body: dict[str, Any], name: str) -> list[bytes]:
    usage = bool((body.get("stream_options") or {}).get("include_usage"))
    model = body.get("model") or "fake-model"
    out = []
    for index, word in enumerate(CHUNK_WORDS):
        chunk: dict[str, Any] = {
            "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0,
            "model": model, "system_fingerprint": name, "choices": [{
                "index": 0, "delta": {"content": word} if index else {
                    "role": "assistant", "content": word},
                "finish_reason": "stop" if index == len(CHUNK_WORDS) - 1 else None}]}
        if usage:
            chunk["usage"] = None
        out.append(b"data: " + orjson.dumps(chunk) + b"\n\n")
    if usage:
        out.append(b"data: " + orjson.dumps({
            "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0,
            "model": model, "choices": [], "usage": {
                "prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
                "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS}}) + b"\n\n")
    out.append(b"data: [DONE]\n\n")
    return out


def _message(body: dict[str, Any], name: str) -> dict[str, Any]:
    return {"id": "msg_1", "type": "message", "role": "assistant",
            "model": body.get("model") or "claude-fake", "stop_reason": "end_turn",
            "stop_sequence": None, "content": [{"type": "text", "text": "".join(CHUNK_WORDS)}],
            "usage": {"input_tokens": PROMPT_TOKENS, "output_tokens": COMPLETION_TOKENS}}


def _anthropic_events(body: dict[str, Any]) -> list[bytes]:
    def event(kind: str, data: dict[str, Any]) -> bytes:
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

    model = body.get("model") or "claude-fake"
    out = [event("message_start", {"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": PROMPT_TOKENS, "output_tokens": 1}}}),
        event("content_block_start", {"type": "content_block_start", "index": 0,
                                      "content_block": {"type": "text", "text": ""}})]
    for word in CHUNK_WORDS:
        out.append(event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                 "delta": {"type": "text_delta", "text": word}}))
    out += [event("content_block_stop", {"type": "content_block_stop", "index": 0}),
            event("message_delta", {"type": "message_delta", "delta": {
                "stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": COMPLETION_TOKENS}}),
            event("message_stop", {"type": "message_stop"})]
    return out


@contextlib.asynccontextmanager
async def fake_providers(*fakes: FakeLLM) -> AsyncIterator[tuple[FakeLLM, ...]]:
    started: list[FakeLLM] = []
    try:
        for fake in fakes:
            started.append(await fake.start())
        yield fakes
    finally:
        for fake in started:
            await fake.stop()
