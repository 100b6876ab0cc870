"""A client that sends one header line that never ends: the attack the route server's raw head
count defends against. Shared by its test and its benchmark."""

from __future__ import annotations

import asyncio
import contextlib

CHUNK = 64 << 10


async def flood_one(port: int, size: int, host: str = "127.0.0.1") -> bytes:
    """Send a request head whose one header line grows to ``size`` bytes without ending;
    return what the server answered (empty if it answered nothing before closing)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Flood: ")
        sent = 0
        filler = b"a" * CHUNK
        with contextlib.suppress(ConnectionError):
            while sent < size:
                writer.write(filler)
                await writer.drain()
                sent += CHUNK
        return await asyncio.wait_for(reader.read(65536), timeout=10)
    except ConnectionError:
        return b""
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def flood(port: int, connections: int, size: int) -> list[bytes]:
    """``flood_one`` on ``connections`` connections at once."""
    return list(await asyncio.gather(*(flood_one(port, size) for _ in range(connections))))
