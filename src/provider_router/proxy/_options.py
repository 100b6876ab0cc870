"""What an operator may tune about proxied calls, with defaults for LLM traffic."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from provider_router._defaults import (
    DEFAULT_NAMESPACE,
    DEFAULT_PROXY_CONNECT_SECONDS,
    DEFAULT_PROXY_DEADLINE_SECONDS,
    DEFAULT_PROXY_FIRST_BYTE_SECONDS,
    DEFAULT_PROXY_IDLE_SECONDS,
    DEFAULT_PROXY_MAX_BODY_BYTES,
    DEFAULT_STALL_SECONDS,
)

MAX_UPSTREAM_BODY_BYTES: Final = 64 << 20
"""The largest non-streamed answer read from a provider (a big embeddings batch)."""


@dataclass(frozen=True, slots=True)
class ProxyOptions:
    """Timeouts are per attempt, except ``deadline_seconds``, which bounds all the attempts
    of one call until its answer starts (failover stops when it has passed).

    ``first_byte_seconds`` covers the wait for a provider's answer: for a non-streamed
    completion that is the whole generation, so it is long. ``idle_seconds`` is the longest
    silence allowed between two chunks of an answer once it has started. ``stall_seconds``
    is the other direction: the longest a streaming client may read nothing while a chunk
    waits for it; past it the client is dropped and the upstream call closed.
    """

    namespace: str = DEFAULT_NAMESPACE
    """The namespace whose default policy serves the unprefixed paths (``/v1/...``) when the
    caller's own namespace (its ServiceAccount's, its API key Secret's) has no default policy,
    or the caller has no namespace (``--auth none``)."""
    connect_seconds: float = DEFAULT_PROXY_CONNECT_SECONDS
    first_byte_seconds: float = DEFAULT_PROXY_FIRST_BYTE_SECONDS
    idle_seconds: float = DEFAULT_PROXY_IDLE_SECONDS
    deadline_seconds: float = DEFAULT_PROXY_DEADLINE_SECONDS
    stall_seconds: float = DEFAULT_STALL_SECONDS
    max_body_bytes: int = DEFAULT_PROXY_MAX_BODY_BYTES
    max_upstream_body_bytes: int = MAX_UPSTREAM_BODY_BYTES

    def __post_init__(self) -> None:
        for name in ("connect_seconds", "first_byte_seconds", "idle_seconds",
                     "deadline_seconds", "stall_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.max_body_bytes < 1 or self.max_upstream_body_bytes < 1:
            raise ValueError("body limits must be positive")


__all__ = ["MAX_UPSTREAM_BODY_BYTES", "ProxyOptions"]
