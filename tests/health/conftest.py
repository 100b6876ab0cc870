"""Real HTTP servers on loopback for probe tests: aiohttp apps and raw asyncio sockets.

Probes are judged on what real sockets do (a refused port, a peer that hangs up mid-answer),
which mocks of httpx cannot reproduce faithfully. The prober's waiting, on the other hand, runs
on ``VirtualTime``: its loops ask for naps that the test grants by advancing the clock, so
intervals are checked as numbers and no test waits for a real interval to pass.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from provider_router.health import Sleep
from support.apps import StartApp, app_starter

StartRaw = Callable[[Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]],
                    Awaitable[str]]


class VirtualTime:
    """A clock for ``Prober(sleep=...)``: each sleep parks until ``advance`` passes its end."""

    def __init__(self) -> None:
        self.now = 0.0
        self.naps: list[float] = []
        """Every duration asked for, in order."""
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    @property
    def sleep(self) -> Sleep:
        return self._sleep

    async def _sleep(self, seconds: float) -> None:
        self.naps.append(seconds)
        woken = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.now + seconds, woken))
        await woken

    def advance(self, seconds: float) -> None:
        """Move the clock on and wake every sleeper whose nap has ended."""
        self.now += seconds
        waiting = []
        for end, woken in self._sleepers:
            if end <= self.now:
                if not woken.done():
                    woken.set_result(None)
            else:
                waiting.append((end, woken))
        self._sleepers = waiting

    @property
    def sleeping(self) -> int:
        """How many naps are still pending (a cancelled loop's nap does not count)."""
        return sum(not woken.done() for _, woken in self._sleepers)


@pytest.fixture
def virtual_time() -> VirtualTime:
    return VirtualTime()


@pytest.fixture
async def start_app() -> AsyncIterator[StartApp]:
    """Start an aiohttp app on 127.0.0.1, port 0; returns its base URL."""
    async with app_starter() as start:
        yield start


@pytest.fixture
async def start_raw() -> AsyncIterator[StartRaw]:
    """Start a raw asyncio TCP server (for misbehaving peers); returns its base URL."""
    servers: list[asyncio.Server] = []

    async def start(handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter],
                                      Awaitable[None]]) -> str:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


@pytest.fixture
def refused_url() -> str:
    """A loopback port that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
