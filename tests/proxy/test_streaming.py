"""Streams under a misbehaving client: one that leaves, one that reads slowly, one that stops
reading."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import orjson

from proxy.conftest import FAST, ProxyEnv, proxy_env
from support.fake_llm import FakeLLM

BOUND_BYTES = 32 << 20
"""What a stalled stream may leave written by the provider: socket and stream buffers on the
way, orders of magnitude below what an unbounded relay would have taken in by then."""


async def open_stream(env: ProxyEnv, rcvbuf: int | None = None
                      ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    parts = urlsplit(env.url)
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await asyncio.wait_for(asyncio.get_running_loop().sock_connect(
        sock, (parts.hostname, parts.port)), 5)
    reader, writer = await asyncio.open_connection(sock=sock)
    body = orjson.dumps({"model": "m", "stream": True,
                         "messages": [{"role": "user", "content": "hi"}]})
    writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nhost: router\r\n"
                 b"content-type: application/json\r\ncontent-length: "
                 + str(len(body)).encode() + b"\r\n\r\n" + body)
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 200"), head[:200]
    assert b"transfer-encoding: chunked" in head
    return reader, writer


async def until_stalled(fake: FakeLLM, timeout: float = 15.0) -> int:
    """Wait until the provider's written count stops growing; fail if it passes the bound."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last, still_since = -1, loop.time()
    while loop.time() < deadline:
        assert fake.written < BOUND_BYTES * 8, f"unbounded: {fake.written} bytes written"
        if fake.written != last:
            last, still_since = fake.written, loop.time()
        elif loop.time() - still_since > 0.5:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"the provider never stalled ({fake.written} bytes written)")


async def assert_stream_let_go(env: ProxyEnv, why: str) -> None:
    """After a stream's client is gone: its lease released, the call counted as the
    provider's success (``why`` is not the provider's fault), no stream left in flight."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while env.table.in_flight_leases() and loop.time() < deadline:
        await asyncio.sleep(0.05)
    assert env.table.in_flight_leases() == 0, f"{why}: the stream kept its lease"
    state = env.table.provider("default", "alpha")
    assert state.outcomes == {"success": 1}, f"{why} is not the provider's fault"
    streams = env.router.proxy.metrics.streams  # type: ignore[union-attr]
    assert streams.labels("default", "main", "alpha")._value.get() == 0


async def test_a_client_that_leaves_cancels_the_upstream_call(tmp_path: Path) -> None:
    fake = FakeLLM("alpha", behaviour="endless", chunk_delay=0.01, endless_chunk=64)
    async with proxy_env(tmp_path, (fake, {})) as env:
        reader, writer = await open_stream(env)
        await asyncio.wait_for(reader.read(100), 5)
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        await asyncio.wait_for(fake.disconnected.wait(), 10)
        await assert_stream_let_go(env, "a client leaving")


async def test_a_slow_client_holds_the_provider_back(tmp_path: Path) -> None:
    fake = FakeLLM("alpha", behaviour="endless", endless_chunk=64 << 10)
    async with proxy_env(tmp_path, (fake, {})) as env:
        reader, writer = await open_stream(env, rcvbuf=16 << 10)
        await asyncio.wait_for(reader.read(1024), 5)  # then read nothing more
        stalled = await until_stalled(fake)
        assert stalled < BOUND_BYTES
        # The stream is held, not dropped: reading again lets the provider go on.
        got = 0
        while got < stalled // 2 + (1 << 20):
            got += len(await asyncio.wait_for(reader.read(1 << 20), 5))
        assert fake.written > stalled
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        await asyncio.wait_for(fake.disconnected.wait(), 10)


async def test_answers_pipelined_behind_a_stream_wait_for_its_end(tmp_path: Path) -> None:
    async with proxy_env(tmp_path, (FakeLLM("alpha", chunk_delay=0.02), {})) as env:
        reader, writer = await open_stream(env)
        writer.write(b"GET /healthz HTTP/1.1\r\nhost: router\r\n\r\n")
        await writer.drain()
        data = b""
        while b"\r\n0\r\n\r\n" not in data:
            chunk = await asyncio.wait_for(reader.read(65536), 5)
            assert chunk, "closed early"
            data += chunk
        body, _, rest = data.partition(b"\r\n0\r\n\r\n")
        assert b"[DONE]" in body
        assert b"HTTP/1.1" not in body, "an answer was written inside the stream"
        while b'"ok"' not in rest:
            rest += await asyncio.wait_for(reader.read(65536), 5)
        assert rest.startswith(b"HTTP/1.1 200")
        writer.close()


async def test_an_http_1_0_client_gets_the_stream_unchunked_then_a_close(
        tmp_path: Path) -> None:
    async with proxy_env(tmp_path, (FakeLLM("alpha"), {})) as env:
        parts = urlsplit(env.url)
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(parts.hostname, parts.port), 5)
        body = orjson.dumps({"model": "m", "stream": True, "messages": []})
        writer.write(b"POST /v1/chat/completions HTTP/1.0\r\ncontent-type: application/json"
                     b"\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 10)  # until the router closes
        head, _, rest = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        assert b"transfer-encoding" not in head
        assert b"connection: close" in head
        assert rest.startswith(b"data: {")
        assert rest.endswith(b"data: [DONE]\n\n")
        writer.close()


async def test_a_stream_ready_behind_a_slow_answer_is_released_when_the_client_leaves(
        tmp_path: Path) -> None:
    fake = FakeLLM("alpha", answer_delay=2.0, chunk_delay=0.05)
    async with proxy_env(tmp_path, (fake, {})) as env:
        parts = urlsplit(env.url)
        _reader, writer = await asyncio.wait_for(
            asyncio.open_connection(parts.hostname, parts.port), 5)
        for stream in (False, True):  # a slow answer, and a stream pipelined behind it
            body = orjson.dumps({"model": "m", "stream": stream, "messages": []})
            writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nhost: r\r\ncontent-length: "
                         + str(len(body)).encode() + b"\r\n\r\n" + body)
        await writer.drain()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while len(fake.seen) < 2 and loop.time() < deadline:
            await asyncio.sleep(0.02)
        assert len(fake.seen) == 2, "both requests reached the provider"
        await asyncio.sleep(0.2)  # the stream's first event is in: its answer is ready
        assert env.table.in_flight_leases() == 2
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        deadline = loop.time() + 5
        while env.table.in_flight_leases() and loop.time() < deadline:
            await asyncio.sleep(0.05)
        assert env.table.in_flight_leases() == 0, "a lease outlived its client"
        streams = env.router.proxy.metrics.streams  # type: ignore[union-attr]
        assert streams.labels("default", "main", "alpha")._value.get() == 0
        await asyncio.wait_for(fake.disconnected.wait(), 10)


def stalled_drops(env: ProxyEnv) -> float:
    value = env.router.runtime.metrics.registry.get_sample_value(
        "provider_router_stalled_streams_total")
    assert value is not None, "the stalled-stream counter is not exported"
    return value


async def until_closed(reader: asyncio.StreamReader, timeout: float) -> int:
    """Read (and drop) what the router sent until it ends the connection; the bytes read.
    Fails if the connection is still open after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    got = 0
    while True:
        left = deadline - loop.time()
        assert left > 0, f"the router kept the connection open ({got} bytes read)"
        try:
            chunk = await asyncio.wait_for(reader.read(1 << 20), left)
        except ConnectionError:
            return got
        except TimeoutError:
            raise AssertionError(f"the router kept the connection open ({got} bytes read)"
                                 ) from None
        if not chunk:
            return got
        got += len(chunk)


async def test_a_client_that_stops_reading_is_dropped_after_the_stall_bound(
        tmp_path: Path) -> None:
    fake = FakeLLM("alpha", behaviour="endless", endless_chunk=64 << 10)
    options = replace(FAST, stall_seconds=1.0)
    async with proxy_env(tmp_path, (fake, {}), options=options) as env:
        native = env.router.server._native
        assert native is not None
        assert native[1].idle_timeout > 60, "the idle timeout must not be what drops it"
        assert stalled_drops(env) == 0
        reader, writer = await open_stream(env, rcvbuf=16 << 10)
        try:
            await asyncio.wait_for(reader.read(1024), 5)  # then nothing more
            # The upstream call is closed well before the idle timeout (75 s) could do it.
            await asyncio.wait_for(fake.disconnected.wait(), 20)
            assert fake.written < BOUND_BYTES, f"unbounded: {fake.written} bytes written"
            assert stalled_drops(env) == 1
            await assert_stream_let_go(env, "a stalled client")
            # The client, reading again, finds what was buffered and then a broken-off
            # connection.
            received = await until_closed(reader, 10)
            assert received < BOUND_BYTES
        finally:
            writer.close()


async def test_a_slow_steady_reader_is_never_dropped(tmp_path: Path) -> None:
    fake = FakeLLM("alpha", behaviour="endless", endless_chunk=4 << 10)
    options = replace(FAST, stall_seconds=2.0)
    async with proxy_env(tmp_path, (fake, {}), options=options) as env:
        reader, writer = await open_stream(env, rcvbuf=16 << 10)
        try:
            loop = asyncio.get_running_loop()
            received = 0
            until = loop.time() + 3 * options.stall_seconds
            while loop.time() < until:
                # About 200 KiB/s: far slower than the provider writes, so the stream is
                # held back (paused) nearly all the time, and one drain of the router's
                # buffer may take longer than the bound; but the client never stops.
                chunk = await asyncio.wait_for(reader.read(4096), 5)
                assert chunk, f"the router dropped a steady reader after {received} bytes"
                received += len(chunk)
                await asyncio.sleep(0.02)
            assert not fake.disconnected.is_set(), "the upstream call was closed"
            assert stalled_drops(env) == 0
            # Held back, not buffered: what the provider wrote is what was read plus what
            # sits in bounded buffers on the way.
            assert fake.written < received + BOUND_BYTES
            assert env.table.in_flight_leases() == 1
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        await asyncio.wait_for(fake.disconnected.wait(), 10)
