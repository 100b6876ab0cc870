"""Probing every provider in a routing table, on its own interval, with bounded resources.

One shared ``httpx.AsyncClient`` and one semaphore serve all providers, for probes and load
scrapes alike: a table of 1,000
providers must not open 1,000 sockets at once or start 1,000 probes in the same tick, so each
provider's loop starts after a random delay, sleeps its interval with jitter, and waits for a
semaphore slot before each probe. The loop reads the provider's spec from the table at every
probe, so it always probes what the table currently holds; ``sync()`` starts and stops loops as
providers come and go (or turn probing on and off).

Credentials come from a ``credential_for(namespace, secret_ref)`` callable at probe time and go
in that one provider's request headers only. The client (``probe_client()``) ignores proxy
environment variables and never follows redirects, so a credential cannot travel to a host other
than the provider's.

Waiting goes through an injectable ``sleep`` (``asyncio.sleep`` by default), so that tests can
run the loops on virtual time and check the intervals asked for instead of measuring them.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType

import httpx

from provider_router.api import LLMProviderSpec
from provider_router.engine import ProbeResult, ProviderKey, RoutingTable, UnknownProvider
from provider_router.health._credentials import CredentialLookup, resolve_credential
from provider_router.health._loops import ProviderLoops, Sleep, call_hook
from provider_router.health._probe import probe, probe_client
from provider_router.health._scrape import SampleHook, Scraper

log = logging.getLogger(__name__)

ResultHook = Callable[[str, str, ProbeResult], Awaitable[None] | None]
"""``on_result(namespace, name, result)``, called after each probe has been recorded."""

DEFAULT_CONCURRENCY = 32


def _wanted(spec: LLMProviderSpec) -> bool:
    return not spec.disabled and spec.health_check.enabled


class Prober:
    """Runs one probe loop per probed provider of ``table``; see the module docstring."""

    def __init__(self, table: RoutingTable, *, credential_for: CredentialLookup | None = None,
                 on_result: ResultHook | None = None, concurrency: int = DEFAULT_CONCURRENCY,
                 client: httpx.AsyncClient | None = None, jitter: float = 0.1,
                 initial_delay: float = 2.0, rng: random.Random | None = None,
                 on_sample: SampleHook | None = None, sleep: Sleep = asyncio.sleep) -> None:
        """``client``: bring your own (it is then not closed by ``stop``); by default one is
        made with ``concurrency`` connections. ``jitter``: each sleep is the interval times a
        random factor in ``[1 - jitter, 1 + jitter]``. ``initial_delay``: a loop's first probe
        comes after a random delay of up to this many seconds (capped by the interval), so that
        a large table does not probe everything at once on start. ``on_sample``: called
        after each load scrape is recorded. ``sleep``: how to wait (tests pass a virtual
        clock's)."""
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.table = table
        self.concurrency = concurrency
        self._credential_for = credential_for
        self._on_result = on_result
        self._client = client
        self._owns_client = client is None
        rng = rng or random.Random()
        self._semaphore = asyncio.Semaphore(concurrency)
        self._loops = ProviderLoops(
            table, wanted=_wanted, interval=lambda key: table.probe_interval(*key),
            tick=self.probe_now, label="probe", jitter=jitter, initial_delay=initial_delay,
            rng=rng, sleep=sleep)
        self.scraper = Scraper(
            table, client=lambda: self.client, semaphore=self._semaphore,
            credential=self._credential, on_sample=on_sample, jitter=jitter,
            initial_delay=initial_delay, rng=rng, sleep=sleep)
        """Load scraping (``spec.loadMetrics``), sharing this prober's client, concurrency
        bound and credential rules; started, synced and stopped with it."""
        self.in_flight = 0
        self.max_in_flight = 0
        """The most probes seen in flight at once since start (for tests and diagnostics)."""

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = probe_client(self.concurrency)
        return self._client

    @property
    def probed(self) -> frozenset[ProviderKey]:
        """The providers that currently have a probe loop."""
        return self._loops.keys

    @property
    def scraped(self) -> frozenset[ProviderKey]:
        """The providers that currently have a load-scrape loop (``spec.loadMetrics``)."""
        return self.scraper.scraped

    def start(self) -> None:
        """Start loops for the table's providers; needs a running event loop."""
        self._loops.start()
        self.scraper.loops.start()

    async def stop(self) -> None:
        """Cancel every loop, wait for them, and close the client if this prober made it."""
        await self._loops.stop()
        await self.scraper.loops.stop()
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
        self._loops.sync()
        self.scraper.loops.sync()

    def refresh(self, keys: Iterable[ProviderKey]) -> None:
        """Probe (and scrape) these providers again soon, e.g. because their credential
        changed."""
        keys = list(keys)
        self._loops.refresh(keys)
        self.scraper.loops.refresh(keys)

    # -- probing -----------------------------------------------------------------------------

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
        await call_hook(self._on_result, "probe result", namespace, name, result)
        return result

    def _credential(self, namespace: str, name: str, spec: LLMProviderSpec) -> str | None:
        """The provider's credential, for its own probes and scrapes only."""
        return resolve_credential(self._credential_for, namespace, name, spec)

    async def _probe(self, namespace: str, name: str, spec: LLMProviderSpec) -> ProbeResult:
        credential = self._credential(namespace, name, spec)
        try:
            return await probe(self.client, spec, credential)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            # probe() maps the expected failures; anything else is still a failed probe.
            message = f"probe failed: {type(error).__name__}"
            return ProbeResult(False, None, "ProbeError", message)

