"""``/metrics``: the families exist after traffic, carry the right values, and never take a
label from what a request made up."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from provider_router.engine import ProbeResult, RoutingTable
from provider_router.service import ServiceMetrics, create_app

from .conftest import Api, FakeClock, provider_spec

FAMILIES = {
    "provider_router_route_decisions",
    "provider_router_route_exclusions",
    "provider_router_reported_outcomes",
    "provider_router_http_requests",
    "provider_router_provider_circuit_state",
    "provider_router_provider_available",
    "provider_router_provider_in_flight",
    "provider_router_providers_excluded",
    "provider_router_leases_in_flight",
    "provider_router_leases_evicted",
    "provider_router_policy_spend_usd",
    "provider_router_probe_results",
    "provider_router_probe_latency_seconds",
    "provider_router_table_stale",
}


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
           **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metric_families_after_traffic(api: Api) -> None:
    api.add_provider("good", costPer1kTokens=2.0)
    api.add_provider("bad", costPer1kTokens=5.0)
    api.add_policy("p", default=True, strategy="Cost")
    lease = (await api.route_ok(session="secret-session-123", model="secret-model-x"))["leaseId"]
    await api.report(leaseId=lease, outcome="success", inputTokens=500, outputTokens=500)
    await api.route_ok()  # holds a lease
    for _ in range(3):
        await api.report(provider="bad", outcome="error")
    await api.route(policy="made-up-policy")
    await api.report(leaseId="made-up-lease", outcome="error")
    api.add_provider("good", costPer1kTokens=2.0, disabled=True)
    assert (await api.route()).status_code == 503
    api.app.metrics.observe_probe("default", "good", ProbeResult(True, 25.0))
    api.app.metrics.observe_probe("default", "bad", ProbeResult(False, None, "Timeout", "x"))
    api.app.metrics.set_table_stale(True)

    response = await api.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    families = {f.name for f in text_string_to_metric_families(text)}
    assert families >= FAMILIES
    for made_up in ("secret-session-123", "secret-model-x", "made-up-policy", "made-up-lease"):
        assert made_up not in text
    s = _samples(text)
    assert _value(s, "provider_router_route_decisions_total", namespace="default", policy="p",
                  provider="good", outcome="routed") == 2
    assert _value(s, "provider_router_route_decisions_total", namespace="default", policy="p",
                  provider="", outcome="unavailable") == 1
    assert _value(s, "provider_router_route_exclusions_total", namespace="default",
                  policy="p", reason="CircuitOpen") == 1
    assert _value(s, "provider_router_route_exclusions_total", namespace="default",
                  policy="p", reason="Disabled") == 1
    assert _value(s, "provider_router_reported_outcomes_total", namespace="default",
                  provider="bad", outcome="error") == 3
    assert _value(s, "provider_router_reported_outcomes_total", namespace="default",
                  provider="good", outcome="success") == 1
    assert _value(s, "provider_router_provider_circuit_state", namespace="default",
                  provider="bad") == 2
    assert _value(s, "provider_router_provider_circuit_state", namespace="default",
                  provider="good") == 0
    assert _value(s, "provider_router_provider_available", namespace="default",
                  provider="good") == 0
    assert _value(s, "provider_router_provider_in_flight", namespace="default",
                  provider="good") == 1
    assert _value(s, "provider_router_providers_excluded", reason="CircuitOpen") == 1
    assert _value(s, "provider_router_leases_in_flight") == 1
    assert _value(s, "provider_router_policy_spend_usd_total", namespace="default",
                  policy="p") == 2.0
    assert _value(s, "provider_router_probe_results_total", namespace="default",
                  provider="good", result="success", reason="ProbeSucceeded") == 1
    assert _value(s, "provider_router_probe_results_total", namespace="default",
                  provider="bad", result="failure", reason="Timeout") == 1
    assert _value(s, "provider_router_probe_latency_seconds_count", namespace="default",
                  provider="good") == 1
    assert _value(s, "provider_router_probe_latency_seconds_sum", namespace="default",
                  provider="good") == 0.025
    assert _value(s, "provider_router_table_stale") == 1
    assert _value(s, "provider_router_http_requests_total", endpoint="/v1/route",
                  code="404") == 1
    assert _value(s, "provider_router_http_requests_total", endpoint="/v1/report",
                  code="404") == 1


async def test_each_app_has_its_own_registry() -> None:
    first = create_app(RoutingTable(clock=FakeClock()))
    second = create_app(RoutingTable(clock=FakeClock()))
    assert first.metrics.registry is not second.metrics.registry
    first.metrics.set_table_stale(True)
    assert first.metrics.registry.get_sample_value("provider_router_table_stale") == 1
    assert second.metrics.registry.get_sample_value("provider_router_table_stale") == 0
    # A caller-made ServiceMetrics is the one the app reports into.
    shared = ServiceMetrics()
    app = create_app(RoutingTable(clock=FakeClock()), metrics=shared)
    assert app.metrics is shared


async def test_forget_provider_drops_its_series(api: Api) -> None:
    api.add_provider("gone")
    api.add_policy("p", default=True)
    await api.route_ok()
    await api.report(provider="gone", outcome="success")
    api.app.metrics.observe_probe("default", "gone", ProbeResult(True, 5.0))
    api.table.remove_provider("default", "gone")
    api.app.metrics.forget_provider("default", "gone")
    text = (await api.client.get("/metrics")).text
    assert 'provider="gone"' not in text


async def test_metrics_scrape_on_an_empty_table(api: Api) -> None:
    response = await api.client.get("/metrics")
    assert response.status_code == 200
    s = _samples(response.text)
    assert _value(s, "provider_router_leases_in_flight") == 0


async def test_many_scrapes_and_routes_interleave(api: Api) -> None:
    api.table.upsert_provider("default", "a", provider_spec("a"), {})
    api.add_policy("p", default=True)
    async with httpx.AsyncClient(base_url=api.server.url) as other:
        for _ in range(5):
            await api.route_ok(lease=False)
            assert (await other.get("/metrics")).status_code == 200
