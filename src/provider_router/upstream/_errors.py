"""What can go wrong on the way to a provider, as exceptions the proxy can sort.

A timeout is also a ``TimeoutError``, so one ``except TimeoutError`` covers a connect that
takes too long and the caller's own deadline alike; everything else is an ``UpstreamError``.
"""

from __future__ import annotations


class UpstreamError(Exception):
    """The provider could not be reached, or its answer was broken."""


class ConnectError(UpstreamError):
    """No connection: refused, unresolvable, unreachable, or the TLS handshake failed."""


class ConnectTimeout(UpstreamError, TimeoutError):
    """The connection (TCP and TLS) was not made within the connect timeout."""


class ClosedEarly(UpstreamError):
    """The provider closed the connection before its answer ended."""


class ProtocolError(UpstreamError):
    """The provider's answer is not valid HTTP/1.1, or is larger than the client accepts."""


class InvalidRequest(UpstreamError, ValueError):
    """A request that must not be sent: a header with a line break or NUL (an injection), or
    a URL the client does not speak."""


__all__ = ["ClosedEarly", "ConnectError", "ConnectTimeout", "InvalidRequest", "ProtocolError",
           "UpstreamError"]
