"""The figures as the route API shows them: ``/v1/providers``, ``explain=true``, ``/metrics``."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from provider_router.api import LLMProviderSpec, RoutingPolicySpec
from provider_router.engine import LoadSample, RateLimitInfo, RoutingTable
from provider_router.service import ProvidersOut, Server, ServiceMetrics, create_app
from support.engine import FakeClock


async def test_listing_explain_and_metrics_show_the_figures(table: RoutingTable,
                                                            clock: FakeClock) -> None:
    for name in ("gpu", "plain"):
        table.upsert_provider("ns", name, LLMProviderSpec.model_validate({
            "baseURL": f"http://{name}:8000", "apiFormat": "vllm",
            "healthCheck": {"enabled": False},
            "loadMetrics": {"enabled": name == "gpu", "intervalSeconds": 5}}))
    table.upsert_policy("ns", "p", RoutingPolicySpec.model_validate(
        {"strategy": "LeastLoaded", "default": True}))
    table.record_load("ns", "gpu", LoadSample(running=3, waiting=2, kv_cache_usage=0.5))
    table.record_rate_limit("ns", "gpu", RateLimitInfo(remaining_requests=7,
                                                       reset_requests_seconds=30))
    clock.advance(1.0)
    async with Server(create_app(table, metrics=ServiceMetrics()), "127.0.0.1", 0) as server, \
            httpx.AsyncClient(base_url=server.url, timeout=10.0) as client:
        listing = (await client.get("/v1/providers", params={"namespace": "ns"})).json()
        explained = (await client.get("/v1/route", params={
            "namespace": "ns", "explain": "true", "lease": "false"})).json()
        metrics = (await client.get("/metrics")).text
    ProvidersOut.model_validate(listing)  # the documented shape
    gpu = next(p for p in listing["providers"] if p["name"] == "gpu")
    assert gpu["load"] == {
        "fresh": True, "ageSeconds": 1.0, "running": 3.0, "waiting": 2.0,
        "kvCacheUsage": 0.5, "loadedModels": [], "queueLoad": 0.05, "saturated": False,
        "remainingRequests": 7, "remainingTokens": None, "requestsExhausted": False}
    plain = next(p for p in listing["providers"] if p["name"] == "plain")
    assert plain["load"] is None
    detail = {c["name"]: c["detail"] for c in explained["candidates"]}
    assert detail["gpu"] == ("ranked by LeastLoaded: queue 3 running + 2 waiting + 0 routed "
                             "- 0 reported since; kv cache 50%; sampled 1.0s ago; "
                             "7 requests left (stated)")
    assert detail["plain"] == "ranked by LeastLoaded"
    gauges = {(s.name, s.labels.get("provider")): s.value
              for family in text_string_to_metric_families(metrics) for s in family.samples}
    assert gauges[("provider_router_provider_queue", "gpu")] == 5.0
    assert gauges[("provider_router_provider_kv_cache_usage", "gpu")] == 0.5
    assert ("provider_router_provider_queue", "plain") not in gauges
