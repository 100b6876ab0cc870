"""Fuzzing the client with answers a provider could send, split anywhere.

Valid answers (any status, headers, a body by length, chunked or until close) must come back
exactly as sent; arbitrary bytes must end in an ``UpstreamError`` or a body, never in another
exception or a hang.
"""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provider_router.upstream import Client, UpstreamError, parse_url

pytestmark = pytest.mark.timeout(240)

TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20)
VALUE = st.binary(max_size=40).map(
    lambda raw: bytes(b for b in raw if b >= 0x20 and b != 0x7F).strip())


@st.composite
def valid_answers(draw: st.DrawFn) -> tuple[bytes, int, bytes]:
    status = draw(st.sampled_from([200, 201, 400, 401, 404, 429, 500, 503]))
    body = draw(st.binary(max_size=3000))
    names = draw(st.lists(TOKEN.filter(lambda n: n not in (
        "content-length", "transfer-encoding", "connection")), max_size=8))
    head = b"HTTP/1.1 %d X\r\n" % status
    head += b"".join(n.encode() + b": " + draw(VALUE) + b"\r\n" for n in names)
    framing = draw(st.sampled_from(["length", "chunked", "close"]))
    if framing == "length":
        wire = head + b"content-length: %d\r\n\r\n" % len(body) + body
    elif framing == "chunked":
        cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=5)))
        pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
        wire = head + b"transfer-encoding: chunked\r\n\r\n" + b"".join(
            b"%x\r\n%s\r\n" % (len(p), p) for p in pieces if p) + b"0\r\n\r\n"
    else:
        wire = head + b"connection: close\r\n\r\n" + body
    return wire, status, body


def _splits(data: st.DataObject, wire: bytes) -> list[bytes]:
    cuts = sorted(set(data.draw(st.lists(st.integers(0, len(wire)), max_size=6))))
    return [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)], strict=True)]


async def _exchange(pieces: list[bytes]) -> tuple[int, bytes] | UpstreamError:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n{}")
            for piece in pieces:
                writer.write(piece)
                await writer.drain()
                await asyncio.sleep(0)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    client = Client(connect_seconds=5)
    try:
        url = parse_url(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/x")
        try:
            response = await asyncio.wait_for(client.request(b"POST", url, [], b"{}"), 10)
            body = await asyncio.wait_for(response.read(1 << 20), 10)
            response.release()
        except UpstreamError as error:
            return error
        return response.status, body
    finally:
        await client.close()
        server.close()
        await asyncio.wait_for(server.wait_closed(), 5)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(answer=valid_answers(), data=st.data())
def test_valid_answers_come_back_exactly(answer: tuple[bytes, int, bytes],
                                         data: st.DataObject) -> None:
    wire, status, body = answer
    assert asyncio.run(_exchange(_splits(data, wire))) == (status, body)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prefix=st.sampled_from([b"", b"HTTP/1.1 200 OK\r\n", b"HTTP/1.1 200 OK\r\ncontent-"
                               b"length: 10\r\n\r\n", b"HTTP/1.1 200 OK\r\ntransfer-encoding:"
                               b" chunked\r\n\r\n"]),
       junk=st.binary(max_size=400), data=st.data())
def test_arbitrary_bytes_end_in_an_error_or_a_body(prefix: bytes, junk: bytes,
                                                   data: st.DataObject) -> None:
    result = asyncio.run(_exchange(_splits(data, prefix + junk)))
    assert isinstance(result, UpstreamError) or (
        isinstance(result, tuple) and isinstance(result[1], bytes))
