"""Health probing of providers over HTTP (httpx); results feed the routing engine.

``probe()`` is one probe of one provider; ``Prober`` runs them for a whole routing table on
each provider's interval, with one shared client and bounded concurrency.
``resolve_credential`` and ``auth_headers`` turn a provider's Secret into its request headers,
for the probes and for proxied calls alike.
"""

from provider_router.health._credentials import (
    ANTHROPIC_VERSION,
    CredentialLookup,
    auth_headers,
    resolve_credential,
)
from provider_router.health._probe import probe, probe_url
from provider_router.health._prober import (
    DEFAULT_CONCURRENCY,
    Prober,
    ResultHook,
)

__all__ = [
    "ANTHROPIC_VERSION",
    "DEFAULT_CONCURRENCY",
    "CredentialLookup",
    "Prober",
    "ResultHook",
    "auth_headers",
    "probe",
    "probe_url",
    "resolve_credential",
]
