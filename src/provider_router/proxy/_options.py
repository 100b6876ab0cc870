"""What an operator may tune about proxied calls, with defaults for LLM traffic."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from provider_router.service import STALL_SECONDS

MAX_PROXY_BODY_BYTES: Final = 4 << 20
"""A prompt with a long context, or a batch of embeddings inputs, fits; a flood does not."""
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

    namespace: str = "default"
    """The namespace whose default policy serves the unprefixed paths (``/v1/...``) when the
    caller's own namespace (its ServiceAccount's, its API key Secret's) has no default policy,
    or the caller has no namespace (``--auth none``)."""
    connect_seconds: float = 5.0
    first_byte_seconds: float = 120.0
    idle_seconds: float = 60.0
    deadline_seconds: float = 180.0
    stall_seconds: float = STALL_SECONDS
    max_body_bytes: int = MAX_PROXY_BODY_BYTES
    max_upstream_body_bytes: int = MAX_UPSTREAM_BODY_BYTES

    def __post_init__(self) -> None:
        for name in ("connect_seconds", "first_byte_seconds", "idle_seconds",
                     "deadline_seconds", "stall_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.max_body_bytes < 1 or self.max_upstream_body_bytes < 1:
            raise ValueError("body limits must be positive")


__all__ = ["MAX_PROXY_BODY_BYTES", "MAX_UPSTREAM_BODY_BYTES", "ProxyOptions"]
