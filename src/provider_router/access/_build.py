"""The ``Access`` of an ``--auth`` mode, built the same way for ``serve`` and ``operator``."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry

from provider_router.access._keys import KeysAccess
from provider_router.access._kubernetes import (
    ALLOW_TTL,
    DEFAULT_AUDIENCE,
    REFUSE_TTL,
    KubernetesAccess,
)
from provider_router.access._metrics import AccessMetrics
from provider_router.access._mode import AuthMode
from provider_router.access._reviews import ReviewClient
from provider_router.service import Access, OpenAccess


def access_for(mode: AuthMode, registry: CollectorRegistry, *,
               reviews: Callable[[], ReviewClient] = ReviewClient.load,
               audience: str | None = None, allow_ttl: float = ALLOW_TTL,
               refuse_ttl: float = REFUSE_TTL) -> Access:
    """``mode``'s ``Access``, its counters registered in ``registry`` (the route API's).
    ``reviews`` makes the API server client for ``kubernetes`` (default: in-cluster config,
    else ``$KUBECONFIG``); ``KeysAccess`` starts empty until its manifests are loaded."""
    if mode is AuthMode.NONE:
        return OpenAccess()
    counters = AccessMetrics(mode.value)
    counters.register(registry)
    if mode is AuthMode.KEYS:
        return KeysAccess(metrics=counters)
    return KubernetesAccess(reviews(), audiences=(audience or DEFAULT_AUDIENCE,),
                            metrics=counters, allow_ttl=allow_ttl, refuse_ttl=refuse_ttl)
