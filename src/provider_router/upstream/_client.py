"""The pool of keep-alive connections to providers, and the one call the proxy makes.

Why not aiohttp's or httpx's client: measured on the proxy's workload (``bench/
upstream_client.py``: one POST of a chat completion, answered by a fast local server, 16
callers), aiohttp's client costs about 60 µs of CPU per call and httpx's more, while this
client, on the same httptools parser the route server uses, costs a few µs. Per proxied call
that difference is most of what the router spends, so it decides whether the proxy keeps up
with a bare forwarder. It speaks only what the proxy needs: HTTP/1.1 over TCP or TLS, one
request per connection at a time, no redirects, no cookies, no proxies from the environment
(so a provider's credential goes to that provider's host and nowhere else).

Connections are pooled per origin and reused most-recently-idle first, so the pool stays
warm and the rest age out: an idle connection is closed after ``keepalive_seconds``
(shorter than the usual server idle timeouts of 60 to 75 s; servers that close sooner are seen
closing and their connections dropped). A request that a reused connection loses without any
answer (the provider closed it as the request went out) is sent once more on a new
connection, as browsers do: the provider cannot have acted on it.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Iterable
from typing import Final

from provider_router.upstream._connection import Connection
from provider_router.upstream._errors import (
    ClosedEarly,
    ConnectError,
    ConnectTimeout,
    InvalidRequest,
)
from provider_router.upstream._response import Response
from provider_router.upstream._url import Origin, Url

KEEPALIVE_SECONDS: Final = 15.0
MAX_IDLE_PER_ORIGIN: Final = 512
_HTTP11: Final = b" HTTP/1.1\r\nhost: "


class Client:
    """``await client.request(url, headers, body)``; ``await client.close()`` at the end."""

    def __init__(self, *, connect_seconds: float = 5.0,
                 keepalive_seconds: float = KEEPALIVE_SECONDS,
                 max_idle_per_origin: int = MAX_IDLE_PER_ORIGIN,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        if connect_seconds <= 0 or keepalive_seconds <= 0 or max_idle_per_origin < 0:
            raise ValueError("timeouts must be positive and the idle limit not negative")
        self.connect_seconds = connect_seconds
        self.keepalive_seconds = keepalive_seconds
        self.max_idle_per_origin = max_idle_per_origin
        self._ssl = ssl_context
        self._idle: dict[Origin, deque[tuple[Connection, float]]] = {}
        self._busy: set[Connection] = set()
        self._sweeping: asyncio.TimerHandle | None = None
        self._closed = False

    async def request(self, method: bytes, url: Url,
                      headers: Iterable[tuple[bytes, bytes]], body: bytes) -> Response:
        """Send one request and wait for its answer's head. The caller reads the body from
        the ``Response`` and then releases or closes it. Cancellation (the caller's deadline)
        drops the connection."""
        if self._closed:
            raise ConnectError("the client is closed")
        data = _encode(method, url, headers, body)
        origin = url.origin
        connection = self._pooled(origin)
        if connection is None:
            connection = await self._connect(origin)
        try:
            try:
                await connection.send(data)
            except ClosedEarly:
                if not connection.used or connection.answered:
                    raise
                # The provider closed an idle connection as the request went out: it cannot
                # have acted on it. Once more, on a fresh connection.
                self._busy.discard(connection)
                connection = await self._connect(origin)
                await connection.send(data)
        except BaseException:
            connection.abort()
            self._busy.discard(connection)
            raise
        return Response(connection, self._give_back)

    async def close(self) -> None:
        """Close every connection, idle or busy; later requests fail."""
        self._closed = True
        if self._sweeping is not None:
            self._sweeping.cancel()
            self._sweeping = None
        for idle in self._idle.values():
            for connection, _since in idle:
                connection.abort()
        self._idle.clear()
        for connection in list(self._busy):
            connection.abort()
        self._busy.clear()
        await asyncio.sleep(0)  # let the transports run their connection_lost

    @property
    def idle_count(self) -> int:
        return sum(len(idle) for idle in self._idle.values())

    # -- the pool -----------------------------------------------------------------------------

    def _pooled(self, origin: Origin) -> Connection | None:
        idle = self._idle.get(origin)
        if not idle:
            return None
        now = asyncio.get_running_loop().time()
        while idle:
            connection, since = idle.pop()
            if connection.usable and now - since < self.keepalive_seconds:
                self._busy.add(connection)
                return connection
            connection.abort()
        return None

    async def _connect(self, origin: Origin) -> Connection:
        loop = asyncio.get_running_loop()
        context = self._context() if origin.tls else None
        try:
            async with asyncio.timeout(self.connect_seconds):
                _transport, connection = await loop.create_connection(
                    lambda: Connection(loop, origin), origin.host, origin.port, ssl=context,
                    server_hostname=origin.host if context is not None else None)
        except TimeoutError:
            raise ConnectTimeout(f"no connection to {origin.host}:{origin.port} within "
                                 f"{self.connect_seconds:g} s") from None
        except (OSError, ssl.SSLError) as error:
            raise ConnectError(f"cannot connect to {origin.host}:{origin.port}: "
                               f"{type(error).__name__}") from error
        if self._closed:
            connection.abort()
            raise ConnectError("the client is closed")
        self._busy.add(connection)
        return connection

    def _give_back(self, connection: Connection) -> None:
        self._busy.discard(connection)
        if self._closed or not connection.reusable():
            connection.abort()
            return
        origin = connection.origin
        idle = self._idle.get(origin)
        if idle is None:
            idle = self._idle[origin] = deque()
        if len(idle) >= self.max_idle_per_origin:
            connection.abort()
            return
        connection.reset()
        loop = asyncio.get_running_loop()
        idle.append((connection, loop.time()))
        if self._sweeping is None:
            self._sweeping = loop.call_later(self.keepalive_seconds, self._sweep)

    def _sweep(self) -> None:
        """Close connections idle past the keep-alive time; again later while any are left."""
        self._sweeping = None
        loop = asyncio.get_running_loop()
        deadline = loop.time() - self.keepalive_seconds
        for origin, idle in list(self._idle.items()):
            kept: deque[tuple[Connection, float]] = deque()
            for connection, since in idle:
                if connection.usable and since > deadline:
                    kept.append((connection, since))
                else:
                    connection.abort()
            if kept:
                self._idle[origin] = kept
            else:
                del self._idle[origin]
        if self._idle:
            self._sweeping = loop.call_later(self.keepalive_seconds / 2, self._sweep)

    def _context(self) -> ssl.SSLContext:
        if self._ssl is None:
            context = ssl.create_default_context()
            context.set_alpn_protocols(["http/1.1"])
            self._ssl = context
        return self._ssl


def _encode(method: bytes, url: Url, headers: Iterable[tuple[bytes, bytes]],
            body: bytes) -> bytes:
    """The request's bytes. A name or value that would break a line (CR, LF) or carries NUL
    is refused: header values come from callers and Secrets, and must not inject headers."""
    lines = [b"%s: %s\r\n" % pair for pair in headers]
    head = b"".join((method, b" ", url.target, _HTTP11, url.host_header, b"\r\n", *lines,
                     b"content-length: %d\r\n\r\n" % len(body)))
    expected = len(lines) + 4  # request line, host, the lines, length, blank
    if head.count(b"\n") != expected or head.count(b"\r") != expected or b"\0" in head:
        raise InvalidRequest("a header name or value holds a line break or NUL; not sent")
    return head + body


__all__ = ["KEEPALIVE_SECONDS", "MAX_IDLE_PER_ORIGIN", "Client"]
