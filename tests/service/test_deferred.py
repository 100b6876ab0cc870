"""Answers that wait: handlers returning awaitables, their order behind pipelining, their
cancellation when the client leaves, and request headers reaching handlers.

These are what the proxy and access checks build on, so they are proven here on the bare
server with handlers mounted for the test.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from provider_router.engine import RoutingTable
from provider_router.service import Request, Response, Server, create_app, json_response

from .conftest import FakeClock


async def _read_answers(reader: asyncio.StreamReader, count: int) -> list[bytes]:
    """``count`` whole answers (content-length framed) from ``reader``."""
    answers = []
    for _ in range(count):
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        answers.append(head + await asyncio.wait_for(reader.readexactly(length), timeout=10))
    return answers


@pytest.fixture
async def server() -> Server:
    app = create_app(RoutingTable(clock=FakeClock()))
    app.cancelled = []  # type: ignore[attr-defined]

    async def slow(request: Request) -> Response:
        try:
            await asyncio.sleep(float(request.query.decode() or "0.2"))
        except asyncio.CancelledError:
            app.cancelled.append(request.path)  # type: ignore[attr-defined]
            raise
        return json_response({"slow": True})

    def echo(request: Request) -> Response:
        return json_response({"headers": {k.decode(): v.decode()
                                          for k, v in request.headers.items()}})

    async def failing(request: Request) -> Response:
        raise RuntimeError("boom")

    app.add_route("/test/slow", "GET", slow)
    app.add_route("/test/echo", "GET", echo)
    app.add_route("/test/fail", "GET", failing)
    async with Server(app) as running:
        yield running


async def test_a_deferred_answer_keeps_its_place_behind_pipelining(server: Server) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(b"GET /test/slow?0.3 HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"GET /test/slow?0.05 HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        answers = await _read_answers(reader, 4)
    finally:
        writer.close()
    assert [b'"slow"' in a for a in answers] == [True, False, True, False]
    assert all(a.startswith(b"HTTP/1.1 200") for a in answers)


async def test_a_client_that_leaves_cancels_the_work_done_for_it(server: Server) -> None:
    _reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /test/slow?30 HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(0.1)
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
    app = server.app
    for _ in range(100):
        if app.cancelled:  # type: ignore[attr-defined]
            break
        await asyncio.sleep(0.05)
    assert app.cancelled == ["/test/slow"]  # type: ignore[attr-defined]


async def test_a_failing_deferred_answer_is_a_500_and_the_connection_goes_on(
        server: Server) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(b"GET /test/fail HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        failed, healthy = await _read_answers(reader, 2)
    finally:
        writer.close()
    assert failed.startswith(b"HTTP/1.1 500")
    assert b"internal_error" in failed
    assert healthy.startswith(b"HTTP/1.1 200")


async def test_handlers_see_lower_cased_headers_with_repeats_joined(server: Server) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(b"GET /test/echo HTTP/1.1\r\nHost: x\r\nX-Thing: a\r\n"
                     b"AUTHORIZATION: Bearer t\r\nx-thing: b\r\n\r\n")
        (answer,) = await _read_answers(reader, 1)
    finally:
        writer.close()
    assert b'"x-thing":"a, b"' in answer
    assert b'"authorization":"Bearer t"' in answer


async def test_a_prefix_serves_every_path_under_it(server: Server) -> None:
    calls: list[str] = []

    def under(request: Request) -> Response:
        calls.append(request.path)
        return json_response({"ok": True})

    server.app.add_prefix("/test/tree/", under)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(b"GET /test/tree/a/b HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"GET /test/treetop HTTP/1.1\r\nHost: x\r\n\r\n")
        inside, outside = await _read_answers(reader, 2)
    finally:
        writer.close()
    assert inside.startswith(b"HTTP/1.1 200")
    assert outside.startswith(b"HTTP/1.1 404")
    assert calls == ["/test/tree/a/b"]
