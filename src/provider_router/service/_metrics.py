"""Prometheus metrics of the route API, in a registry of its own.

The hot path only bumps plain dict counters (a fraction of a microsecond); they become metric
families at scrape time, together with gauges read straight from the routing table (circuit,
in-flight, availability, spend), so nothing is kept twice and nothing can go stale. Labels are
names of LLMProvider and RoutingPolicy objects, outcomes and reasons: sets bounded by the
cluster's resources and by code. Nothing a request makes up (session keys, lease ids, model
names, unknown policy names) ever becomes a label.

Scrapes must run on the event loop that serves the table (the app's ``/metrics`` does), since
the engine is not thread-safe.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from provider_router.api import CircuitState
from provider_router.engine import Candidate, ProbeResult, RoutingTable, reasons

CIRCUIT_VALUES = {CircuitState.CLOSED: 0, CircuitState.HALF_OPEN: 1, CircuitState.OPEN: 2}
"""Gauge encoding of a circuit: larger is worse, so ``max by (provider)`` alerts read well."""

PROBE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

ROUTED = "routed"
UNAVAILABLE = "unavailable"


class ServiceMetrics:
    """Counters of what the route API decided and heard, plus the operator's and prober's
    hooks: ``observe_probe`` and ``set_table_stale``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._table: RoutingTable | None = None
        # (namespace, policy, provider, outcome); provider is "" when nothing was available.
        self.decisions: dict[tuple[str, str, str, str], int] = {}
        # (namespace, policy, reason)
        self.exclusions: dict[tuple[str, str, str], int] = {}
        # (namespace, provider, outcome)
        self.reports: dict[tuple[str, str, str], int] = {}
        # (endpoint, code): endpoint is a known path or "other"
        self.requests: dict[tuple[str, int], int] = {}
        self._probes = Counter(
            "provider_router_probe_results", "Health probe results by provider, result "
            "(success or failure) and reason.",
            ["namespace", "provider", "result", "reason"], registry=self.registry)
        self._probe_latency = Histogram(
            "provider_router_probe_latency_seconds", "Latency of health probes that got an "
            "answer.", ["namespace", "provider"], buckets=PROBE_BUCKETS, registry=self.registry)
        self._stale = Gauge(
            "provider_router_table_stale", "1 while the routing table may be out of date "
            "(the operator lost its watch), else 0.", registry=self.registry)
        self._stalled = Counter(
            "provider_router_stalled_streams", "Streamed answers whose client read nothing "
            "for the stream's stall bound: the connection was aborted and the upstream call "
            "closed.", registry=self.registry)
        self.registry.register(_Derived(self))

    def bind(self, table: RoutingTable) -> None:
        """Read table-derived gauges from ``table`` (done by ``create_app``)."""
        self._table = table

    @property
    def table(self) -> RoutingTable | None:
        return self._table

    # -- hooks for the prober and the operator -----------------------------------------------

    def observe_probe(self, namespace: str, name: str, result: ProbeResult) -> None:
        outcome = "success" if result.ok else "failure"
        self._probes.labels(namespace, name, outcome, result.reason).inc()
        if result.latency_ms is not None:
            self._probe_latency.labels(namespace, name).observe(result.latency_ms / 1000.0)

    def set_table_stale(self, stale: bool) -> None:
        self._stale.set(1 if stale else 0)

    def forget_provider(self, namespace: str, name: str) -> None:
        """Drop a deleted provider's series, so dashboards do not show it forever."""
        for report in [k for k in self.reports if k[0] == namespace and k[1] == name]:
            del self.reports[report]
        for decision in [k for k in self.decisions if k[0] == namespace and k[2] == name]:
            del self.decisions[decision]
        for metric in (self._probes, self._probe_latency):
            for labels in _label_sets(metric, namespace, name):
                metric.remove(*labels)

    # -- recorded by the app and its server ---------------------------------------------

    def count_stalled_stream(self) -> None:
        self._stalled.inc()

    def count_unavailable(self, namespace: str, policy: str,
                          excluded: Mapping[str, int]) -> None:
        """An unavailable answer, and every exclusion behind it (``excluded``: per reason)."""
        decision = (namespace, policy, "", UNAVAILABLE)
        self.decisions[decision] = self.decisions.get(decision, 0) + 1
        self._add_exclusions(namespace, policy, excluded.items())

    def count_exclusions(self, namespace: str, policy: str,
                         candidates: Iterable[Candidate]) -> None:
        self._add_exclusions(namespace, policy,
                             ((reason, 1) for c in candidates for reason in c.reasons))

    def _add_exclusions(self, namespace: str, policy: str,
                        counts: Iterable[tuple[str, int]]) -> None:
        exclusions = self.exclusions
        for reason, count in counts:
            key = (namespace, policy, reason)
            exclusions[key] = exclusions.get(key, 0) + count


def _label_sets(metric: Counter | Histogram, namespace: str,
                name: str) -> list[tuple[str, ...]]:
    # prometheus-client has no public "remove by partial labels"; read the children it keeps.
    children: dict[tuple[str, ...], object] = getattr(metric, "_metrics", {})
    return [labels for labels in list(children) if labels[:2] == (namespace, name)]


class _Derived(Collector):
    """Families built at scrape time from the app's counters and the live table."""

    def __init__(self, metrics: ServiceMetrics) -> None:
        self._m = metrics

    def describe(self) -> Iterable[Metric]:
        # Without this, registering would call collect(), reading a table that may not exist.
        return list(self._families(None))

    def collect(self) -> Iterable[Metric]:
        return list(self._families(self._m.table))

    def _families(self, table: RoutingTable | None) -> Iterator[Metric]:
        m = self._m
        decisions = CounterMetricFamily(
            "provider_router_route_decisions", "Route decisions by policy, chosen provider and "
            "outcome (routed, or unavailable with an empty provider).",
            labels=["namespace", "policy", "provider", "outcome"])
        for labels, value in list(m.decisions.items()):
            decisions.add_metric(list(labels), value)
        yield decisions
        exclusions = CounterMetricFamily(
            "provider_router_route_exclusions", "Candidates excluded from decisions that were "
            "explained (explain=true, or no provider available), by reason.",
            labels=["namespace", "policy", "reason"])
        for reason, value in list(m.exclusions.items()):
            exclusions.add_metric(list(reason), value)
        yield exclusions
        reports = CounterMetricFamily(
            "provider_router_reported_outcomes", "Outcomes reported by workloads, by provider.",
            labels=["namespace", "provider", "outcome"])
        for report, value in list(m.reports.items()):
            reports.add_metric(list(report), value)
        yield reports
        requests = CounterMetricFamily(
            "provider_router_http_requests", "Requests to the route API by endpoint and status.",
            labels=["endpoint", "code"])
        for (endpoint, code), value in list(m.requests.items()):
            requests.add_metric([endpoint, str(code)], value)
        yield requests
        yield from _table_families(table)


def _table_families(table: RoutingTable | None) -> Iterator[Metric]:
    circuit = GaugeMetricFamily(
        "provider_router_provider_circuit_state", "Circuit breaker state: 0 closed, "
        "1 half-open, 2 open.", labels=["namespace", "provider"])
    available = GaugeMetricFamily(
        "provider_router_provider_available", "1 if the provider is eligible for routing.",
        labels=["namespace", "provider"])
    in_flight = GaugeMetricFamily(
        "provider_router_provider_in_flight", "Leases in flight per provider.",
        labels=["namespace", "provider"])
    excluded = GaugeMetricFamily(
        "provider_router_providers_excluded", "Providers currently excluded from routing, "
        "by reason.", labels=["reason"])
    leases = GaugeMetricFamily(
        "provider_router_leases_in_flight", "Route leases not yet reported or expired.")
    evicted = CounterMetricFamily(
        "provider_router_leases_evicted", "Route leases released before their TTL because "
        "the router held its maximum number of outstanding leases.")
    spend = CounterMetricFamily(
        "provider_router_policy_spend_usd", "Spend charged to each policy, in USD.",
        labels=["namespace", "policy"])
    queue = GaugeMetricFamily(
        "provider_router_provider_queue", "The provider's own queue (running + waiting) at "
        "its last fresh load scrape; absent without fresh figures.",
        labels=["namespace", "provider"])
    kv_cache = GaugeMetricFamily(
        "provider_router_provider_kv_cache_usage", "The provider's own KV-cache use (0-1) at "
        "its last fresh load scrape; absent without fresh figures.",
        labels=["namespace", "provider"])
    if table is not None:
        now = table.clock()
        by_reason: dict[str, int] = {}
        for state in table.providers():
            labels = [state.key[0], state.key[1]]
            circuit.add_metric(labels, CIRCUIT_VALUES[state.breaker.state(now)])
            available.add_metric(labels, 0 if state.blocks else 1)
            in_flight.add_metric(labels, state.in_flight)
            live = state.live
            if live is not None and live.sample is not None and live.fresh(now):
                if live.sample.queue is not None:
                    queue.add_metric(labels, live.sample.queue)
                if live.sample.kv_cache_usage is not None:
                    kv_cache.add_metric(labels, live.sample.kv_cache_usage)
            for reason in reasons(state.blocks):
                by_reason[reason] = by_reason.get(reason, 0) + 1
        for reason, count in sorted(by_reason.items()):
            excluded.add_metric([reason], count)
        leases.add_metric([], table.in_flight_leases())
        evicted.add_metric([], table.leases_evicted)
        for policy in table.policies():
            spend.add_metric([policy.key[0], policy.key[1]], policy.spend_total)
    yield from (circuit, available, in_flight, queue, kv_cache, excluded, leases, evicted,
                spend)
