"""Scripted HTTP servers on loopback for the upstream client's tests.

``scripted(handler)`` starts a real asyncio TCP server on a free port whose every connection
runs ``handler(reader, writer)``: a test writes exactly the bytes a provider would (valid,
broken, slow or rude) and the client is held to what it does with them. The server counts
its connections and records each request head it reads with ``read_request``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "Scripted"], Awaitable[None]]


@dataclass
class Scripted:
    port: int = 0
    connections: int = 0
    heads: list[bytes] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    """Set whenever a client closes a connection (EOF seen while reading)."""

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def read_request(self, reader: asyncio.StreamReader) -> bytes | None:
        """One request's head and body (by its content-length); None at EOF."""
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        except (asyncio.IncompleteReadError, ConnectionError):
            self.closed.set()
            return None
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await asyncio.wait_for(reader.readexactly(length), 10)
        self.heads.append(head)
        return head + body


@contextlib.asynccontextmanager
async def _serve(handler: Handler) -> AsyncIterator[Scripted]:
    state = Scripted()
    tasks: set[asyncio.Task[None]] = set()

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer, state)
        except (ConnectionError, asyncio.IncompleteReadError):
            state.closed.set()
        finally:
            tasks.discard(task)
            writer.close()

    server = await asyncio.start_server(on_connection, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), 5)


@pytest.fixture
def scripted() -> Callable[[Handler], contextlib.AbstractAsyncContextManager[Scripted]]:
    return _serve


def answer(body: bytes = b'{"ok":true}', status: bytes = b"200 OK",
           extra: bytes = b"") -> bytes:
    return (b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\ncontent-length: "
            + str(len(body)).encode() + b"\r\n" + extra + b"\r\n" + body)


async def keep_answering(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         state: Scripted) -> None:
    """A well-behaved keep-alive server: every request gets ``answer()``."""
    while await state.read_request(reader) is not None:
        writer.write(answer())
        await writer.drain()
