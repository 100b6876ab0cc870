"""``Runtime``: the routing table, metrics, route API, server, prober and shared state, wired
once.

Both modes build one: standalone mode fills its table from manifest files, the operator from
the API server, and each hands in how credentials are looked up and when it is ready. Every
other part, and how the parts are joined, is the same in both.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry

from provider_router.api import SecretKeyRef
from provider_router.engine import ProbeResult, RoutingTable
from provider_router.health import Prober, SampleHook
from provider_router.proxy import Proxy
from provider_router.runtime._settings import RuntimeSettings
from provider_router.service import Access, Readiness, RouteService, Server, ServiceMetrics
from provider_router.sharedstate import SharedState

log = logging.getLogger(__name__)

CredentialLookup = Callable[[str, SecretKeyRef], str | None]
AccessFactory = Callable[[CollectorRegistry], Access]
"""Builds the mode's ``Access`` with the registry its counters join (``/metrics``)."""
ProbeHook = Callable[[str, str, ProbeResult], None]


class Runtime:
    """The shared parts of a running router. ``start()`` serves; ``stop()`` stops probing and
    serving (requests in progress finish)."""

    def __init__(self, settings: RuntimeSettings, *, credential_for: CredentialLookup,
                 readiness: Readiness, on_probe: ProbeHook | None = None,
                 on_sample: SampleHook | None = None, table: RoutingTable | None = None,
                 access: AccessFactory | None = None) -> None:
        self.settings = settings
        self.table = table if table is not None else RoutingTable(lease_ttl=settings.lease_ttl)
        self.metrics = ServiceMetrics()
        self._readiness = readiness
        self.shared = (SharedState(self.table, settings.state_url,
                                   sync_ms=settings.state_sync_ms,
                                   registry=self.metrics.registry, prefix=settings.state_prefix)
                       if settings.state_url else None)
        """Budgets, rate limits, cooldowns and circuits shared with the other replicas."""
        self.service = RouteService(
            self.table, readiness=self.readiness, metrics=self.metrics,
            access=access(self.metrics.registry) if access is not None else None)
        self.server = Server(self.service, settings.host, settings.port)
        self.proxy: Proxy | None = None
        """Proxy mode, mounted on the route API (same port, access and metrics registry)."""
        if settings.proxy is not None:
            self.proxy = Proxy(self.service, credential_for=credential_for,
                               options=settings.proxy)
            self.proxy.mount()
        self._on_probe = on_probe
        self.prober = Prober(self.table, credential_for=credential_for, on_result=self._probed,
                             concurrency=settings.probe_concurrency,
                             initial_delay=settings.probe_initial_delay,
                             on_sample=on_sample)

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """The mode's readiness, with the shared state's (never its URL) in the details."""
        ready, details = self._readiness()
        if self.shared is not None:
            details = {**details, **self.shared.status()}
        return ready, details

    def _probed(self, namespace: str, name: str, result: ProbeResult) -> None:
        self.metrics.observe_probe(namespace, name, result)
        if self._on_probe is not None:
            self._on_probe(namespace, name, result)

    def forget_provider(self, namespace: str, name: str) -> None:
        """A provider left the table: drop what is kept about it outside the engine."""
        self.metrics.forget_provider(namespace, name)

    async def start(self) -> None:
        """Serve, then join the shared state (which never blocks routing: an unreachable
        store is reported, not waited for)."""
        await self.server.start()
        if self.shared is not None:
            try:
                await self.shared.start()
            except BaseException:
                await self.server.stop()
                raise

    async def stop(self) -> None:
        await self.prober.stop()
        if self.shared is not None:
            await self.shared.stop()
        await self.server.stop()
        if self.proxy is not None:
            await self.proxy.close()
        close = getattr(self.service.access, "aclose", None)
        if close is not None:  # an access that holds connections (reviews)
            await close()
