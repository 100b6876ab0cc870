"""``/v1/providers``, ``/v1/policies``, ``/healthz`` and ``/readyz``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from provider_router.engine import ProbeResult, RoutingTable
from provider_router.service import PoliciesOut, ProvidersOut, Server, create_app

from .conftest import Api

SECRET = "sk-live-super-secret-value"


async def test_providers_show_live_state_and_never_credentials(api: Api) -> None:
    api.add_provider("a", labels={"tier": "gold"}, apiFormat="anthropic",
                     capabilities=["chat"], models=["claude"], maxConcurrent=4,
                     rateLimitRPM=100, costPer1kTokens=0.2, avgLatencyMs=250,
                     healthCheck={"enabled": True},
                     credentialsSecretRef={"name": "anthropic-key", "key": "token"})
    api.add_provider("b", namespace="other")
    api.add_policy("p", default=True)
    api.table.record_probe("default", "a", ProbeResult(True, 40.0, message="HTTP 200"))
    lease = (await api.route_ok())["leaseId"]
    await api.report(provider="a", outcome="error", statusCode=500)
    response = await api.client.get("/v1/providers")
    assert response.status_code == 200
    assert SECRET not in response.text
    assert "anthropic-key" not in response.text
    assert "credentials" not in response.text.lower()
    listed = ProvidersOut.model_validate(response.json())  # the documented shape, exactly
    assert [(p.namespace, p.name) for p in listed.providers] == [("default", "a"),
                                                                 ("other", "b")]
    a = response.json()["providers"][0]
    assert a | {"lastProbeAt": None} == {
        "name": "a", "namespace": "default", "baseURL": "http://a.llm.test:8000",
        "apiBase": "http://a.llm.test:8000/v1", "apiFormat": "anthropic",
        "labels": {"tier": "gold"}, "capabilities": ["chat"], "models": ["claude"],
        "priority": 0, "weight": 1, "costPer1kTokens": 0.2, "disabled": False,
        "health": "Healthy", "healthMessage": "HTTP 200", "circuit": "Closed",
        "available": True, "reasons": [], "inFlight": 1, "maxConcurrent": 4,
        "latencyMs": 40.0, "ttftMs": None, "rpmUsed": 2.0, "rpmLimit": 100, "tpmUsed": 0.0,
        "tpmLimit": None,
        "spendUSD": 0.0, "routed": 1, "outcomes": {"error": 1}, "consecutiveFailures": 1,
        "lastError": "error (HTTP 500) reported by a workload", "lastProbeAt": None,
        "retryAt": None, "retryInSeconds": None, "discoveredModels": [], "load": None}
    assert a["lastProbeAt"].endswith("Z")
    only_other = (await api.client.get("/v1/providers", params={"namespace": "other"})).json()
    assert [p["name"] for p in only_other["providers"]] == ["b"]
    assert lease


async def test_policies_show_counts_and_spend(api: Api) -> None:
    api.add_provider("a", healthCheck={"enabled": True}, costPer1kTokens=1.0, priority=10)
    api.add_provider("b", disabled=True)
    api.add_provider("c", labels={"pool": "x"})
    api.add_policy("all", strategy="Priority", default=True)
    api.add_policy("some", namespace="default",
                   providerSelector={"matchLabels": {"pool": "x"}})
    api.table.record_probe("default", "a", ProbeResult(True, 10.0))
    lease = (await api.route_ok())["leaseId"]
    await api.report(leaseId=lease, outcome="success", inputTokens=500, outputTokens=500)
    await api.route(policy="nope")
    response = await api.client.get("/v1/policies")
    assert response.status_code == 200
    PoliciesOut.model_validate(response.json())
    policies = {p["name"]: p for p in response.json()["policies"]}
    assert policies["all"] == {
        "name": "all", "namespace": "default", "strategy": "Priority", "default": True,
        "providers": {"selected": 3, "healthy": 3, "available": 2},
        "spendUSD": {"window": None, "total": 1.0}, "budget": None,
        "routed": 1, "unrouted": 0}
    assert policies["some"]["providers"] == {"selected": 1, "healthy": 1, "available": 1}
    empty = await api.client.get("/v1/policies", params={"namespace": "nowhere"})
    assert empty.json() == {"policies": []}


@pytest.mark.parametrize("query", ["namespace=Bad_Ns", "ns=default",
                                   "namespace=a&namespace=b"])
async def test_listing_filters_are_validated(api: Api, query: str) -> None:
    for path in ("/v1/providers", "/v1/policies"):
        response = await api.client.get(f"{path}?{query}")
        assert response.status_code == 400
        assert response.json()["error"]["details"]["field"] in ("namespace", "ns")


async def test_healthz_answers_while_the_process_lives(api: Api) -> None:
    response = await api.client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


@pytest.fixture
async def readiness_api(table: RoutingTable) -> AsyncIterator[tuple[httpx.AsyncClient,
                                                                    dict[str, Any]]]:
    state: dict[str, Any] = {"ready": False, "details": {"tableSynced": False}}

    def readiness() -> tuple[bool, dict[str, Any]]:
        if state.get("raise"):
            raise RuntimeError("boom")
        return state["ready"], state["details"]

    async with Server(create_app(table, readiness=readiness)) as server, \
            httpx.AsyncClient(base_url=server.url) as client:
        yield client, state


async def test_readyz_follows_the_readiness_callable(
        readiness_api: tuple[httpx.AsyncClient, dict[str, Any]]) -> None:
    client, state = readiness_api
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["error"] == {"code": "not_ready",
                                        "message": "the router is not ready to route",
                                        "details": {"tableSynced": False}}
    state.update(ready=True, details={"tableSynced": True, "staleSince": None})
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"ready": True,
                               "details": {"tableSynced": True, "staleSince": None}}
    state["raise"] = True
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert "boom" in response.json()["error"]["details"]["error"]


async def test_readyz_without_a_callable_is_ready(api: Api) -> None:
    response = await api.client.get("/readyz")
    assert (response.status_code, response.json()) == (200, {"ready": True, "details": {}})
