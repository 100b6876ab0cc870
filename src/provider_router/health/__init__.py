"""Health probing of providers over HTTP (httpx); results feed the routing engine.

``probe()`` is one probe of one provider; ``Prober`` runs them for a whole routing table on
each provider's interval, with one shared client and bounded concurrency.
"""

from provider_router.health._probe import auth_headers, probe, probe_url
from provider_router.health._prober import (
    DEFAULT_CONCURRENCY,
    CredentialLookup,
    Prober,
    ResultHook,
)

__all__ = [
    "DEFAULT_CONCURRENCY",
    "CredentialLookup",
    "Prober",
    "ResultHook",
    "auth_headers",
    "probe",
    "probe_url",
]
