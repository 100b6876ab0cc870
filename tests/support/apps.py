"""Local aiohttp apps as stand-ins for providers: started on 127.0.0.1, port 0, and cleaned up
by the fixture that started them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from aiohttp import web

StartApp = Callable[[web.Application], Awaitable[str]]
"""``await start(app)``: serve ``app`` on loopback; its base URL."""


@asynccontextmanager
async def app_starter() -> AsyncIterator[StartApp]:
    """A ``StartApp`` whose apps all stop when the block ends."""
    runners: list[web.AppRunner] = []

    async def start(app: web.Application) -> str:
        runner = web.AppRunner(app, shutdown_timeout=0.2, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}"

    try:
        yield start
    finally:
        for runner in runners:
            await runner.cleanup()
