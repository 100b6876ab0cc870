"""The upstream client against real loopback servers that answer well, badly or not at all."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from provider_router.upstream import (
    HIGH_WATER,
    MAX_HEAD_BYTES,
    Client,
    ClosedEarly,
    ConnectError,
    ConnectTimeout,
    InvalidRequest,
    ProtocolError,
    parse_url,
)
from upstream.conftest import Scripted, answer, keep_answering

pytestmark = pytest.mark.timeout(60)
HEADERS = [(b"content-type", b"application/json"), (b"authorization", b"Bearer sk-test")]


@contextlib.asynccontextmanager
async def client(**options: float) -> AsyncIterator[Client]:
    made = Client(**{"connect_seconds": 2.0, **options})  # type: ignore[arg-type]
    try:
        yield made
    finally:
        await asyncio.wait_for(made.close(), 5)


async def call(c: Client, base: str, body: bytes = b"{}") -> tuple[int, bytes]:
    response = await asyncio.wait_for(
        c.request(b"POST", parse_url(base + "/v1/chat/completions"), HEADERS, body), 10)
    data = await asyncio.wait_for(response.read(1 << 24), 10)
    response.release()
    return response.status, data


async def test_keep_alive_connection_is_reused_and_request_is_sent_as_built(scripted) -> None:
    async with scripted(keep_answering) as server, client() as c:
        for _ in range(3):
            assert await call(c, server.base, b'{"model":"m"}') == (200, b'{"ok":true}')
        assert server.connections == 1
        head = server.heads[0]
        assert head.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
        assert f"host: 127.0.0.1:{server.port}\r\n".encode() in head
        assert b"authorization: Bearer sk-test\r\n" in head
        assert b"content-length: 13\r\n" in head


async def test_chunked_body_arrives_piece_by_piece_before_it_ends(scripted) -> None:
    go_on = asyncio.Event()

    async def handler(reader, writer, state: Scripted) -> None:
        await state.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                     b"transfer-encoding: chunked\r\n\r\n6\r\nfirst\n\r\n")
        await writer.drain()
        await asyncio.wait_for(go_on.wait(), 10)
        writer.write(b"5\r\nlast\n\r\n0\r\n\r\n")
        await writer.drain()
        await state.read_request(reader)

    async with scripted(handler) as server, client() as c:
        response = await c.request(b"POST", parse_url(server.base + "/s"), HEADERS, b"{}")
        assert response.content_type == "text/event-stream"
        assert await asyncio.wait_for(response.read_chunk(), 5) == b"first\n"
        go_on.set()
        assert await asyncio.wait_for(response.read_chunk(), 5) == b"last\n"
        assert await asyncio.wait_for(response.read_chunk(), 5) == b""
        response.release()
        assert c.idle_count == 1


async def test_body_without_length_ends_with_the_connection(scripted) -> None:
    async def handler(reader, writer, state: Scripted) -> None:
        await state.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the end")
        await writer.drain()
        writer.close()

    async with scripted(handler) as server, client() as c:
        assert await call(c, server.base) == (200, b"until the end")
        assert c.idle_count == 0  # the provider closed it: never pooled


async def test_body_cut_short_fails_and_connection_is_not_pooled(scripted) -> None:
    async def handler(reader, writer, state: Scripted) -> None:
        await state.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly ten b")
        await writer.drain()
        writer.close()

    async with scripted(handler) as server, client() as c:
        response = await c.request(b"POST", parse_url(server.base + "/x"), HEADERS, b"{}")
        with pytest.raises(ClosedEarly, match="during its answer"):
            await asyncio.wait_for(response.read(1 << 20), 5)
        response.release()
        assert c.idle_count == 0


async def test_closed_without_answer_on_a_fresh_connection_is_not_resent(scripted) -> None:
    async def handler(reader, writer, state: Scripted) -> None:
        await state.read_request(reader)  # read it, then hang up without a word

    async with scripted(handler) as server, client() as c:
        with pytest.raises(ClosedEarly, match="without an answer"):
            await call(c, server.base)
        assert len(server.heads) == 1


async def test_reused_connection_lost_without_answer_is_resent_once_on_a_new_one(
        scripted) -> None:
    async def handler(reader, writer, state: Scripted) -> None:
        if state.connections == 1:
            await state.read_request(reader)
            writer.write(answer())
            await writer.drain()
            await state.read_request(reader)  # the second request: hang up, as at an idle
            return                            # timeout racing the request
        await keep_answering(reader, writer, state)

    async with scripted(handler) as server, client() as c:
        assert (await call(c, server.base))[0] == 200
        assert (await call(c, server.base))[0] == 200
        assert server.connections == 2
        assert len(server.heads) == 3  # once, lost; once more, answered


async def test_reused_connection_lost_after_answer_bytes_is_not_resent(scripted) -> None:
    async def handler(reader, writer, state: Scripted) -> None:
        await state.read_request(reader)
        writer.write(answer())
        await state.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-le")  # started answering, then died

    async with scripted(handler) as server, client() as c:
        await call(c, server.base)
        with pytest.raises(ClosedEarly):
            await call(c, server.base)
        assert len(server.heads) == 2


async def test_provider_closing_an_idle_connection_is_noticed_before_reuse(scripted) -> None:
    async def handler(reader, writer, state: Scripted) -> None:
        await state.read_request(reader)
        writer.write(answer())
        await writer.drain()  # keep-alive answer, then close while idle

    async with scripted(handler) as server, client() as c:
        await call(c, server.base)
        await asyncio.sleep(0.2)
        assert c.idle_count == 0  # seen closing, dropped
        assert (await call(c, server.base))[0] == 200
        assert server.connections == 2
        assert len(server.heads) == 2  # no request was lost on the closed connection


async def test_idle_connections_are_closed_after_the_keepalive_time(scripted) -> None:
    async with scripted(keep_answering) as server, client(keepalive_seconds=0.2) as c:
        await call(c, server.base)
        await asyncio.wait_for(server.closed.wait(), 5)
        await asyncio.sleep(0.05)
        assert c.idle_count == 0


async def test_bytes_sent_while_idle_make_the_connection_untrusted(scripted) -> None:
    async def handler(reader, writer, state: Scripted) -> None:
        if state.connections == 1:
            await state.read_request(reader)
            writer.write(answer() + b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            await writer.drain()
            await state.read_request(reader)
            return
        await keep_answering(reader, writer, state)

    async with scripted(handler) as server, client() as c:
        await call(c, server.base)
        await asyncio.sleep(0.2)
        assert (await call(c, server.base)) == (200, b'{"ok":true}')
        assert server.connections == 2


@pytest.mark.parametrize("reply", [
    b"HTTP/1.1 banana\r\n\r\n",
    b"NOT HTTP AT ALL\r\n\r\n",
    b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 7\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nhello\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n",
])
async def test_broken_answers_are_protocol_errors(scripted, reply: bytes) -> None:
    async def handler(reader, writer, state: Scripted) -> None:
        await state.read_request(reader)
        writer.write(reply)
        await writer.drain()
        await asyncio.sleep(5)

    async with scripted(handler) as server, client() as c:
        with pytest.raises((ProtocolError, ClosedEarly)):
            await call(c, server.base)
        assert c.idle_count == 0


async def test_an_endless_head_is_refused_past_the_limit(scripted) -> None:
    async def handler(reader, writer, state: Scripted) -> None:
        await state.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n")
        line = b"x-filler: " + b"a" * 1000 + b"\r\n"
        with contextlib.suppress(ConnectionError):
            for _ in range(MAX_HEAD_BYTES // len(line) * 4):
                writer.write(line)
                await writer.drain()

    async with scripted(handler) as server, client() as c:
        with pytest.raises(ProtocolError, match="head is larger"):
            await call(c, server.base)


async def test_informational_answers_are_skipped(scripted) -> None:
    async def handler(reader, writer, state: Scripted) -> None:
        await state.read_request(reader)
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n" + answer(b"after", b"201 Created"))
        await writer.drain()
        await state.read_request(reader)

    async with scripted(handler) as server, client() as c:
        assert await call(c, server.base) == (201, b"after")


@pytest.mark.parametrize("header", [
    (b"x-evil", b"v\r\nx-injected: 1"), (b"x-evil", b"v\nx-injected: 1"),
    (b"x-evil", b"v\rx"), (b"x-evil\r\nx-injected", b"1"), (b"x-evil", b"nul\0byte"),
])
async def test_header_injection_is_refused_and_nothing_is_sent(scripted, header) -> None:
    async with scripted(keep_answering) as server, client() as c:
        with pytest.raises(InvalidRequest):
            await c.request(b"POST", parse_url(server.base + "/x"), [header], b"{}")
        assert server.connections == 0


async def test_refused_connection_is_a_connect_error() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        async with client() as c:
            with pytest.raises(ConnectError, match="cannot connect"):
                await call(c, f"http://127.0.0.1:{port}")


async def test_slow_connect_is_a_connect_timeout_and_a_timeout(monkeypatch) -> None:
    loop = asyncio.get_running_loop()

    async def never(*_args: object, **_kwargs: object) -> object:
        await asyncio.sleep(30)
        raise AssertionError("unreachable")

    # The one fake here: a connect that never completes cannot be made on loopback alone.
    monkeypatch.setattr(loop, "create_connection", never)
    async with client(connect_seconds=0.2) as c:
        with pytest.raises(ConnectTimeout) as caught:
            await call(c, "http://127.0.0.1:9")
        assert isinstance(caught.value, TimeoutError)


async def test_cancelled_request_drops_its_connection(scripted) -> None:
    async def handler(reader, writer, state: Scripted) -> None:
        await state.read_request(reader)
        await state.read_request(reader)  # returns None when the client hangs up

    async with scripted(handler) as server, client() as c:
        task = asyncio.ensure_future(call(c, server.base))
        while not server.heads:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(server.closed.wait(), 5)
        assert c.idle_count == 0


async def test_closed_answer_drops_the_connection_and_provider_sees_it(scripted) -> None:
    async def handler(reader, writer, state: Scripted) -> None:
        await state.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n")
        await writer.drain()
        await state.read_request(reader)

    async with scripted(handler) as server, client() as c:
        response = await c.request(b"POST", parse_url(server.base + "/x"), HEADERS, b"{}")
        assert await response.read_chunk() == b"hello"
        response.close()
        await asyncio.wait_for(server.closed.wait(), 5)
        assert c.idle_count == 0


async def test_slow_reader_holds_the_provider_back_with_bounded_buffering(scripted) -> None:
    total = 16 << 20
    piece = b"x" * (64 << 10)

    async def handler(reader, writer, state: Scripted) -> None:
        await state.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % total)
        for _ in range(total // len(piece)):
            writer.write(piece)
            await writer.drain()
        await state.read_request(reader)

    async with scripted(handler) as server, client() as c:
        response = await c.request(b"POST", parse_url(server.base + "/big"), HEADERS, b"{}")
        connection = response._connection
        received = 0
        most = 0
        while True:
            chunk = await asyncio.wait_for(response.read_chunk(), 10)
            if not chunk:
                break
            received += len(chunk)
            most = max(most, connection._buffered)
            await asyncio.sleep(0.001)  # a slow consumer
        response.release()
        assert received == total
        # Reading pauses past the high-water mark; at most one socket read lands on top.
        assert most <= HIGH_WATER + (1 << 20), most


def test_urls_are_parsed_once_with_what_the_request_line_needs() -> None:
    url = parse_url("https://api.example.com/v1/chat/completions?api-version=2024")
    assert (url.origin.scheme, url.origin.host, url.origin.port) == ("https", "api.example.com",
                                                                      443)
    assert url.target == b"/v1/chat/completions?api-version=2024"
    assert url.host_header == b"api.example.com"
    assert parse_url("http://[::1]:8080/a b").host_header == b"[::1]:8080"
    assert parse_url("http://[::1]:8080/a b").target == b"/a%20b"
    assert parse_url("http://h/p").with_query(b"x=1").target == b"/p?x=1"
    assert parse_url("http://h/p?a=1").with_query(b"x=1").target == b"/p?a=1&x=1"
    for bad in ("ftp://h/", "http:///nohost", "http://user:pw@h/", "http://h:99999/"):
        with pytest.raises(InvalidRequest):
            parse_url(bad)
    with pytest.raises(InvalidRequest):
        parse_url("http://h/p").with_query(b"a=1 HTTP/1.1\r\nx: y")
