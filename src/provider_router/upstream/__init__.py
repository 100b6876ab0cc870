"""The HTTP/1.1 client the proxy calls providers with: pooled, bounded, and cheap per call.

``Client().request(b"POST", parse_url("https://api.example.com/v1/chat/completions"),
headers, body)`` sends one request on a pooled keep-alive connection and returns a
``Response`` once the answer's head has arrived; its body is read piece by piece as it comes
(``read_chunk``) or whole (``read``), then the answer is ``release()``-d to reuse the
connection or ``close()``-d to drop it. Failures are ``UpstreamError``s (a timeout is also a
``TimeoutError``). Why the router has its own client, and what it leaves out, is in
``_client``'s docstring.
"""

from provider_router.upstream._client import KEEPALIVE_SECONDS, MAX_IDLE_PER_ORIGIN, Client
from provider_router.upstream._connection import (
    HIGH_WATER,
    LOW_WATER,
    MAX_HEAD_BYTES,
    MAX_HEADERS,
)
from provider_router.upstream._errors import (
    ClosedEarly,
    ConnectError,
    ConnectTimeout,
    InvalidRequest,
    ProtocolError,
    UpstreamError,
)
from provider_router.upstream._response import Response
from provider_router.upstream._url import Origin, Url, parse_url

__all__ = ["HIGH_WATER", "KEEPALIVE_SECONDS", "LOW_WATER", "MAX_HEADERS", "MAX_HEAD_BYTES",
           "MAX_IDLE_PER_ORIGIN", "Client", "ClosedEarly", "ConnectError", "ConnectTimeout",
           "InvalidRequest", "Origin", "ProtocolError", "Response", "UpstreamError", "Url",
           "parse_url"]
