"""Prometheus metrics of proxied calls, in the route API's registry.

Labels are the names of policies and providers (resources of the cluster, and only those a
route resolved: never a name taken from a request that matched nothing), an outcome from
``OutcomeKind`` and a token kind: bounded by the cluster and by code. Models, paths and
callers never become labels.
"""

from __future__ import annotations

from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

MAX_BOUND: Final = 10_000
"""Cached label sets; past this (providers and policies come and go) the cache starts over."""

DURATION_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                           30.0, 60.0, 120.0, 300.0)
TTFT_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                       5.0, 10.0, 30.0)


class ProxyMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ("namespace", "policy", "provider", "outcome")
        self.requests = Counter(
            "provider_router_proxy_requests", "Proxied attempts (one per provider tried) by "
            "policy, provider and outcome.", labels, registry=registry)
        self.duration = Histogram(
            "provider_router_proxy_request_duration_seconds", "Duration of proxied attempts, "
            "to the answer's end.", labels, buckets=DURATION_BUCKETS, registry=registry)
        self.ttft = Histogram(
            "provider_router_proxy_time_to_first_token_seconds", "Time from sending a "
            "proxied request to its answer's first byte (the first event of a stream).",
            ("namespace", "policy", "provider"), buckets=TTFT_BUCKETS, registry=registry)
        self.tokens = Counter(
            "provider_router_proxy_tokens", "Tokens of proxied calls, from the providers' "
            "usage, by kind (input or output).",
            ("namespace", "policy", "provider", "kind"), registry=registry)
        self.streams = Gauge(
            "provider_router_proxy_streams_in_flight", "Proxied streams being relayed now.",
            ("namespace", "policy", "provider"), registry=registry)
        self.unrouted = Counter(
            "provider_router_proxy_unrouted", "Proxied calls answered by the router itself "
            "without reaching a provider, by policy and reason.",
            ("namespace", "policy", "reason"), registry=registry)
        self._bound: dict[tuple[str, str, str], Bound] = {}

    def bound(self, namespace: str, policy: str, provider: str) -> Bound:
        """The metrics of one policy and provider, with their label values resolved once:
        ``labels()`` costs more than the increment it leads to."""
        key = (namespace, policy, provider)
        bound = self._bound.get(key)
        if bound is None:
            if len(self._bound) >= MAX_BOUND:
                self._bound.clear()
            bound = self._bound[key] = Bound(self, key)
        return bound


class Bound:
    __slots__ = ("_duration", "_key", "_metrics", "_requests", "input_tokens",
                 "output_tokens", "streams", "ttft")

    def __init__(self, metrics: ProxyMetrics, key: tuple[str, str, str]) -> None:
        self._metrics = metrics
        self._key = key
        self.ttft = metrics.ttft.labels(*key)
        self.streams = metrics.streams.labels(*key)
        self.input_tokens = metrics.tokens.labels(*key, "input")
        self.output_tokens = metrics.tokens.labels(*key, "output")
        self._requests: dict[str, Any] = {}
        self._duration: dict[str, Any] = {}

    def attempt(self, outcome: str, seconds: float | None) -> None:
        requests = self._requests.get(outcome)
        if requests is None:
            requests = self._requests[outcome] = self._metrics.requests.labels(
                *self._key, outcome)
            self._duration[outcome] = self._metrics.duration.labels(*self._key, outcome)
        requests.inc()
        if seconds is not None:
            self._duration[outcome].observe(seconds)


__all__ = ["Bound", "ProxyMetrics"]
