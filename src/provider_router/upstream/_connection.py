"""One keep-alive HTTP/1.1 connection to a provider, parsed with httptools.

The connection is an ``asyncio.Protocol``: bytes arrive in ``data_received``, httptools calls
back with the status, headers and body pieces, and the caller is woken as soon as the answer's
head is complete. Body pieces queue here until the caller takes them; past ``HIGH_WATER``
queued bytes the socket stops being read (TCP then holds the provider back), and it is read
again below ``LOW_WATER``. So a slow consumer never makes the router buffer an unbounded
answer.

What a provider may send is bounded: a head of at most ``MAX_HEAD_BYTES`` and ``MAX_HEADERS``
lines. An answer that breaks HTTP/1.1, upgrades the connection, or ends early fails the
request, and the connection is then dropped, never pooled. An answer with neither a length nor
chunked encoding ends when the connection closes, as HTTP/1.1 says. Bytes that arrive while
the connection is idle (nothing asked for them) make it untrusted: it is closed.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Final, cast

import httptools

from provider_router.upstream._errors import ClosedEarly, ProtocolError, UpstreamError
from provider_router.upstream._url import Origin

MAX_HEAD_BYTES: Final = 64 << 10
MAX_HEADERS: Final = 256
HIGH_WATER: Final = 256 << 10
LOW_WATER: Final = 64 << 10

IDLE: Final = 0
WAITING: Final = 1
"""The request is written; the answer's head has not fully arrived."""
BODY: Final = 2
DONE: Final = 3
"""The answer has fully arrived (pieces of its body may still be queued)."""
FAILED: Final = 4
_FRAMING: Final = frozenset({b"content-length", b"transfer-encoding"})


class Connection(asyncio.Protocol):
    """A connection: idle in its pool, or carrying one request at a time."""

    __slots__ = ("_body", "_buffered", "_error", "_framed", "_head_bytes", "_informational",
                 "_loop", "_parser", "_paused", "_reader", "_transport", "_waiter", "answered",
                 "headers", "keep_alive", "origin", "state", "status", "used")

    def __init__(self, loop: asyncio.AbstractEventLoop, origin: Origin) -> None:
        self._loop = loop
        self.origin = origin
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[None] | None = None
        """Resolved when the head has arrived, or failed with the reason there is none."""
        self._reader: asyncio.Future[None] | None = None
        """Resolved when a body piece, the body's end or a failure arrives."""
        self._body: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._head_bytes = 0
        self._informational = False
        self._framed = False
        self._error: UpstreamError | None = None
        self.state = IDLE
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.keep_alive = False
        self.answered = False
        """Whether any byte of an answer to the current request has arrived."""
        self.used = False
        """Whether this connection carried a request before the current one."""

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.state not in (WAITING, BODY):
            self._fail(ProtocolError("the provider sent bytes nobody asked for"))
            return
        self.answered = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ProtocolError("the provider upgraded the connection"))
        except httptools.HttpParserCallbackError as error:
            # httptools wraps what a callback raised: a limit passed, in on_header.
            cause = error.__context__
            self._fail(cause if isinstance(cause, UpstreamError) else ProtocolError(
                f"the provider's answer could not be read: {cause!r}"))
        except httptools.HttpParserError as error:
            self._fail(ProtocolError(f"the provider's answer is not valid HTTP/1.1: {error}"))

    def eof_received(self) -> bool:
        return False  # close: a provider that half-closes has nothing more to say

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        state = self.state
        if state == IDLE:
            self.state = FAILED  # dropped from its pool when next looked at
        elif state == BODY and not self._framed:
            self._complete()  # no length and not chunked: the body ends with the connection
        elif state in (WAITING, BODY):
            what = "during its answer" if state == BODY else "without an answer"
            self._fail(ClosedEarly(f"the provider closed the connection {what}"))

    # -- httptools callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.headers = []
        self._head_bytes = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value) + 4
        if self._head_bytes > MAX_HEAD_BYTES or len(self.headers) >= MAX_HEADERS:
            raise ProtocolError(f"the provider's answer head is larger than {MAX_HEAD_BYTES} "
                                f"bytes or {MAX_HEADERS} lines")
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:
            self._informational = True  # "100 Continue" and the like: the answer follows
            return
        self.status = status
        self.state = BODY
        self.keep_alive = self._parser.should_keep_alive()
        self._framed = status in (204, 304) or any(
            name in _FRAMING for name, _ in self.headers)
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def on_body(self, body: bytes) -> None:
        self._body.append(body)
        self._buffered += len(body)
        if self._buffered > HIGH_WATER and not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        self._complete()

    # -- the caller's side --------------------------------------------------------------------

    @property
    def usable(self) -> bool:
        """Idle and open: fit to carry another request."""
        return (self.state == IDLE and self._transport is not None
                and not self._transport.is_closing())

    def send(self, data: bytes) -> asyncio.Future[None]:
        """Write a whole request; the future resolves when the answer's head has arrived."""
        transport = self._transport
        if transport is None or self.state != IDLE:
            raise ClosedEarly("the connection is not open for a request")
        self.state = WAITING
        self.status = 0
        self.answered = False
        self.keep_alive = False
        waiter = self._waiter = self._loop.create_future()
        transport.write(data)
        return waiter

    def take(self) -> bytes | None:
        """The next body piece, b"" at the body's end, None if nothing has arrived yet; the
        failure if the answer broke."""
        body = self._body
        if body:
            piece = body.popleft()
            self._buffered -= len(piece)
            if self._paused and self._buffered < LOW_WATER and self._transport is not None:
                self._paused = False
                self._transport.resume_reading()
            return piece
        if self._error is not None:
            raise self._error
        return b"" if self.state == DONE else None

    async def wait_body(self) -> None:
        """Until a body piece, the body's end, or a failure has arrived."""
        reader = self._reader = self._loop.create_future()
        try:
            await reader
        finally:
            self._reader = None

    def reusable(self) -> bool:
        """The answer has fully arrived and been taken, and the provider keeps the
        connection open for another."""
        return (self.state == DONE and not self._body and self.keep_alive
                and self._transport is not None and not self._transport.is_closing())

    def reset(self) -> None:
        """Back to idle, after a reusable answer."""
        self.state = IDLE
        self.used = True
        self.status = 0
        self.headers = []

    def abort(self) -> None:
        """Drop the connection (the answer is abandoned, or the connection is unwanted)."""
        if self.state != FAILED:
            self.state = FAILED
            if self._error is None:
                self._error = ClosedEarly("the router closed the connection")
        transport = self._transport
        if transport is not None:
            transport.abort()

    # -- internals ----------------------------------------------------------------------------

    def _complete(self) -> None:
        self.state = DONE
        self._wake()

    def _wake(self) -> None:
        reader = self._reader
        if reader is not None and not reader.done():
            reader.set_result(None)

    def _fail(self, error: UpstreamError) -> None:
        self.state = FAILED
        if self._error is None:
            self._error = error
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        self._wake()
        transport = self._transport
        if transport is not None:
            transport.abort()


__all__ = ["HIGH_WATER", "LOW_WATER", "MAX_HEADERS", "MAX_HEAD_BYTES", "Connection"]
