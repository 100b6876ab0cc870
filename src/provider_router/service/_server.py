"""Serving the route API inside an event loop that someone else owns.

The operator runs in Kopf's loop and standalone mode in the CLI's, so a server must neither
create a loop nor install signal handlers (that would steal Ctrl-C from Kopf): it lives in the
running loop and stops when asked or cancelled. The listening socket is bound here, so that
port 0 works, the chosen port is known before the first request, and a port in use raises
``OSError`` (not uvicorn's ``sys.exit``).

Two backends, chosen by measurement (``bench/route_service.py``):

- ``native`` (the default for a ``RouteService``): the httptools protocol of ``_native``, which
  answers inline without ASGI's per-request task and messages;
- ``uvicorn`` (httptools, no lifespan, no proxy-header or access-log middleware): for any other
  ASGI app, or to run the service on a stock ASGI server.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, Literal

import uvicorn

from provider_router.service._app import RouteService
from provider_router.service._native import (
    MAX_CONNECTIONS,
    REQUEST_TIMEOUT_SECONDS,
    ConnectionSet,
    start_native,
    stop_native,
)

Backend = Literal["auto", "native", "uvicorn"]

log = logging.getLogger(__name__)

DEFAULT_BACKLOG = 2048
GRACEFUL_SECONDS = 5.0


class _Uvicorn(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The host process (Kopf, the CLI) owns the signals and cancels or stops us.
        yield


def uvicorn_config(app: Any, *, backlog: int = DEFAULT_BACKLOG,
                   graceful_seconds: float = GRACEFUL_SECONDS,
                   max_connections: int | None = None) -> Any:
    """The uvicorn settings the service runs with (the benchmark's bare server shares them)."""
    return uvicorn.Config(
        app, loop="none", http="httptools", ws="none", lifespan="off", interface="asgi3",
        access_log=False, log_config=None, proxy_headers=False, server_header=False,
        backlog=backlog, timeout_graceful_shutdown=int(graceful_seconds),
        limit_concurrency=max_connections)


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
    ``backend="auto"`` serves a ``RouteService`` natively and anything else with uvicorn.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, *,
                 backend: Backend = "auto", backlog: int = DEFAULT_BACKLOG,
                 graceful_seconds: float = GRACEFUL_SECONDS,
                 max_connections: int = MAX_CONNECTIONS,
                 request_timeout: float = REQUEST_TIMEOUT_SECONDS) -> None:
        if backend == "auto":
            backend = "native" if isinstance(app, RouteService) else "uvicorn"
        if backend == "native" and not isinstance(app, RouteService):
            raise TypeError("the native backend serves a RouteService; use backend='uvicorn'")
        self.app = app
        self.host = host
        self.backend = backend
        self._port = port
        self.backlog = backlog
        self.graceful_seconds = graceful_seconds
        self.max_connections = max_connections
        """Connections beyond this are answered 503 and closed."""
        self.request_timeout = request_timeout
        """Seconds a request may take to arrive whole, from its first byte, before a 408
        (native backend; uvicorn has no such limit)."""
        self._server: _Uvicorn | None = None
        self._task: asyncio.Task[None] | None = None
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
        if self._native is not None:
            return self._stopped is not None and not self._stopped.is_set()
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        if self._task is not None or self._native is not None:
            raise RuntimeError("the server was already started")
        sock = await bind_socket(self.host, self._port, self.backlog)
        self._port = sock.getsockname()[1]
        if self.backend == "native":
            try:
                self._native = await start_native(self.app, sock, self.backlog,
                                                  self.max_connections, self.request_timeout)
            except BaseException:
                sock.close()
                raise
            self._stopped = asyncio.Event()
            log.info("route API listening on %s", self.url)
            return
        server = _Uvicorn(uvicorn_config(self.app, backlog=self.backlog,
                                         graceful_seconds=self.graceful_seconds,
                                         max_connections=self.max_connections))
        self._server = server
        self._task = asyncio.create_task(server.serve(sockets=[sock]),
                                         name=f"route-api:{self._port}")
        try:
            while not server.started:
                if self._task.done():
                    break
                await asyncio.sleep(0.005)
            if self._task.done():
                self._task.result()  # re-raises the startup failure
                raise RuntimeError("the route API server exited during startup")
        except BaseException:
            sock.close()
            await self.stop()
            raise
        log.info("route API listening on %s", self.url)

    async def wait(self) -> None:
        """Until the server stops (``stop`` from elsewhere, or a failure)."""
        if self._stopped is not None:
            await self._stopped.wait()
        elif self._task is not None:
            await asyncio.shield(self._task)

    async def stop(self) -> None:
        if self._native is not None:
            native, self._native = self._native, None
            try:
                await stop_native(*native, self.graceful_seconds)
            finally:
                if self._stopped is not None:
                    self._stopped.set()
            return
        task, server = self._task, self._server
        if task is None or server is None:
            return
        server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=self.graceful_seconds + 2.0)
        except TimeoutError:
            server.force_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(task), timeout=2.0)
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        except Exception:
            log.exception("the route API server failed")

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        await self.stop()


async def serve(app: Any, host: str = "127.0.0.1", port: int = 8080, *,
                ready: asyncio.Event | None = None,
                on_bound: Callable[[int], None] | None = None,
                backend: Backend = "auto") -> None:
    """Serve ``app`` in the running loop until cancelled, then shut down gracefully.

    ``ready`` is set once the socket accepts connections; ``on_bound`` learns the port (the
    one chosen when ``port`` is 0) just before.
    """
    server = Server(app, host, port, backend=backend)
    await server.start()
    try:
        if on_bound is not None:
            on_bound(server.port)
        if ready is not None:
            ready.set()
        await server.wait()
    finally:
        await server.stop()
