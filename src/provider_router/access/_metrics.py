"""Counters of who was let in and why not, for the route API's ``/metrics``.

As in the service's own metrics, the hot path bumps plain dict counters and the families are
built at scrape time. Labels are outcomes from fixed sets; a user, a key name or a policy a
caller made up is never a label (the set of callers is unbounded, and a name is personal data).
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

AUTHENTICATED = "authenticated"
MISSING = "missing"
INVALID = "invalid"
ALLOWED = "allowed"
DENIED = "denied"
UNAVAILABLE = "unavailable"
HIT = "hit"
MISS = "miss"
TOKEN = "token"
ACCESS = "access"


class AccessMetrics(Collector):
    """``authn`` and ``authz`` outcomes per request, cache lookups and API server reviews."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.authn: dict[str, int] = dict.fromkeys((AUTHENTICATED, MISSING, INVALID,
                                                    UNAVAILABLE), 0)
        self.authz: dict[str, int] = dict.fromkeys((ALLOWED, DENIED, UNAVAILABLE), 0)
        self.cache: dict[tuple[str, str], int] = {
            (cache, result): 0 for cache in (TOKEN, ACCESS) for result in (HIT, MISS)}
        # (review kind, result): TokenReview / SubjectAccessReview calls and how they ended.
        self.reviews: dict[tuple[str, str], int] = {}
        self.cached_allows = 0
        """Requests allowed from both caches: the hot path bumps this one counter, and it is
        added to authn, authz and both cache hits at scrape time."""

    def register(self, registry: CollectorRegistry) -> None:
        registry.register(self)

    def review(self, kind: str, result: str) -> None:
        key = (kind, result)
        self.reviews[key] = self.reviews.get(key, 0) + 1

    def describe(self) -> Iterable[Metric]:
        return self.collect()

    def collect(self) -> Iterable[Metric]:
        authn = CounterMetricFamily(
            "provider_router_authn_results", "Requests by authentication outcome "
            "(authenticated, missing, invalid credential, or unavailable: no review possible).",
            labels=["mode", "outcome"])
        cached = self.cached_allows
        for outcome, value in list(self.authn.items()):
            authn.add_metric([self.mode, outcome], value + (cached if outcome == AUTHENTICATED
                                                            else 0))
        authz = CounterMetricFamily(
            "provider_router_authz_results", "Authenticated requests by authorization outcome "
            "(allowed, denied, or unavailable: no review possible).",
            labels=["mode", "outcome"])
        for outcome, value in list(self.authz.items()):
            authz.add_metric([self.mode, outcome], value + (cached if outcome == ALLOWED else 0))
        cache = CounterMetricFamily(
            "provider_router_auth_cache", "Lookups of cached token and access reviews.",
            labels=["cache", "result"])
        for (name, result), value in list(self.cache.items()):
            cache.add_metric([name, result], value + (cached if result == HIT else 0))
        reviews = CounterMetricFamily(
            "provider_router_auth_reviews", "Reviews sent to the Kubernetes API server, by kind "
            "and result.", labels=["review", "result"])
        for (kind, result), value in list(self.reviews.items()):
            reviews.add_metric([kind, result], value)
        return [authn, authz, cache, reviews]
