"""Health probing of providers over HTTP (httpx); results feed the routing engine.

``probe()`` is one probe of one provider; ``Prober`` runs them for a whole routing table on
each provider's interval, with one shared client and bounded concurrency. Its ``Scraper``
reads the live load of providers with ``loadMetrics`` on (vLLM ``/metrics``, Ollama
``/api/ps``) the same way. ``probe_client()`` is the one HTTP client configuration for probes
(no environment proxies, no redirects). ``resolve_credential`` and ``auth_headers`` turn a
provider's Secret into its request headers, for the probes and for proxied calls alike.
"""

from provider_router.health._credentials import (
    ANTHROPIC_VERSION,
    CredentialLookup,
    auth_headers,
    resolve_credential,
)
from provider_router.health._loops import ProviderLoops, Sleep
from provider_router.health._probe import models_in, probe, probe_client, probe_url
from provider_router.health._prober import (
    DEFAULT_CONCURRENCY,
    Prober,
    ResultHook,
)
from provider_router.health._scrape import (
    SampleHook,
    Scraper,
    load_url,
    parse_ollama_ps,
    parse_vllm_metrics,
    scrape,
)

__all__ = [
    "ANTHROPIC_VERSION",
    "DEFAULT_CONCURRENCY",
    "CredentialLookup",
    "Prober",
    "ProviderLoops",
    "ResultHook",
    "SampleHook",
    "Scraper",
    "Sleep",
    "auth_headers",
    "load_url",
    "models_in",
    "parse_ollama_ps",
    "parse_vllm_metrics",
    "probe",
    "probe_client",
    "probe_url",
    "resolve_credential",
    "scrape",
]
