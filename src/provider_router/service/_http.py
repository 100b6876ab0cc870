"""What a handler of the route API receives and returns, independent of the server.

A handler is a plain function from a ``Request`` to a ``Response`` tuple, or to an awaitable of
one when it must wait on I/O (an access review, an upstream call). Synchronous answers are the
fast path: the native server writes them from its parser callback with no task and no await.
Deferred answers keep their place in line, so pipelined requests are answered in order.

A deferred answer may also resolve to a ``Stream``: a status and headers, then a body that
arrives piece by piece (a proxied server-sent event stream). The server writes it with chunked
transfer encoding as the chunks come, holds the iterator back while the client does not read,
and closes the iterator (cancelling the upstream call behind it) when the client leaves, or
when it has read nothing for the stream's ``stall_seconds``.

Header names are lower-cased once, by the server, so handlers look them up with plain keys.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Final

import orjson

from provider_router._defaults import DEFAULT_STALL_SECONDS
from provider_router.service._errors import ApiError

Headers = tuple[tuple[bytes, bytes], ...]
Response = tuple[int, bytes, bytes, Headers]
"""``(status, content type, body, extra headers)``: what every handler answers."""

JSON: Final = b"application/json"

_NO_HEADERS: Final[Mapping[bytes, bytes]] = {}


class Request:
    """One parsed request. ``headers`` maps lower-cased names to values (repeated headers are
    joined with ``", "``, as HTTP allows).

    The server hands over the raw header pairs, and the mapping is built on first use: most
    route API requests never look at a header, and lower-casing every one costs more than the
    routing decision's slowest step.
    """

    __slots__ = ("_headers", "_raw", "body", "method", "path", "query")

    def __init__(self, method: str, path: str, query: bytes = b"", body: bytes = b"",
                 raw_headers: Sequence[tuple[bytes, bytes]] = (), *,
                 headers: Mapping[bytes, bytes] = _NO_HEADERS) -> None:
        # raw_headers before the keyword-only headers: the server passes every argument by
        # position, since a call with a keyword argument costs more, on every request.
        self.method = method
        self.path = path
        self.query = query
        self.body = body
        self._headers: Mapping[bytes, bytes] | None = None if raw_headers else headers
        self._raw = raw_headers

    @property
    def headers(self) -> Mapping[bytes, bytes]:
        headers = self._headers
        if headers is None:
            built: dict[bytes, bytes] = {}
            for name, value in self._raw:
                key = name.lower()
                seen = built.get(key)
                built[key] = value if seen is None else seen + b", " + value
            headers = self._headers = built
        return headers

    def header(self, name: bytes) -> bytes | None:
        """The value of header ``name`` (lower-case), or None."""
        return self.headers.get(name)

    def __repr__(self) -> str:  # never the headers: they may carry credentials
        return f"Request({self.method} {self.path})"


class Stream:
    """A streamed answer. ``chunks`` is iterated by the server only as fast as the client
    reads; the server closes it (``aclose``) when it stops early, so an async generator's
    ``finally`` or ``async with`` blocks run and release what it holds.

    ``stall_seconds`` bounds how long the client may read nothing while the server holds a
    chunk for it (its socket buffer full): past it the connection is aborted and the iterator
    closed, so a client that stopped reading cannot hold the stream's upstream call open. A
    client that reads slowly but steadily is never dropped.
    """

    __slots__ = ("chunks", "content_type", "headers", "stall_seconds", "status")

    def __init__(self, status: int, content_type: bytes, headers: Headers,
                 chunks: AsyncIterator[bytes],
                 stall_seconds: float = DEFAULT_STALL_SECONDS) -> None:
        if stall_seconds <= 0:
            raise ValueError("stall_seconds must be positive")
        self.status = status
        self.content_type = content_type
        self.headers = headers
        self.chunks = chunks
        self.stall_seconds = stall_seconds

    def __repr__(self) -> str:
        return f"Stream({self.status})"


Reply = Response | Stream
"""What a deferred answer resolves to."""
Answer = Response | Awaitable[Reply]
Handler = Callable[[Request], Answer]


def status_of(reply: Reply) -> int:
    return reply.status if isinstance(reply, Stream) else reply[0]


def json_response(payload: Any, status: int = 200, headers: Headers = ()) -> Response:
    return status, JSON, orjson.dumps(payload), headers


def error_response(error: ApiError) -> Response:
    return error.status, JSON, error.body(), error.headers


__all__ = ["JSON", "Answer", "Handler", "Headers", "Reply", "Request",
           "Response", "Stream", "error_response", "json_response", "status_of"]
