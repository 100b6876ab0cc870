"""Provider URLs, parsed once into what a request line and a connection need.

A provider's ``baseURL`` plus an endpoint suffix is parsed when the proxy first calls it and
then reused, so a call pays for no URL parsing. Only ``http`` and ``https`` are spoken.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, urlsplit

from provider_router.upstream._errors import InvalidRequest

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_PATH_SAFE: Final = "/%:@!$&'()*+,;=-._~"
"""Characters a path keeps as they are; anything else (spaces, non-ASCII) is percent-encoded."""


@dataclass(frozen=True, slots=True)
class Origin:
    """Where connections go: one pool per origin."""

    scheme: str
    host: str
    port: int

    @property
    def tls(self) -> bool:
        return self.scheme == "https"


@dataclass(frozen=True, slots=True)
class Url:
    """A parsed absolute URL: its origin, its request target and its ``Host`` header."""

    origin: Origin
    target: bytes
    """Path and query, percent-encoded, as they go on the request line."""
    host_header: bytes

    def with_query(self, query: bytes) -> Url:
        """This URL with a raw query string (as a caller sent it) appended."""
        if not query:
            return self
        _check_query(query)
        joiner = b"&" if b"?" in self.target else b"?"
        return Url(self.origin, self.target + joiner + query, self.host_header)


def parse_url(text: str) -> Url:
    """``http[s]://host[:port]/path[?query]``, or ``InvalidRequest`` saying what is wrong."""
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as error:
        raise InvalidRequest(f"invalid URL {text[:200]!r}: {error}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise InvalidRequest(f"invalid URL {text[:200]!r}: only http and https are spoken")
    host = parts.hostname
    if not host:
        raise InvalidRequest(f"invalid URL {text[:200]!r}: no host")
    if parts.username is not None or parts.password is not None:
        raise InvalidRequest("invalid URL: credentials in a URL are not sent; use a Secret")
    port = port if port is not None else _DEFAULT_PORTS[scheme]
    path = quote(parts.path or "/", safe=_PATH_SAFE)
    target = path.encode("ascii")
    if parts.query:
        query = quote(parts.query, safe=_PATH_SAFE + "?").encode("ascii")
        target += b"?" + query
    shown = f"[{host}]" if ":" in host else host
    if port != _DEFAULT_PORTS[scheme]:
        shown += f":{port}"
    return Url(Origin(scheme, host, port), target, shown.encode("idna" if not shown.isascii()
                                                               else "ascii"))


def _check_query(query: bytes) -> None:
    # What the route server accepted is already a valid request target; a query that came
    # from elsewhere must not smuggle a space or a line break onto the request line.
    if any(byte <= 0x20 or byte == 0x7F for byte in query):
        raise InvalidRequest("a query with spaces or control characters is not sent")


__all__ = ["Origin", "Url", "parse_url"]
