"""The HTTP client side of the proxy: one aiohttp session, and what goes into each request.

aiohttp's client was measured against httpx's on this code's workload (``bench/
upstream_client.py``): several times the throughput at one caller and more under
concurrency, which is what a data plane in one process needs.

Headers are built from the caller's minus everything that must not travel: the caller's own
credentials (``authorization``, ``x-api-key``, ``api-key``, cookies), hop-by-hop headers (and
those ``connection`` names), and headers that describe the caller's connection rather than
the request. Then the chosen provider's credential is added, for that provider only. The
session ignores proxy environment variables and never follows a redirect, so a credential
cannot reach another host.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import aiohttp

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
    "content-type", "retry-after", "x-request-id", "request-id", "openai-processing-ms",
    "openai-version", "openai-organization",
})
"""Provider answer headers passed on to the caller, besides the rate-limit families."""
_RELAYED_PREFIXES: Final = ("x-ratelimit-", "anthropic-ratelimit-")


def forwarded_headers(headers: Mapping[bytes, bytes], credential: Mapping[str, str]
                      ) -> dict[str, str]:
    """The request headers for a provider: the caller's that may travel, then ours."""
    named = headers.get(b"connection")
    hop = ({part.strip().lower() for part in named.split(b",")} if named else set())
    out: dict[str, str] = {}
    for name, value in headers.items():
        if name in _DROPPED or name in hop or name.startswith(b"x-router-"):
            continue
        out[name.decode("latin-1")] = value.decode("latin-1")
    if credential:
        version = out.get("anthropic-version")
        out.update(credential)
        if version is not None and "anthropic-version" in credential:
            out["anthropic-version"] = version  # the caller may pin the API version it speaks
    return out


def relayed_headers(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    """The provider's answer headers that the caller sees (never ``set-cookie``)."""
    out: list[tuple[bytes, bytes]] = []
    for name, value in headers.items():
        lowered = name.lower()
        if lowered == "content-type":
            continue  # written as the answer's content type
        if lowered in RELAYED or lowered.startswith(_RELAYED_PREFIXES):
            out.append((lowered.encode("latin-1"), value.encode("latin-1", "replace")))
    return out


def new_session(connect_seconds: float) -> aiohttp.ClientSession:
    """The proxy's one session: pooled keep-alive connections, no environment proxies, no
    cookies kept, answers read as sent."""
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=60)
    return aiohttp.ClientSession(
        connector=connector, trust_env=False, auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(), skip_auto_headers=("User-Agent",),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=connect_seconds,
                                      connect=connect_seconds))


__all__ = ["RELAYED", "forwarded_headers", "new_session", "relayed_headers"]
