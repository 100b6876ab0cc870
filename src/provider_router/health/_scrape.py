"""Scraping providers' own load figures: vLLM's Prometheus ``/metrics``, Ollama's ``/api/ps``.

Opt in per provider with ``spec.loadMetrics``. The scrape goes through the prober's client,
under the prober's concurrency bound, with the same credential rules (sent to that provider's
own base URL only, never through an environment proxy, never following a redirect), so turning
it on adds polls but no new way for a credential to leak. A failed scrape records nothing: the
last figures go stale after two intervals and routing falls back to counting leases.

vLLM has exported its KV-cache use under two names (``vllm:gpu_cache_usage_perc`` until 0.8,
``vllm:kv_cache_usage_perc`` since; both are fractions despite the suffix); both are read. A
server running several models (or engines) exports one series per label set: queues add up,
the KV figure is the fullest one.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from provider_router.api import ApiFormat, LLMProviderSpec
from provider_router.engine import LoadSample, ProviderKey, RoutingTable, UnknownProvider
from provider_router.health._credentials import auth_headers
from provider_router.health._loops import ProviderLoops, Sleep, call_hook

log = logging.getLogger(__name__)

RUNNING = "vllm:num_requests_running"
WAITING = "vllm:num_requests_waiting"
KV_CACHE = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
MAX_LOADED_MODELS = 64

SampleHook = Callable[[str, str, LoadSample, bool], Awaitable[None] | None]
"""``on_sample(namespace, name, sample, saturation_flipped)``, after a sample is recorded."""


def load_url(spec: LLMProviderSpec) -> str | None:
    """Where the load figures are: at the server's root, since vLLM and Ollama export them
    beside (not under) the ``/v1`` API a base URL often ends in."""
    path = spec.load_path
    if path is None:
        return None
    base = spec.base_url.rstrip("/")
    if base.endswith("/v1"):
        base = base[:-3]
    return base + path


def parse_vllm_metrics(text: str) -> LoadSample:
    """Running and waiting requests and KV-cache use from vLLM's Prometheus text export."""
    sums: dict[str, float] = {}
    kv: float | None = None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            value = float(sample.value)
            if not math.isfinite(value):
                continue
            if sample.name in (RUNNING, WAITING):
                sums[sample.name] = sums.get(sample.name, 0.0) + max(value, 0.0)
            elif sample.name in KV_CACHE:
                value = min(max(value, 0.0), 1.0)
                kv = value if kv is None else max(kv, value)
    return LoadSample(running=sums.get(RUNNING), waiting=sums.get(WAITING), kv_cache_usage=kv)


def parse_ollama_ps(body: Any) -> LoadSample:
    """The models Ollama has loaded, from ``/api/ps``; it exports no queue figures."""
    models = body.get("models") if isinstance(body, dict) else None
    names: list[str] = []
    for entry in models if isinstance(models, list) else ():
        name = entry.get("name") or entry.get("model") if isinstance(entry, dict) else None
        if isinstance(name, str) and name:
            names.append(name)
    return LoadSample(loaded_models=tuple(sorted(set(names))[:MAX_LOADED_MODELS]))


async def scrape(client: httpx.AsyncClient, spec: LLMProviderSpec,
                 credential: str | None = None) -> LoadSample:
    """One scrape of one provider; raises ``httpx.HTTPError`` or ``ValueError`` on failure."""
    url = load_url(spec)
    if url is None:
        raise ValueError("load metrics are not enabled for this provider")
    timeout = float(min(spec.health_check.timeout_seconds, spec.load_metrics.interval_seconds))
    response = await client.get(url, headers=auth_headers(spec.api_format, credential),
                                timeout=timeout)
    response.raise_for_status()
    if spec.api_format is ApiFormat.OLLAMA:
        return parse_ollama_ps(response.json())
    return parse_vllm_metrics(response.text)


class Scraper:
    """One scrape loop per provider with ``loadMetrics`` on; the ``Prober`` runs one."""

    def __init__(self, table: RoutingTable, *, client: Callable[[], httpx.AsyncClient],
                 semaphore: asyncio.Semaphore,
                 credential: Callable[[str, str, LLMProviderSpec], str | None],
                 on_sample: SampleHook | None = None, jitter: float = 0.1,
                 initial_delay: float = 2.0, rng: random.Random | None = None,
                 sleep: Sleep = asyncio.sleep) -> None:
        self.table = table
        self._client = client
        self._semaphore = semaphore
        self._credential = credential
        self._on_sample = on_sample
        self.scrapes = 0
        self.failures = 0
        self.loops = ProviderLoops(
            table, wanted=lambda spec: spec.load_path is not None, interval=self._interval,
            tick=self.scrape_now, label="scrape", jitter=jitter, initial_delay=initial_delay,
            rng=rng, sleep=sleep)

    @property
    def scraped(self) -> frozenset[ProviderKey]:
        """The providers that currently have a scrape loop."""
        return self.loops.keys

    def _interval(self, key: ProviderKey) -> float:
        return float(self.table.provider(*key).spec.load_metrics.interval_seconds)

    async def scrape_now(self, namespace: str, name: str) -> LoadSample | None:
        """Scrape one provider now and record the figures; None if it failed or is gone."""
        async with self._semaphore:
            try:
                spec = self.table.provider(namespace, name).spec
            except UnknownProvider:
                return None
            if spec.load_path is None:
                return None
            credential = self._credential(namespace, name, spec)
            try:
                sample = await scrape(self._client(), spec, credential)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self.failures += 1
                # The type only: a message could quote a URL carrying a credential.
                log.debug("load scrape of %s/%s failed: %s", namespace, name,
                          type(error).__name__)
                return None
        self.scrapes += 1
        try:
            flipped = self.table.record_load(namespace, name, sample)
        except UnknownProvider:
            return None
        if flipped:
            state = self.table.provider(namespace, name)
            saturated = state.live is not None and state.live.saturated
            log.info("provider %s/%s is %s", namespace, name,
                     "saturated" if saturated else "no longer saturated")
        await call_hook(self._on_sample, "load sample", namespace, name, sample, flipped)
        return sample
