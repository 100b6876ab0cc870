"""Prometheus metrics of proxied calls, in the route API's registry.

Labels are the names of policies and providers (resources of the cluster, and only those a
route resolved: never a name taken from a request that matched nothing), an outcome from
``OutcomeKind`` and a token kind: bounded by the cluster and by code. Models, paths and
callers never become labels.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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


__all__ = ["ProxyMetrics"]
