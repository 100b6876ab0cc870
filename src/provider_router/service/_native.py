"""A minimal HTTP/1.1 server for ``RouteService``: httptools parsing, answers written inline.

Why it exists: most handlers of the route API are synchronous (the engine does no I/O), so an
ASGI server's per-request machinery (a task, scope and message dicts, two awaited sends) costs
more than the routing decision itself. This protocol parses with httptools (llhttp, the parser
uvicorn and Node use), calls ``RouteService.handle`` from the parser's message-complete
callback and writes a ready answer in one ``transport.write``: no task, no await. A handler
that must wait returns an awaitable; it runs as a task, and answers owed behind it wait in
line, so pipelined requests are always answered in request order. A client that leaves
cancels the work done for it.

Streamed answers (``Stream``: a proxied server-sent event stream) are written with chunked
transfer encoding by a task that pulls the next chunk only while the transport takes more
(``pause_writing`` / ``resume_writing`` gate it), so a client that reads slowly holds the
upstream back instead of growing a buffer here; a client that leaves cancels the task, which
closes the stream's iterator and with it the upstream call, and so does a client that reads
nothing for the stream's ``stall_seconds`` (its connection is aborted). Answers pipelined
behind a stream wait for its end.

What it still does that a server must: keep-alive per HTTP/1.0 and 1.1 rules, ``Expect:
100-continue``, limits on header count and size (431) and body size (413), 400 for malformed
requests and upgrades, back-pressure (stop reading while the peer does not read, or while too
many answers are owed), and a graceful stop that lets requests in progress finish. Against
slow or hoarding clients: a request must arrive whole within ``REQUEST_TIMEOUT_SECONDS`` of its
first byte (408), a head's raw bytes are counted as they arrive (an endless header line is
refused after one slice past the limit, not buffered), an idle connection is closed, and
connections beyond ``max_connections`` are refused with a 503. Refusals linger (FIN, then
drop input) so that the client reads the answer instead of a reset. Request smuggling is
llhttp's to refuse (it rejects Content-Length with Transfer-Encoding), and a test holds it to
that.
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable
from email.utils import formatdate
from http import HTTPStatus
from typing import Final, cast
from urllib.parse import unquote

import httptools

from provider_router.service._app import RouteService
from provider_router.service._errors import ApiError
from provider_router.service._http import Answer, Headers, Reply, Request, Response, Stream

log = logging.getLogger(__name__)

MAX_HEAD_BYTES: Final = 64 << 10
MAX_HEADERS: Final = 100
_SLICE: Final = 16 << 10
"""Reads larger than this reach the parser in slices of it (see ``data_received``)."""
_HEAD_RAW_LIMIT: Final = MAX_HEAD_BYTES + _SLICE
"""Raw bytes fed while a head is open: the head limit plus at most one slice of what follows."""
MAX_PENDING_ANSWERS: Final = 32
"""Answers a connection may owe (pipelined behind a deferred one) before reading stops."""
LINGER_SECONDS: Final = 2.0
REQUEST_TIMEOUT_SECONDS: Final = 30.0
"""Enough to send a body of the largest allowed size over a slow link."""
MAX_CONNECTIONS: Final = 10_000
MAX_CACHED_TARGETS: Final = 1024
MAX_CACHED_TARGET_BYTES: Final = 512
IDLE_TIMEOUT_SECONDS: Final = 75.0
"""Longer than common client pools keep idle connections (60 s), so we rarely close first."""
STREAM_UNSENT_BYTES: Final = 64 << 10
"""The most a stream leaves unsent in the kernel (``TCP_NOTSENT_LOWAT``). Without it the
kernel's send buffer grows to megabytes: back-pressure would reach the upstream late, and a
slow reader would look stalled while the kernel drained it (it wakes a writer only after a
third of its buffer is free)."""
_NOTSENT_LOWAT: Final = getattr(socket, "TCP_NOTSENT_LOWAT", None)
_HEAD_TOO_LARGE: Final = f"the request line and headers exceed {MAX_HEAD_BYTES} bytes"

_STATUS_LINES: dict[int, bytes] = {
    s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode() for s in HTTPStatus}
_CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"
_LENGTH_LINES: dict[int, bytes] = {}
"""``content-length`` lines by body size, made on first use: looking one up costs less than
formatting it for every answer, and route answers come in a few sizes."""
MAX_CACHED_LENGTHS: Final = 4096


class _Clock:
    """The ``date`` header, formatted once per second rather than per response."""

    __slots__ = ("_line", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._line = b""

    def date_line(self) -> bytes:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._line = b"date: " + formatdate(now, usegmt=True).encode() + b"\r\n"
        return self._line


def _split_target(raw: bytes) -> tuple[str, bytes]:
    """A request target's decoded path and raw query."""
    url = httptools.parse_url(raw)
    path = (url.path or b"/").decode("latin-1")
    if "%" in path:
        path = unquote(path)
    return path, url.query or b""


class ConnectionSet:
    """What the connections of one server share: the open set for a graceful stop, the date
    header, and the request targets seen lately."""

    def __init__(self, max_connections: int = MAX_CONNECTIONS,
                 request_timeout: float = REQUEST_TIMEOUT_SECONDS) -> None:
        self.open: set[HttpProtocol] = set()
        self.stopping = False
        self.clock = _Clock()
        self.idle_timeout = IDLE_TIMEOUT_SECONDS
        self.request_timeout = request_timeout
        self.max_connections = max_connections
        self.targets: dict[bytes, tuple[str, bytes]] = {}
        """Split request targets by their raw bytes: workloads repeat the same few URLs."""

    def remember_target(self, raw: bytes, target: tuple[str, bytes]) -> None:
        if len(raw) > MAX_CACHED_TARGET_BYTES:
            return
        if len(self.targets) >= MAX_CACHED_TARGETS:
            self.targets.clear()
        self.targets[raw] = target


class _Slot:
    """An answer that must wait for its turn: a deferred one, or one behind a deferred one.
    While a stream is written, ``task`` is the task writing it and ``streaming`` is set."""

    __slots__ = ("chunked", "head_only", "keep", "ready", "response", "streaming", "task")

    def __init__(self, keep: bool, head_only: bool, chunked: bool = True) -> None:
        self.keep = keep
        self.head_only = head_only
        self.chunked = chunked
        self.streaming = False
        self.response: Response | None = None
        self.ready: Reply | None = None
        """A deferred answer, once its task has it (before the task is done)."""
        self.task: asyncio.Task[Reply] | asyncio.Task[bool] | None = None


class HttpProtocol(asyncio.Protocol):
    __slots__ = ("_body", "_body_size", "_busy", "_close_after", "_conns", "_drained",
                 "_expect", "_head_raw", "_head_size", "_header_count", "_headers", "_idle",
                 "_in_head", "_last_data", "_linger", "_loop", "_parser", "_paused",
                 "_pending", "_refused", "_service", "_slow", "_transport", "_url",
                 "_writable")

    def __init__(self, service: RouteService, conns: ConnectionSet) -> None:
        self._service = service
        self._conns = conns
        self._loop = asyncio.get_running_loop()
        self._parser: httptools.HttpRequestParser | None = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._idle: asyncio.TimerHandle | None = None
        self._linger: asyncio.TimerHandle | None = None
        self._last_data = 0.0
        self._url = b""
        self._body: list[bytes] = []
        self._body_size = 0
        self._head_size = 0
        self._head_raw = 0
        self._in_head = True
        self._header_count = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._expect = False
        self._busy = False
        self._close_after = False
        self._refused = False
        self._paused = False
        self._pending: collections.deque[_Slot] = collections.deque()
        self._slow: asyncio.TimerHandle | None = None
        self._writable = True
        """False between ``pause_writing`` and ``resume_writing``: streams wait."""
        self._drained: asyncio.Future[None] | None = None

    # -- transport events ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        if len(self._conns.open) >= self._conns.max_connections:
            self._close_after = True
            self._write(_error(503, "too_many_connections",
                               f"the router holds {self._conns.max_connections} connections, "
                               "its limit; retry, or reuse a kept-alive connection"), False)
            return
        self._conns.open.add(self)
        self._last_data = self._loop.time()
        self._idle = self._loop.call_later(self._conns.idle_timeout, self._on_idle)

    def connection_lost(self, exc: Exception | None) -> None:
        self._conns.open.discard(self)
        for timer in (self._idle, self._linger):
            if timer is not None:
                timer.cancel()
        self._idle = self._linger = None
        self._cancel_slow()
        self._transport = None
        self._wake_writers()
        # The parser holds this protocol (its callbacks) and the protocol the parser: break
        # the cycle, or a closed connection and its half-read head wait for a full GC.
        self._parser = None
        self._body = []
        pending, self._pending = self._pending, collections.deque()
        for slot in pending:
            task = slot.task
            if task is None:
                continue
            if not task.done():
                task.cancel()  # the client left: stop the work done for it
            elif not slot.streaming and not task.cancelled() and task.exception() is None:
                reply = task.result()
                if isinstance(reply, Stream):  # ready, never started: release what it holds
                    self._loop.create_task(_close_quietly(reply.chunks))

    def data_received(self, data: bytes) -> None:
        if len(data) > _SLICE:
            # Large reads are fed in slices, each through here, so that an endless head is
            # refused after one slice past the limit rather than after the whole read is
            # buffered.
            for offset in range(0, len(data), _SLICE):
                if self._close_after or self._parser is None:
                    break
                self.data_received(data[offset:offset + _SLICE])
            return
        # One timestamp per read instead of re-arming a timer per request: the idle timer
        # checks it when it fires and sleeps again if the connection was used meanwhile.
        self._last_data = self._loop.time()
        parser = self._parser
        # Closed, or answered and closing (or lingering): the rest is not read.
        if parser is not None and not self._close_after:
            if self._in_head:
                # llhttp reports a header only when its line ends, and buffers it until
                # then: count raw bytes while a head is open, so that a line that never ends
                # is refused. (Outside a head the count stays below the limit.)
                self._head_raw += len(data)
            if self._head_raw > _HEAD_RAW_LIMIT:
                self._fail(431, "headers_too_large", _HEAD_TOO_LARGE)
            else:
                try:
                    parser.feed_data(data)
                except httptools.HttpParserUpgrade:
                    pass  # refused in on_message_complete, which closes the connection
                except httptools.HttpParserCallbackError:
                    if not self._refused:  # not a limit we enforce: a bug of ours
                        log.exception("the route API failed while parsing a request")
                        self._fail(500, "internal_error", "the router failed to read the "
                                   "request; see its log")
                except httptools.HttpParserError:
                    self._fail(400, "malformed_request", "the request is not valid HTTP/1.1")
        # A request left half received waits on a timer; whole ones, the usual case, never
        # arm one.
        if self._busy and self._slow is None and self._transport is not None:
            self._slow = self._loop.call_later(self._conns.request_timeout, self._on_slow)

    def pause_writing(self) -> None:
        # The peer is not reading its answers: stop reading its requests, and stop pulling
        # stream chunks, until it does.
        self._writable = False
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        self._writable = True
        self._wake_writers()
        if self._transport is not None and not self._paused:
            self._transport.resume_reading()

    def _wake_writers(self) -> None:
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    def eof_received(self) -> bool | None:
        # The peer closed its side. A client that half-closes and still waits for answers is
        # rare, one that has gone is common: treat it as gone, so that work done for it stops.
        return None

    # -- parser callbacks ---------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._busy = True
        self._in_head = True
        self._url = b""
        self._body = []
        self._body_size = 0
        self._head_size = 0
        self._header_count = 0
        self._headers = []
        self._expect = False

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._count_head(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > MAX_HEADERS:
            self._refuse_head(f"the request has more than {MAX_HEADERS} headers")
        # _count_head, inline: this runs for every header of every request (1% of a route).
        self._head_size += len(name) + len(value) + 4  # as on the wire: ": " and CRLF
        if self._head_size > MAX_HEAD_BYTES:
            self._refuse_head(_HEAD_TOO_LARGE)
        self._headers.append((name, value))
        if len(name) == 6 and name.lower() == b"expect" and value.lower() == b"100-continue":
            self._expect = True

    def on_headers_complete(self) -> None:
        self._in_head = False
        if self._expect and self._transport is not None:
            self._transport.write(_CONTINUE)

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        service = self._service
        if (self._body_size > service.max_body_bytes
                and self._body_size > (limit := service.body_limit(self._url))):
            # Answer now and close: the rest of a refused body is not worth reading.
            self._body = []
            self._refused = True
            self._fail_with(service.too_large(limit, self._url))
            raise ValueError("body too large")  # stops the parser (HttpParserCallbackError)
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._busy = False
        self._in_head = True
        self._head_raw = 0
        if self._slow is not None:
            self._cancel_slow()
        parser = self._parser
        assert parser is not None
        if parser.should_upgrade():
            self._fail(400, "upgrade_not_supported", "protocol upgrades are not supported")
            return
        target = self._conns.targets.get(self._url)
        if target is None:
            try:
                target = _split_target(self._url)
            except httptools.HttpParserInvalidURLError:
                self._answer(_error(400, "malformed_request", "the request target is not a URL"))
                return
            self._conns.remember_target(self._url, target)
        path, query = target
        method = parser.get_method().decode("latin-1")
        body = b"".join(self._body) if self._body else b""
        # By position, as every call on this path: a keyword argument costs more.
        self._answer(self._service.handle(Request(method, path, query, body, self._headers)),
                     method == "HEAD")

    # -- answering ----------------------------------------------------------------------------

    def _answer(self, answer: Answer, head_only: bool = False) -> None:
        """Write ``answer`` now if it is ready and nothing is ahead of it, else queue it."""
        parser = self._parser
        keep = parser is not None and parser.should_keep_alive()
        if isinstance(answer, tuple):
            if not self._pending:
                self._write(answer, keep, head_only)
                return
            slot = _Slot(keep, head_only)
            slot.response = answer
        else:
            # HTTP/1.0 knows no chunked encoding: a stream is sent raw, then the connection
            # closes.
            slot = _Slot(keep, head_only, parser is None or parser.get_http_version() != "1.0")
            task: asyncio.Task[Reply] = self._loop.create_task(self._deliver(slot, answer))
            slot.task = task
            task.add_done_callback(self._on_done)
        self._pending.append(slot)
        if len(self._pending) >= MAX_PENDING_ANSWERS and self._transport is not None:
            self._paused = True  # enough answers owed: read no more requests until written
            self._transport.pause_reading()

    async def _deliver(self, slot: _Slot, answer: Awaitable[Reply]) -> Reply:
        reply = await answer
        # Written from this task as soon as it is ready, rather than from the done callback
        # one loop iteration later; the callback still handles failures and cancellation.
        slot.ready = reply
        if self._pending and self._pending[0] is slot:
            self._on_done(None)
        return reply

    def _on_done(self, task: asyncio.Task[Reply] | asyncio.Task[bool] | None) -> None:
        pending = self._pending
        while pending:
            slot = pending[0]
            if slot.task is not None:
                if not slot.task.done() and (slot.streaming or slot.ready is None):
                    return
                if slot.streaming:  # a stream was written (or given up): its turn is over
                    pending.popleft()
                    clean = not slot.task.cancelled() and slot.task.exception() is None \
                        and slot.task.result() is True
                    if not (clean and slot.keep and slot.chunked) or self._conns.stopping:
                        self._close_streamed(clean)
                        return
                    continue
                if slot.ready is not None:
                    if isinstance(slot.ready, Stream):
                        self._start_stream(slot, slot.ready)
                        return
                    response = slot.ready
                elif slot.task.cancelled():
                    response = _error(503, "cancelled", "the answer was cancelled")
                else:
                    # Done and not ready: ``_deliver`` sets ``ready`` before it returns, so
                    # the answer failed.
                    log.error("a deferred answer failed", exc_info=slot.task.exception())
                    response = _error(500, "internal_error", "the router failed to answer; "
                                      "see its log")
            else:
                assert slot.response is not None
                response = slot.response
            pending.popleft()
            self._write(response, slot.keep, slot.head_only)
            if self._transport is None:
                return
        if self._paused and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()

    # -- streams ------------------------------------------------------------------------------

    def _start_stream(self, slot: _Slot, stream: Stream) -> None:
        """Write ``stream``'s head, then hand its body to a task; ``slot`` stays first in
        line until that task ends."""
        transport = self._transport
        if transport is None or transport.is_closing():
            self._loop.create_task(_close_quietly(stream.chunks))
            return
        keep = slot.keep and slot.chunked and not self._close_after and not self._conns.stopping
        transport.write(b"".join(self._head(
            stream.status, stream.content_type,
            b"transfer-encoding: chunked\r\n" if slot.chunked else b"", stream.headers, keep)))
        slot.keep = keep
        slot.streaming = True
        _limit_unsent(transport)
        task = self._loop.create_task(self._pump(transport, stream.chunks, slot.chunked,
                                                 slot.head_only, stream.stall_seconds))
        slot.task = task
        task.add_done_callback(self._on_done)

    async def _pump(self, transport: asyncio.Transport, chunks: AsyncIterator[bytes],
                    chunked: bool, head_only: bool, stall_seconds: float) -> bool:
        """Write ``chunks`` as they come, waiting while the client does not read; a client
        that reads nothing for ``stall_seconds`` is given up. True when the stream ended and
        its last chunk was written."""
        try:
            if head_only:
                return True
            async for chunk in chunks:
                if transport.is_closing():
                    return False
                if chunk:
                    transport.write(b"".join((b"%x\r\n" % len(chunk), chunk, b"\r\n"))
                                    if chunked else chunk)
                while not self._writable and self._transport is transport:
                    # Back-pressure: pull nothing more until the transport has drained.
                    if not await self._drain(transport, stall_seconds):
                        log.info("dropping a client that read nothing of its stream for "
                                 "%g s", stall_seconds)
                        self._service.metrics.count_stalled_stream()
                        return False
                if self._transport is not transport:
                    return False
            if chunked and not transport.is_closing():
                transport.write(b"0\r\n\r\n")
            return True
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("a streamed answer failed after its head was sent")
            return False
        finally:
            await _close_quietly(chunks)

    async def _drain(self, transport: asyncio.Transport, stall_seconds: float) -> bool:
        """Wait until the transport takes more. False if the client read nothing at all for
        ``stall_seconds``: it has stopped reading, and is to be dropped (the connection
        aborted, the upstream call closed) rather than hold the stream open until the idle
        timeout, or for ever. A client that reads slowly is not stalled, however long one
        drain takes: the bound starts again whenever the buffer has shrunk."""
        drained = self._drained
        if drained is None:
            drained = self._drained = self._loop.create_future()
        size = transport.get_write_buffer_size()
        while True:
            try:
                await asyncio.wait_for(asyncio.shield(drained), stall_seconds)
                return True
            except TimeoutError:
                now = transport.get_write_buffer_size()
                if now >= size or self._transport is not transport:
                    return False
                size = now

    def _close_streamed(self, clean: bool) -> None:
        """End the connection after a stream: after its last chunk when it ended well, at
        once when it broke off (so that the client sees a truncated answer, not a short one)."""
        transport = self._transport
        if transport is None:
            return
        if clean:
            transport.close()
        else:
            transport.abort()

    # -- helpers ------------------------------------------------------------------------------

    def _count_head(self, size: int) -> None:
        self._head_size += size
        if self._head_size > MAX_HEAD_BYTES:
            self._refuse_head(_HEAD_TOO_LARGE)

    def _refuse_head(self, message: str) -> None:
        self._refused = True
        self._fail(431, "headers_too_large", message)
        raise ValueError("head too large")  # stops the parser (HttpParserCallbackError)

    def _on_slow(self) -> None:
        self._slow = None
        if self._busy:
            self._fail(408, "request_timeout", "the request did not arrive within "
                       f"{self._conns.request_timeout:g} s of its first byte")

    def _cancel_slow(self) -> None:
        if self._slow is not None:
            self._slow.cancel()
            self._slow = None

    def _fail(self, status: int, code: str, message: str) -> None:
        self._fail_with(_error(status, code, message))

    def _fail_with(self, response: Response) -> None:
        """Refuse the request being read: answer after those owed, then stop reading."""
        self._close_after = True
        self._busy = False
        self._cancel_slow()
        if self._pending:
            self._answer(response)
        else:
            self._write(response, False, linger=True)

    def _write(self, response: Response, keep: bool, head_only: bool = False,
               linger: bool = False) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        status, kind, body, extra = response
        keep = keep and not self._close_after and not self._conns.stopping
        size = len(body)
        head = self._head(status, kind, _LENGTH_LINES.get(size) or _length_line(size), extra,
                          keep)
        if not head_only:
            head.append(body)
        transport.write(b"".join(head))
        if keep:
            return
        if linger or self._close_after:
            self._linger_then_close(transport)
        else:
            transport.close()

    def _head(self, status: int, kind: bytes, framing: bytes, extra: Headers,
              keep: bool) -> list[bytes]:
        """An answer's status line and headers, through the blank line: ``framing`` is its
        content-length or transfer-encoding line."""
        head = [_STATUS_LINES.get(status) or f"HTTP/1.1 {status} Unknown\r\n".encode(),
                b"content-type: ", kind, b"\r\n", framing, self._conns.clock.date_line()]
        for name, value in extra:
            head += (name, b": ", value, b"\r\n")
        if not keep:
            head.append(b"connection: close\r\n")
        head.append(b"\r\n")
        return head

    def _linger_then_close(self, transport: asyncio.Transport) -> None:
        """Close after a refusal without destroying the answer.

        Closing with unread input makes the kernel send a reset, and a reset can discard the
        answer before the client reads it. So: send FIN, drop whatever still arrives, and
        close when the peer does or after ``LINGER_SECONDS``.
        """
        if self._linger is not None:
            return
        if transport.can_write_eof():
            transport.write_eof()
        self._linger = self._loop.call_later(LINGER_SECONDS, transport.close)

    def _on_idle(self) -> None:
        self._idle = None
        if self._transport is None:
            return
        quiet = self._loop.time() - self._last_data
        if quiet >= self._conns.idle_timeout and not self._pending:
            self._transport.close()  # idle, or a request trickling in too slowly
        else:
            wait = max(self._conns.idle_timeout - quiet, 1.0)
            self._idle = self._loop.call_later(wait, self._on_idle)

    def close_if_idle(self) -> None:
        """For a graceful stop: close now unless a request is half received or answered."""
        if self._transport is not None and not self._busy and not self._pending:
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()


def _length_line(size: int) -> bytes:
    line = b"content-length: %d\r\n" % size
    if len(_LENGTH_LINES) < MAX_CACHED_LENGTHS:
        _LENGTH_LINES[size] = line
    return line


def _limit_unsent(transport: asyncio.Transport) -> None:
    """Keep a stream's unsent bytes in the kernel small (``STREAM_UNSENT_BYTES``), so that
    the transport's own buffer, which pauses the stream, fills as soon as the client stops
    reading and drains as it reads. Only streams pay for it; it stays set for what the
    connection answers next, which is harmless."""
    sock = transport.get_extra_info("socket")
    if _NOTSENT_LOWAT is None or sock is None or sock.family not in (
            socket.AF_INET, socket.AF_INET6):
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, _NOTSENT_LOWAT, STREAM_UNSENT_BYTES)


async def _close_quietly(chunks: AsyncIterator[bytes]) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:
            log.exception("closing a streamed answer failed")


def _error(status: int, code: str, message: str) -> Response:
    error = ApiError(status, code, message)
    return status, b"application/json", error.body(), ()


async def start_native(service: RouteService, sock: socket.socket, backlog: int,
                       max_connections: int = MAX_CONNECTIONS,
                       request_timeout: float = REQUEST_TIMEOUT_SECONDS,
                       ) -> tuple[asyncio.base_events.Server, ConnectionSet]:
    loop = asyncio.get_running_loop()
    conns = ConnectionSet(max_connections, request_timeout)
    server = await loop.create_server(lambda: HttpProtocol(service, conns),
                                      sock=sock, backlog=backlog)
    return server, conns


async def stop_native(server: asyncio.base_events.Server, conns: ConnectionSet,
                      graceful_seconds: float) -> None:
    """Stop accepting, close idle connections, give busy ones time to finish, then abort."""
    conns.stopping = True
    server.close()
    for conn in list(conns.open):
        conn.close_if_idle()
    deadline = time.monotonic() + graceful_seconds
    while conns.open and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
        for conn in list(conns.open):
            conn.close_if_idle()
    for conn in list(conns.open):
        conn.abort()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(server.wait_closed(), timeout=1.0)
