"""Running the API inside someone else's event loop, and HTTP/1.1 at the socket level.

The socket-level tests speak raw HTTP to the server, because keep-alive, pipelining, limits and
malformed requests are handled by our own code.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from typing import Any

import httpx
import pytest

from provider_router.engine import RoutingTable
from provider_router.service import Server, create_app, serve
from provider_router.service._native import _LENGTH_LINES, MAX_CACHED_LENGTHS, _length_line

from .conftest import Api, FakeClock


async def _exchange(port: int, payload: bytes, *, until_closed: bool = False,
                    responses: int = 1) -> bytes:
    """Send raw bytes; read until ``responses`` answers arrived or the peer closed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(payload)
        await writer.drain()
        data = b""
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), timeout=5)
            if not chunk:
                break
            data += chunk
            if not until_closed and data.count(b"HTTP/1.1 ") >= responses and \
                    _complete(data, responses):
                break
        return data
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


def _complete(data: bytes, responses: int) -> bool:
    rest = data
    for _ in range(responses):
        head, sep, rest = rest.partition(b"\r\n\r\n")
        if not sep:
            return False
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        if len(rest) < length:
            return False
        rest = rest[length:]
    return True


def _statuses(data: bytes) -> list[int]:
    return [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", data)]


@pytest.fixture
def routable(api: Api) -> Api:
    api.add_provider("a")
    api.add_policy("p", default=True)
    return api


# -- lifecycle ---------------------------------------------------------------------------------


def test_content_length_lines_are_exact_and_their_cache_is_bounded() -> None:
    for size in (0, 1, 99, 100_000, 1 << 40, *range(MAX_CACHED_LENGTHS + 50)):
        line = _LENGTH_LINES.get(size) or _length_line(size)
        assert line == f"content-length: {size}\r\n".encode()
    assert len(_LENGTH_LINES) <= MAX_CACHED_LENGTHS


async def test_port_zero_binds_a_free_port_and_stop_releases_it() -> None:
    app = create_app(RoutingTable(clock=FakeClock()))
    first, second = Server(app), Server(app)
    await first.start()
    await second.start()
    try:
        assert first.port > 0
        assert second.port > 0
        assert first.port != second.port
        assert first.url == f"http://127.0.0.1:{first.port}"
        assert first.running
    finally:
        await first.stop()
        await second.stop()
    assert not first.running
    await first.stop()  # idempotent
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", first.port)


async def test_a_port_in_use_raises_oserror() -> None:
    app = create_app(RoutingTable(clock=FakeClock()))
    async with Server(app) as running:
        with pytest.raises(OSError, match="in use"):
            await Server(app, port=running.port).start()


async def test_serve_runs_until_cancelled_in_the_callers_loop() -> None:
    app = create_app(RoutingTable(clock=FakeClock()))
    ready = asyncio.Event()
    ports: list[int] = []
    task = asyncio.create_task(serve(app, "127.0.0.1", 0, ready=ready, on_bound=ports.append))
    await asyncio.wait_for(ready.wait(), timeout=10)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports[0]}") as client:
        assert (await client.get("/healthz")).status_code == 200
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", ports[0])


async def test_stop_closes_idle_keep_alive_connections() -> None:
    server = Server(create_app(RoutingTable(clock=FakeClock())))
    await server.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
    await asyncio.wait_for(server.stop(), timeout=10)
    await asyncio.wait_for(reader.read(), timeout=5)  # EOF: the server closed it
    writer.close()


async def test_only_a_route_service_is_served() -> None:
    async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise AssertionError("never called")

    with pytest.raises(TypeError, match="RouteService"):
        Server(hello)  # type: ignore[arg-type]


# -- the API over a real socket ------------------------------------------------------------------


async def test_the_api_answers_over_a_socket(any_api: Api) -> None:
    any_api.add_provider("a", maxConcurrent=1)
    any_api.add_policy("p", default=True)
    body = await any_api.route_ok()
    assert body["provider"]["name"] == "a"
    assert (await any_api.route()).status_code == 503
    released = await any_api.report(leaseId=body["leaseId"], outcome="success")
    assert released.json()["leaseReleased"] is True
    bad = await any_api.route(explain="maybe")
    assert bad.json()["error"]["details"]["field"] == "explain"
    assert (await any_api.client.delete("/v1/route")).headers["allow"] == "GET, POST"
    assert (await any_api.client.get("/nowhere")).status_code == 404
    too_big = await any_api.client.post("/v1/report", content=b"x" * (2 << 20))
    assert too_big.status_code == 413
    assert (await any_api.client.get("/healthz")).json() == {"status": "ok"}


# -- HTTP/1.1 --------------------------------------------------------------


async def test_pipelined_requests_are_answered_in_order(routable: Api) -> None:
    data = await _exchange(routable.server.port,
                           b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                           b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
                           b"GET /v1/route?lease=false HTTP/1.1\r\nHost: x\r\n\r\n",
                           responses=3)
    assert _statuses(data) == [200, 404, 200]


async def test_http_1_0_closes_after_the_answer(routable: Api) -> None:
    data = await _exchange(routable.server.port, b"GET /healthz HTTP/1.0\r\n\r\n",
                           until_closed=True)
    assert _statuses(data) == [200]
    assert b"connection: close" in data.lower()


async def test_connection_close_is_honoured(routable: Api) -> None:
    data = await _exchange(routable.server.port,
                           b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                           until_closed=True)
    assert _statuses(data) == [200]


@pytest.mark.parametrize("garbage", [
    b"NOT HTTP AT ALL\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked"
    b"\r\n\r\n0\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nBad Header\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS ClientHello
])
async def test_malformed_requests_get_400_and_a_close(routable: Api, garbage: bytes) -> None:
    data = await _exchange(routable.server.port, garbage, until_closed=True)
    assert _statuses(data) == [400]
    assert b'"code":"malformed_request"' in data


async def test_upgrades_are_refused(routable: Api) -> None:
    data = await _exchange(routable.server.port,
                           b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                           b"Upgrade: websocket\r\n\r\n", until_closed=True)
    assert _statuses(data) == [400]


async def test_oversized_headers_get_431(routable: Api) -> None:
    data = await _exchange(routable.server.port,
                           b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000
                           + b"\r\n\r\n", until_closed=True)
    assert _statuses(data) == [431]


async def test_expect_100_continue_and_chunked_bodies(routable: Api) -> None:
    lease = (await routable.route_ok())["leaseId"]
    body = f'{{"leaseId": "{lease}", "outcome": "success"}}'.encode()
    half = len(body) // 2
    chunked = (f"{half:x}\r\n".encode() + body[:half] + b"\r\n"
               + f"{len(body) - half:x}\r\n".encode() + body[half:] + b"\r\n0\r\n\r\n")
    data = await _exchange(routable.server.port,
                           b"POST /v1/report HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                           b"Transfer-Encoding: chunked\r\n\r\n" + chunked, responses=2)
    assert data.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert _statuses(data) == [100, 200]
    assert b'"leaseReleased":true' in data


async def test_percent_encoded_paths_are_decoded(routable: Api) -> None:
    data = await _exchange(routable.server.port,
                           b"GET /heal%74hz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert _statuses(data) == [200]


async def test_a_client_that_vanishes_mid_request_does_no_harm(routable: Api) -> None:
    with socket.create_connection(("127.0.0.1", routable.server.port)) as raw:
        raw.sendall(b"POST /v1/report HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
    await asyncio.sleep(0.05)
    assert (await routable.client.get("/healthz")).status_code == 200


async def test_head_gets_headers_only_and_the_connection_stays_usable(routable: Api) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", routable.server.port)
    writer.write(b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                 b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
    assert _statuses(head) == [405]
    assert b"allow: GET" in head
    # No body follows the HEAD answer: the next bytes are the GET's answer.
    following = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
    assert following.startswith(b"HTTP/1.1 200 OK")
    writer.close()


async def test_too_many_headers_get_431(routable: Api) -> None:
    headers = b"".join(b"X-H%d: 1\r\n" % i for i in range(101))
    data = await _exchange(routable.server.port,
                           b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n",
                           until_closed=True)
    assert _statuses(data) == [431]
    assert b"more than 100 headers" in data


@pytest.mark.parametrize("smuggled", [
    b"POST /v1/report HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\n",
    b"POST /v1/report HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
    b"POST /v1/report HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
    b"Transfer-Encoding: x\r\n\r\n0\r\n\r\n",
])
async def test_ambiguous_framing_is_refused(routable: Api, smuggled: bytes) -> None:
    data = await _exchange(routable.server.port, smuggled + b"GET /healthz HTTP/1.1\r\n\r\n",
                           until_closed=True)
    assert _statuses(data)[0] == 400
    assert 200 not in _statuses(data)  # the smuggled GET is never answered


async def test_a_request_that_trickles_in_gets_408_and_a_close(
        table: RoutingTable, clock: FakeClock) -> None:
    async with Server(create_app(table), request_timeout=0.3) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # the head never ends
        data = await asyncio.wait_for(reader.read(), timeout=5)
        writer.close()
        assert _statuses(data) == [408]
        assert b'"code":"request_timeout"' in data
        # A connection that answers promptly is not affected, however long it stays open.
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        for _ in range(3):
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
            await reader.readexactly(len(b'{"status":"ok"}'))
            await asyncio.sleep(0.2)
        writer.close()


async def test_connections_beyond_the_limit_get_503(table: RoutingTable) -> None:
    async with Server(create_app(table), max_connections=2) as server:
        held = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(2)]
        await asyncio.sleep(0.05)
        data = await _exchange(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
                               until_closed=True)
        assert _statuses(data) == [503]
        assert b'"code":"too_many_connections"' in data
        for _, writer in held:
            writer.close()
        await asyncio.sleep(0.05)
        answered = await _exchange(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _statuses(answered) == [200]
