"""Health probing of providers over HTTP (httpx); results feed the routing engine.

``probe()`` is one probe of one provider; ``Prober`` runs them for a whole routing table on
each provider's interval, with one shared client and bounded concurrency. ``probe_client()``
is the one HTTP client configuration for probes (no environment proxies, no redirects).
"""

from provider_router.health._probe import auth_headers, probe, probe_client, probe_url
from provider_router.health._prober import (
    DEFAULT_CONCURRENCY,
    CredentialLookup,
    Prober,
    ResultHook,
    Sleep,
)

__all__ = [
    "DEFAULT_CONCURRENCY",
    "CredentialLookup",
    "Prober",
    "ResultHook",
    "Sleep",
    "auth_headers",
    "probe",
    "probe_client",
    "probe_url",
]
