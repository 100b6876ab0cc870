"""Serving the route API inside an event loop that someone else owns.

The operator runs in Kopf's loop and standalone mode in the CLI's, so a server must neither
create a loop nor install signal handlers (that would steal Ctrl-C from Kopf): it lives in the
running loop and stops when asked or cancelled. The listening socket is bound here, so that
port 0 works, the chosen port is known before the first request, and a port in use raises
``OSError``.

The protocol is ``_native``'s httptools server, chosen by measurement (``bench/route_service.py``):
it answers inline without an ASGI server's per-request task and messages, and it enforces the
limits the route API promises (an ASGI backend used to be offered too, enforced none of them,
and was removed).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
from collections.abc import Callable
from types import TracebackType

from provider_router.service._app import RouteService
from provider_router.service._native import (
    MAX_CONNECTIONS,
    REQUEST_TIMEOUT_SECONDS,
    ConnectionSet,
    start_native,
    stop_native,
)

log = logging.getLogger(__name__)

DEFAULT_BACKLOG = 2048
GRACEFUL_SECONDS = 5.0


def tune_gc(young_threshold: int = 10_000) -> None:
    """Make CPython's cyclic garbage collector cheap for a long-running router process.

    Call once, after start-up has loaded the routing table. With a table of a thousand
    providers a full collection walks every object of it and stalls the loop for tens of
    milliseconds, which is most of ``/v1/route``'s p99; young collections every 700
    allocations cost a fifth of its throughput. ``gc.freeze()`` takes everything alive at
    start-up out of future collections (it is reclaimed by reference counting as usual), and a
    larger young generation makes collections rarer. It changes the whole process, so it is
    the entry point's call (standalone mode, the operator), never the server's.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(max(young_threshold, 700), middle, old)


async def bind_socket(host: str, port: int, backlog: int = DEFAULT_BACKLOG) -> socket.socket:
    """A listening, non-blocking TCP socket on ``host:port`` (port 0: any free port)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    if not infos:
        raise OSError(f"cannot resolve {host!r}")
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class Server:
    """A running route API: ``await start()``, read ``port``, ``await stop()``.

    Also an async context manager. ``stop`` is graceful: it stops accepting, lets requests in
    progress finish (up to ``graceful_seconds``), then closes keep-alive connections.
    """

    def __init__(self, app: RouteService, host: str = "127.0.0.1", port: int = 0, *,
                 backlog: int = DEFAULT_BACKLOG,
                 graceful_seconds: float = GRACEFUL_SECONDS,
                 max_connections: int = MAX_CONNECTIONS,
                 request_timeout: float = REQUEST_TIMEOUT_SECONDS) -> None:
        if not isinstance(app, RouteService):
            raise TypeError(f"Server serves a RouteService, not {type(app).__name__}")
        self.app = app
        self.host = host
        self._port = port
        self.backlog = backlog
        self.graceful_seconds = graceful_seconds
        self.max_connections = max_connections
        """Connections beyond this are answered 503 and closed."""
        self.request_timeout = request_timeout
        """Seconds a request may take to arrive whole, from its first byte, before a 408."""
        self._native: tuple[asyncio.base_events.Server, ConnectionSet] | None = None
        self._stopped: asyncio.Event | None = None

    @property
    def port(self) -> int:
        """The bound port: the real one once started, even if 0 was asked for."""
        return self._port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._port}"

    @property
    def running(self) -> bool:
        return self._stopped is not None and not self._stopped.is_set()

    async def start(self) -> None:
        if self._stopped is not None:
            raise RuntimeError("the server was already started")
        sock = await bind_socket(self.host, self._port, self.backlog)
        self._port = sock.getsockname()[1]
        try:
            self._native = await start_native(self.app, sock, self.backlog,
                                              self.max_connections, self.request_timeout)
        except BaseException:
            sock.close()
            raise
        self._stopped = asyncio.Event()
        log.info("route API listening on %s", self.url)

    async def wait(self) -> None:
        """Until the server stops (``stop`` from elsewhere)."""
        if self._stopped is not None:
            await self._stopped.wait()

    async def stop(self) -> None:
        if self._native is None:
            return
        native, self._native = self._native, None
        try:
            await stop_native(*native, self.graceful_seconds)
        finally:
            if self._stopped is not None:
                self._stopped.set()

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        await self.stop()


async def serve(app: RouteService, host: str = "127.0.0.1", port: int = 8080, *,
                ready: asyncio.Event | None = None,
                on_bound: Callable[[int], None] | None = None) -> None:
    """Serve ``app`` in the running loop until cancelled, then shut down gracefully.

    ``ready`` is set once the socket accepts connections; ``on_bound`` learns the port (the
    one chosen when ``port`` is 0) just before.
    """
    server = Server(app, host, port)
    await server.start()
    try:
        if on_bound is not None:
            on_bound(server.port)
        if ready is not None:
            ready.set()
        await server.wait()
    finally:
        await server.stop()
