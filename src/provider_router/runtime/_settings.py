"""The settings both modes share, with their defaults from ``_defaults``."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from provider_router._defaults import (
    DEFAULT_AUDIENCE,
    DEFAULT_HOST,
    DEFAULT_LEASE_TTL,
    DEFAULT_PORT,
    DEFAULT_PROBE_CONCURRENCY,
    DEFAULT_PROBE_INITIAL_DELAY,
    DEFAULT_STATE_PREFIX,
    DEFAULT_STATE_SYNC_MS,
)
from provider_router.proxy import ProxyOptions


@dataclass(frozen=True)
class RuntimeSettings:
    """What standalone mode and the operator both need to run the route API and probes."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    """0: any free port (the bound one is ``Runtime.server.port``)."""
    lease_ttl: float = DEFAULT_LEASE_TTL
    probe_concurrency: int = DEFAULT_PROBE_CONCURRENCY
    probe_initial_delay: float = DEFAULT_PROBE_INITIAL_DELAY
    state_url: str | None = None
    """Valkey or Redis shared by the replicas for budgets, limits, cooldowns and circuits;
    None keeps all state in this process."""
    state_sync_ms: int = DEFAULT_STATE_SYNC_MS
    state_prefix: str = DEFAULT_STATE_PREFIX
    auth: str | None = None
    """``--auth``: none, kubernetes or keys; None lets the mode pick its default."""
    auth_audience: str = DEFAULT_AUDIENCE
    proxy: ProxyOptions | None = None
    """Serve proxy mode on the route port with these options (None: off)."""

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0-65535, not {self.port}")
        if self.lease_ttl <= 0:
            raise ValueError(f"lease_ttl must be positive, not {self.lease_ttl}")
        if self.probe_concurrency < 1:
            raise ValueError(f"probe_concurrency must be at least 1, not "
                             f"{self.probe_concurrency}")
        if self.probe_initial_delay < 0:
            raise ValueError("probe_initial_delay must not be negative")
        if self.state_sync_ms <= 0:
            raise ValueError(f"state_sync_ms must be positive, not {self.state_sync_ms}")

    def with_changes(self, **changes: Any) -> RuntimeSettings:
        """A copy with ``changes`` applied; None values are ignored (not given)."""
        given = {k: v for k, v in changes.items() if v is not None}
        return replace(self, **given) if given else self
