"""One probe against real loopback servers: each way a provider can answer (or not) must map to
the reason operators see in status, metrics and route explanations."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from aiohttp import web

from provider_router.api import LLMProviderSpec
from provider_router.health import probe

StartApp = Callable[[web.Application], Awaitable[str]]
StartRaw = Callable[[Any], Awaitable[str]]


def spec(base_url: str, **extra: object) -> LLMProviderSpec:
    return LLMProviderSpec.model_validate({"baseURL": base_url, **extra})


def app_answering(status: int, delay: float = 0.0) -> web.Application:
    async def handler(request: web.Request) -> web.Response:
        if delay:
            await asyncio.sleep(delay)
        return web.json_response({"data": []}, status=status)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    return app


async def test_200_is_healthy(start_app: StartApp) -> None:
    url = await start_app(app_answering(200))
    async with httpx.AsyncClient() as client:
        result = await probe(client, spec(url))
    assert result.ok
    assert result.reason == "ProbeSucceeded"
    assert result.latency_ms is not None
    assert result.latency_ms >= 0
    assert result.message == f"HTTP 200 from {url}/v1/models"


async def test_probe_path_follows_api_format(start_app: StartApp) -> None:
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.json_response({})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    url = await start_app(app)
    async with httpx.AsyncClient() as client:
        await probe(client, spec(url, apiFormat="ollama"))
        await probe(client, spec(url + "/v1"))
        await probe(client, spec(url, healthCheck={"path": "/healthz"}))
    assert seen == ["/api/tags", "/v1/models", "/healthz"]


async def test_401_is_unauthorized(start_app: StartApp) -> None:
    url = await start_app(app_answering(401))
    async with httpx.AsyncClient() as client:
        result = await probe(client, spec(url), "sk-wrong")
    assert not result.ok
    assert result.unauthorized
    assert result.reason == "Unauthorized"
    assert "sk-wrong" not in result.message


async def test_503_is_a_server_error(start_app: StartApp) -> None:
    url = await start_app(app_answering(503))
    async with httpx.AsyncClient() as client:
        result = await probe(client, spec(url))
    assert not result.ok
    assert not result.unauthorized
    assert (result.reason, result.message) == ("ServerError", f"HTTP 503 from {url}/v1/models")


async def test_404_is_unexpected(start_app: StartApp) -> None:
    url = await start_app(app_answering(404))
    async with httpx.AsyncClient() as client:
        result = await probe(client, spec(url))
    assert not result.ok
    assert result.reason == "UnexpectedStatus"


async def test_429_means_up_but_throttled(start_app: StartApp) -> None:
    url = await start_app(app_answering(429))
    async with httpx.AsyncClient() as client:
        result = await probe(client, spec(url))
    assert result.ok
    assert result.reason == "RateLimited"


async def test_slow_answer_times_out(start_app: StartApp) -> None:
    url = await start_app(app_answering(200, delay=3.0))
    async with httpx.AsyncClient() as client:
        result = await probe(client, spec(url, healthCheck={"timeoutSeconds": 1}))
    assert not result.ok
    assert result.reason == "Timeout"
    assert result.message == f"no answer from {url}/v1/models within 1s"


async def test_connection_closed_mid_response(start_raw: StartRaw) -> None:
    async def half_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n{\"data\": [")
        await writer.drain()
        writer.close()

    url = await start_raw(half_answer)
    async with httpx.AsyncClient() as client:
        result = await probe(client, spec(url))
    assert not result.ok
    assert result.reason == "ConnectionReset"
    assert result.message.startswith(f"{url}/v1/models broke the connection")


async def test_connection_reset_before_answer(start_raw: StartRaw) -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        sock = writer.get_extra_info("socket")
        # SO_LINGER with a zero timeout turns close() into a TCP RST.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    url = await start_raw(reset)
    async with httpx.AsyncClient() as client:
        result = await probe(client, spec(url))
    assert not result.ok
    assert result.reason == "ConnectionReset"


async def test_refused_port(refused_url: str) -> None:
    async with httpx.AsyncClient() as client:
        result = await probe(client, spec(refused_url))
    assert not result.ok
    assert result.reason == "ConnectionRefused"
    assert result.latency_ms is None
    assert result.message.startswith(f"cannot connect to {refused_url}/v1/models")
