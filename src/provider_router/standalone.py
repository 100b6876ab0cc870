"""Standalone mode: the router without Kubernetes, configured by manifest files.

``provider-router serve --manifests PATH`` reads LLMProvider, RoutingPolicy and Secret
manifests, builds a routing table, probes the providers and serves the route API, all in one
event loop. Editing the files reloads them: the new set is applied to the table as a diff, so
circuits, cooldowns, leases and spend survive. A reload that fails validation changes nothing:
the error (file, document, field) is logged and the last good table keeps serving, because a
typo in one file must not take routing down for every workload.

Secrets stay inside this process: their values are handed to the prober for the provider that
references them and appear in no answer, log line or metric.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from provider_router._defaults import (
    DEFAULT_HOST,
    DEFAULT_LEASE_TTL,
    DEFAULT_PORT,
    DEFAULT_STATE_SYNC_MS,
)
from provider_router.access import (
    AuthMode,
    KeysAccess,
    ReviewFailed,
    access_for,
    serve_auth_mode,
    warn_if_open,
)
from provider_router.api import SecretKeyRef
from provider_router.engine import ProviderKey, RoutingTable
from provider_router.health import Prober
from provider_router.manifests import (
    ApplyResult,
    ManifestError,
    ManifestSet,
    apply_manifests,
    load_manifests,
)
from provider_router.proxy import Proxy, ProxyOptions
from provider_router.runtime import Runtime, RuntimeSettings
from provider_router.service import Access, RouteService, Server, ServiceMetrics, tune_gc
from provider_router.sharedstate import SharedState

log = logging.getLogger("provider_router.standalone")


class Standalone:
    """The standalone router: ``await start()``, then ``await stop()`` (or ``async with``)."""

    def __init__(self, manifests: str | os.PathLike[str],
                 settings: RuntimeSettings | None = None, *, watch: bool = True,
                 debounce_ms: int = 200, table: RoutingTable | None = None,
                 access: Access | None = None, host: str | None = None,
                 port: int | None = None, lease_ttl: float | None = None,
                 probe_concurrency: int | None = None,
                 probe_initial_delay: float | None = None, state_url: str | None = None,
                 state_sync_ms: int | None = None, auth: AuthMode | str | None = None,
                 auth_audience: str | None = None,
                 proxy: ProxyOptions | None = None) -> None:
        """``settings`` holds what both modes share; ``host``, ``port``, ``lease_ttl``, the
        probe knobs, the shared-state and the ``--auth`` ones, when given, override its
        fields (a shorthand for tests and embedding). ``access`` overrides ``auth`` with a
        ready ``Access`` (tests tune the caches' lifetimes). ``proxy``: also serve proxy mode on
        the route port, with these options."""
        self.path = Path(manifests)
        self.settings = (settings or RuntimeSettings()).with_changes(
            host=host, port=port, lease_ttl=lease_ttl, probe_concurrency=probe_concurrency,
            probe_initial_delay=probe_initial_delay, state_url=state_url,
            state_sync_ms=state_sync_ms, auth=auth, auth_audience=auth_audience, proxy=proxy)
        self.watch = watch
        self.debounce_ms = debounce_ms
        self.manifests = ManifestSet()
        self.reloads = 0
        """Successful loads that changed the table (the first load counts)."""
        self.failed_reloads = 0
        self.last_error: str | None = None
        self.last_loaded_at: float | None = None
        proxied = self.settings.proxy is not None
        self.auth = serve_auth_mode(self.settings.auth, proxy=proxied)
        audience = self.settings.auth_audience

        def build_access(registry: CollectorRegistry) -> Access:
            if access is not None:
                return access
            warn_if_open(self.auth, proxy=proxied)
            return access_for(self.auth, registry, audience=audience)

        self.runtime = Runtime(self.settings, credential_for=self._credential_for,
                               readiness=self._readiness, table=table, access=build_access)
        self.access = self.runtime.service.access
        self._lock = asyncio.Lock()
        self._stop_watching = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None
        self._started = False

    @property
    def table(self) -> RoutingTable:
        return self.runtime.table

    @property
    def metrics(self) -> ServiceMetrics:
        return self.runtime.metrics

    @property
    def app(self) -> RouteService:
        return self.runtime.service

    @property
    def server(self) -> Server:
        return self.runtime.server

    @property
    def prober(self) -> Prober:
        return self.runtime.prober

    @property
    def proxy(self) -> Proxy | None:
        """Proxy mode, when served."""
        return self.runtime.proxy

    @property
    def shared(self) -> SharedState | None:
        """Budgets, rate limits, cooldowns and circuits shared with other replicas."""
        return self.runtime.shared

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return self.server.url

    async def start(self) -> None:
        """Load the manifests (a ``ManifestError`` here is fatal: there is no last good set
        yet), then serve, probe and watch."""
        manifests = await asyncio.to_thread(load_manifests, self.path)
        if not manifests.providers:
            log.warning("no LLMProvider in %s: every route will fail until one is added",
                        self.path)
        result = self._apply(manifests)
        log.info("loaded %s: %d providers, %d policies, %d secrets", self.path,
                 len(manifests.providers), len(manifests.policies), len(manifests.secrets))
        log.debug("initial load: %s", result.summary())
        await self.runtime.start()
        try:
            self.prober.start()
            if self.watch:
                self._stop_watching.clear()
                self._watcher = asyncio.get_running_loop().create_task(
                    self._watch(), name="manifest-watcher")
        except BaseException:
            await self.server.stop()
            raise
        self._started = True

    async def stop(self) -> None:
        """Stop watching, stop probing (closing the probe client), then stop the server
        gracefully (requests in progress finish). Idempotent."""
        if not self._started:
            return
        self._started = False
        self._stop_watching.set()
        if self._watcher is not None:
            watcher, self._watcher = self._watcher, None
            try:
                await asyncio.wait_for(watcher, timeout=2.0)
            except (TimeoutError, asyncio.CancelledError):
                watcher.cancel()
                with contextlib.suppress(BaseException):
                    await watcher
        await self.runtime.stop()
        log.info("standalone router stopped")

    async def __aenter__(self) -> Standalone:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def run_until(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set or the server dies, then shut down."""
        waiter = asyncio.ensure_future(stop.wait())
        server = asyncio.ensure_future(self.server.wait())
        try:
            await asyncio.wait({waiter, server}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (waiter, server):
                task.cancel()
            await self.stop()

    # -- reloading ---------------------------------------------------------------------------

    async def reload(self) -> bool:
        """Load the manifests again and apply them; False (and the old table kept) if they
        are invalid."""
        async with self._lock:
            try:
                manifests = await asyncio.to_thread(load_manifests, self.path)
            except ManifestError as error:
                self.failed_reloads += 1
                self.last_error = str(error)
                log.error("invalid manifests in %s; still serving the last good set:\n%s",
                          self.path, error)
                return False
            result = self._apply(manifests)
            if result.changed:
                log.info("reloaded %s: %s", self.path, result.summary())
            return True

    def _apply(self, manifests: ManifestSet) -> ApplyResult:
        previous = self.manifests
        result = apply_manifests(self.table, manifests)
        self.manifests = manifests
        if isinstance(self.access, KeysAccess):
            self.access.load(manifests.secrets.values())  # keys rotate like any manifest
        self.last_error = None
        self.last_loaded_at = time.time()
        if result.changed or self.reloads == 0:
            self.reloads += 1
        for entry in result.removed:
            kind, _, qualified = entry.partition(" ")
            if kind == "LLMProvider":
                namespace, _, name = qualified.partition("/")
                self.runtime.forget_provider(namespace, name)
        self.prober.sync()
        self.prober.refresh(_credential_changes(previous, manifests))
        return result

    def _credential_for(self, namespace: str, ref: SecretKeyRef) -> str | None:
        return self.manifests.credential_for(namespace, ref)

    def _readiness(self) -> tuple[bool, dict[str, Any]]:
        details: dict[str, Any] = {
            "manifests": str(self.path),
            "providers": len(self.manifests.providers),
            "policies": len(self.manifests.policies),
            "reloads": self.reloads,
            "failedReloads": self.failed_reloads,
        }
        if self.last_error is not None:
            details["lastError"] = self.last_error
        return self._started, details

    def _accepts(self, change: object, path: str) -> bool:
        if self.path.is_dir():
            return True  # any change may matter (a ConfigMap volume swaps a ..data symlink)
        name = os.path.basename(path)
        return path == str(self.path) or name == self.path.name or name.startswith("..")

    async def _watch(self) -> None:
        from watchfiles import awatch

        while not self._stop_watching.is_set():
            target = self.path if self.path.is_dir() else self.path.parent
            try:
                async for _changes in awatch(target, watch_filter=self._accepts,
                                             debounce=self.debounce_ms, step=50,
                                             stop_event=self._stop_watching,
                                             recursive=self.path.is_dir(),
                                             rust_timeout=500):
                    await self.reload()
            except Exception as error:  # the folder vanished, too many watches, ...
                log.warning("watching %s failed (%s); retrying in 1s", target, error)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop_watching.wait(), timeout=1.0)


def _credential_changes(old: ManifestSet, new: ManifestSet) -> list[ProviderKey]:
    """Providers whose spec is unchanged but whose credential value changed."""
    changed: list[ProviderKey] = []
    for key, provider in new.providers.items():
        ref = provider.spec.credentials_secret_ref
        before = old.providers.get(key)
        if ref is None or before is None or before.spec != provider.spec:
            continue
        if old.credential_for(key[0], ref) != new.credential_for(key[0], ref):
            changed.append(key)
    return changed


def run_loop(main: Coroutine[Any, Any, int]) -> int:
    """Run ``main`` in a fresh event loop: uvloop's if it is installed."""
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


async def serve_until_signalled(manifests: str | os.PathLike[str], host: str = DEFAULT_HOST,
                                port: int = DEFAULT_PORT, *, watch: bool = True,
                                on_ready: Callable[[Standalone], None] | None = None,
                                lease_ttl: float = DEFAULT_LEASE_TTL,
                                state_url: str | None = None,
                                state_sync_ms: int = DEFAULT_STATE_SYNC_MS,
                                auth: str | None = None,
                                auth_audience: str | None = None,
                                proxy: ProxyOptions | None = None) -> int:
    """Serve until SIGTERM or SIGINT; returns the process exit code."""
    settings = RuntimeSettings(host=host, port=port, lease_ttl=lease_ttl, state_url=state_url,
                               state_sync_ms=state_sync_ms, proxy=proxy).with_changes(
        auth=auth, auth_audience=auth_audience)
    try:
        standalone = Standalone(manifests, settings, watch=watch)
    except ReviewFailed as error:
        log.error("%s", error)
        return 1
    try:
        await standalone.start()
    except ManifestError as error:
        log.error("invalid manifests in %s:\n%s", manifests, error)
        return 1
    except OSError as error:
        log.error("cannot listen on %s:%d: %s", host, port, error)
        await standalone.prober.stop()
        return 1
    tune_gc()  # the process's entry point, after the table is loaded: see tune_gc
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, _signalled, stop, sig)
    log.info("standalone router serving %s on %s (Ctrl-C to stop)", manifests, standalone.url)
    if on_ready is not None:
        on_ready(standalone)
    try:
        await standalone.run_until(stop)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    return 0


def _signalled(stop: asyncio.Event, sig: signal.Signals) -> None:
    log.info("received %s, shutting down", sig.name)
    stop.set()


def serve(manifests: str | os.PathLike[str], host: str = DEFAULT_HOST,
          port: int = DEFAULT_PORT, *, watch: bool = True,
          lease_ttl: float = DEFAULT_LEASE_TTL, state_url: str | None = None,
          state_sync_ms: int = DEFAULT_STATE_SYNC_MS, auth: str | None = None,
          auth_audience: str | None = None, proxy: ProxyOptions | None = None) -> int:
    """``provider-router serve``: blocking; returns the exit code."""
    return run_loop(serve_until_signalled(manifests, host, port, watch=watch,
                                          lease_ttl=lease_ttl, state_url=state_url,
                                          state_sync_ms=state_sync_ms, auth=auth,
                                          auth_audience=auth_audience, proxy=proxy))
