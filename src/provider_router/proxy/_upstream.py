"""What goes into each request to a provider, and what of its answer comes back.

The calls themselves go through ``provider_router.upstream`` (the router's own pooled HTTP/1.1
client; its docstring says why not aiohttp's).

Headers are built from the caller's minus everything that must not travel: the caller's own
credentials (``authorization``, ``x-api-key``, ``api-key``, cookies), hop-by-hop headers (and
those ``connection`` names), and headers that describe the caller's connection rather than
the request. Then the chosen provider's credential is added, for that provider only. The
client ignores proxy environment variables and never follows a redirect, so a credential
cannot reach another host.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from provider_router.engine import HEADER_PREFIXES
from provider_router.upstream import InvalidRequest

_DROPPED: Final = frozenset({
    b"authorization", b"x-api-key", b"api-key", b"cookie", b"proxy-authorization",
    b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer",
    b"transfer-encoding", b"upgrade", b"host", b"content-length", b"expect",
    b"accept-encoding", b"forwarded", b"x-forwarded-for", b"x-forwarded-host",
    b"x-forwarded-proto", b"x-real-ip",
})
"""Never forwarded. ``accept-encoding`` goes too: answers are relayed, and read for usage,
as the provider sends them, so the provider is asked for none."""

RELAYED: Final = frozenset({
    b"retry-after", b"x-request-id", b"request-id", b"openai-processing-ms",
    b"openai-version", b"openai-organization",
})
"""Provider answer headers passed on to the caller, besides the rate-limit families (the
content type is written as the answer's own)."""
RATE_LIMIT_PREFIXES: Final = tuple(prefix.encode("ascii") for prefix in HEADER_PREFIXES)
"""The engine's rate-limit header families, as the raw header names arrive."""
_ANTHROPIC_VERSION: Final = b"anthropic-version"


def forwarded_headers(headers: Mapping[bytes, bytes], credential: Mapping[str, str]
                      ) -> list[tuple[bytes, bytes]]:
    """The request headers for a provider: the caller's that may travel, then ours (the
    caller may pin the ``anthropic-version`` it speaks)."""
    named = headers.get(b"connection")
    hop = (frozenset(part.strip().lower() for part in named.split(b","))
           if named else frozenset())
    try:
        ours = [(name.lower().encode("latin-1"), value.encode("latin-1"))
                for name, value in credential.items()]
    except UnicodeEncodeError:
        raise InvalidRequest("the provider's credential is not latin-1 text; check its "
                             "Secret") from None
    names = {name for name, _ in ours}
    pinned = headers.get(_ANTHROPIC_VERSION)
    if pinned is not None and _ANTHROPIC_VERSION in names:
        ours = [(name, pinned if name == _ANTHROPIC_VERSION else value)
                for name, value in ours]
    out = [(name, value) for name, value in headers.items()
           if name not in _DROPPED and name not in hop and name not in names
           and not name.startswith(b"x-router-")]
    out += ours
    return out


def relayed_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The provider's answer headers that the caller sees (never ``set-cookie``)."""
    return [(name, value) for name, value in headers
            if name in RELAYED or name.startswith(RATE_LIMIT_PREFIXES)]


def stated_limits(headers: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """The rate-limit headers of an answer, as text, for the engine's parser."""
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers
            if name.startswith(RATE_LIMIT_PREFIXES)]


__all__ = ["RATE_LIMIT_PREFIXES", "RELAYED", "forwarded_headers", "relayed_headers",
           "stated_limits"]
