"""Probing every provider in a routing table, on its own interval, with bounded resources.

One shared ``httpx.AsyncClient`` and one semaphore serve all providers: a table of 1,000
providers must not open 1,000 sockets at once or start 1,000 probes in the same tick, so each
provider's loop starts after a random delay, sleeps its interval with jitter, and waits for a
semaphore slot before each probe. The loop reads the provider's spec from the table at every
probe, so it always probes what the table currently holds; ``sync()`` starts and stops loops as
providers come and go (or turn probing on and off).

Credentials come from a ``credential_for(namespace, secret_ref)`` callable at probe time and go
in that one provider's request headers only. The client ignores proxy environment variables and
never follows redirects, so a credential cannot travel to a host other than the provider's.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType

import httpx

from provider_router.api import LLMProviderSpec
from provider_router.engine import ProbeResult, ProviderKey, RoutingTable, UnknownProvider
from provider_router.health._credentials import CredentialLookup, resolve_credential
from provider_router.health._probe import probe

log = logging.getLogger(__name__)

ResultHook = Callable[[str, str, ProbeResult], Awaitable[None] | None]
"""``on_result(namespace, name, result)``, called after each probe has been recorded."""

DEFAULT_CONCURRENCY = 32
USER_AGENT = "zoey-provider-router health-probe"


def _wanted(spec: LLMProviderSpec) -> bool:
    return not spec.disabled and spec.health_check.enabled


class Prober:
    """Runs one probe loop per probed provider of ``table``; see the module docstring."""

    def __init__(self, table: RoutingTable, *, credential_for: CredentialLookup | None = None,
                 on_result: ResultHook | None = None, concurrency: int = DEFAULT_CONCURRENCY,
                 client: httpx.AsyncClient | None = None, jitter: float = 0.1,
                 initial_delay: float = 2.0, rng: random.Random | None = None) -> None:
        """``client``: bring your own (it is then not closed by ``stop``); by default one is
        made with ``concurrency`` connections. ``jitter``: each sleep is the interval times a
        random factor in ``[1 - jitter, 1 + jitter]``. ``initial_delay``: a loop's first probe
        comes after a random delay of up to this many seconds (capped by the interval), so that
        a large table does not probe everything at once on start."""
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.table = table
        self.concurrency = concurrency
        self._credential_for = credential_for
        self._on_result = on_result
        self._client = client
        self._owns_client = client is None
        self._jitter = max(0.0, min(jitter, 0.9))
        self._initial_delay = max(0.0, initial_delay)
        self._rng = rng or random.Random()
        self._semaphore = asyncio.Semaphore(concurrency)
        self._tasks: dict[ProviderKey, asyncio.Task[None]] = {}
        self._specs: dict[ProviderKey, LLMProviderSpec] = {}
        self._started = False
        self.in_flight = 0
        self.max_in_flight = 0
        """The most probes seen in flight at once since start (for tests and diagnostics)."""

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                limits=httpx.Limits(max_connections=self.concurrency,
                                    max_keepalive_connections=self.concurrency),
                trust_env=False, follow_redirects=False,
                headers={"User-Agent": USER_AGENT})
        return self._client

    @property
    def probed(self) -> frozenset[ProviderKey]:
        """The providers that currently have a probe loop."""
        return frozenset(self._tasks)

    def start(self) -> None:
        """Start loops for the table's providers; needs a running event loop."""
        self._started = True
        self.sync()

    async def stop(self) -> None:
        """Cancel every loop, wait for them, and close the client if this prober made it."""
        self._started = False
        tasks = list(self._tasks.values())
        self._tasks.clear()
        self._specs.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> Prober:
        self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    def sync(self) -> None:
        """Bring the loops in line with the table: start new ones, stop vanished or disabled
        ones, and restart (promptly) those whose spec changed."""
        if not self._started:
            return
        wanted = {s.key: s.spec for s in self.table.providers() if _wanted(s.spec)}
        for key in [k for k in self._tasks if k not in wanted]:
            self._cancel(key)
        for key, spec in wanted.items():
            old = self._specs.get(key)
            if old is None:
                self._launch(key, spec, self._first_delay(key))
            elif old != spec:
                self._cancel(key)
                self._launch(key, spec, 0.0)

    def refresh(self, keys: Iterable[ProviderKey]) -> None:
        """Probe these providers again soon, e.g. because their credential changed."""
        for key in keys:
            spec = self._specs.get(key)
            if spec is not None:
                self._cancel(key)
                self._launch(key, spec, 0.0)

    def _launch(self, key: ProviderKey, spec: LLMProviderSpec, delay: float) -> None:
        self._specs[key] = spec
        self._tasks[key] = asyncio.get_running_loop().create_task(
            self._loop(key, delay), name=f"probe {key[0]}/{key[1]}")

    def _cancel(self, key: ProviderKey) -> None:
        task = self._tasks.pop(key, None)
        self._specs.pop(key, None)
        if task is not None:
            task.cancel()

    def _first_delay(self, key: ProviderKey) -> float:
        try:
            interval = self.table.probe_interval(*key)
        except UnknownProvider:
            return 0.0
        return self._rng.uniform(0.0, min(self._initial_delay, interval))

    # -- probing -----------------------------------------------------------------------------

    async def _loop(self, key: ProviderKey, delay: float) -> None:
        if delay > 0:
            await asyncio.sleep(delay)
        while True:
            await self.probe_now(*key)
            try:
                interval = self.table.probe_interval(*key)
            except UnknownProvider:
                return  # removed; sync() will forget the task
            await asyncio.sleep(interval * self._rng.uniform(1 - self._jitter,
                                                              1 + self._jitter))

    async def probe_now(self, namespace: str, name: str) -> ProbeResult | None:
        """Probe one provider now (within the concurrency bound), record the verdict in the
        table and call the hook. None if the provider is gone or is not to be probed."""
        async with self._semaphore:
            try:
                spec = self.table.provider(namespace, name).spec
            except UnknownProvider:
                return None
            if not _wanted(spec):
                return None
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                result = await self._probe(namespace, name, spec)
            finally:
                self.in_flight -= 1
        try:
            before = self.table.provider(namespace, name).health
            state = self.table.record_probe(namespace, name, result)
        except UnknownProvider:
            return None  # removed while the probe was in flight
        log.debug("probe %s/%s: %s %s", namespace, name, result.reason, result.message)
        if state.health is not before:
            level = logging.INFO if result.ok else logging.WARNING
            log.log(level, "provider %s/%s is now %s: %s", namespace, name,
                    state.health.value, result.message or result.reason)
        await self._notify(namespace, name, result)
        return result

    async def _probe(self, namespace: str, name: str, spec: LLMProviderSpec) -> ProbeResult:
        credential = resolve_credential(self._credential_for, namespace, name, spec)
        try:
            return await probe(self.client, spec, credential)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            # probe() maps the expected failures; anything else is still a failed probe.
            message = f"probe failed: {type(error).__name__}"
            return ProbeResult(False, None, "ProbeError", message)

    async def _notify(self, namespace: str, name: str, result: ProbeResult) -> None:
        if self._on_result is None:
            return
        try:
            outcome = self._on_result(namespace, name, result)
            if inspect.isawaitable(outcome):
                await outcome
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("probe result hook failed for %s/%s", namespace, name)

