"""Leases: taken by a route, released by its report, expired by the table's TTL."""

from __future__ import annotations

from .conftest import LEASE_TTL, NS, Api


async def test_a_report_releases_the_lease_once(api: Api) -> None:
    api.add_provider("a", maxConcurrent=1)
    api.add_policy("p", default=True)
    body = await api.route_ok()
    lease = body["leaseId"]
    assert isinstance(lease, str)
    assert lease
    assert (await api.provider("a"))["inFlight"] == 1
    # At maxConcurrent: nothing else may take a lease on it.
    full = await api.route()
    assert full.status_code == 503
    assert full.json()["error"]["details"]["candidates"][0]["reasons"] == ["AtMaxConcurrent"]
    released = await api.report(leaseId=lease, outcome="success", latencyMs=42.5)
    assert released.status_code == 200, released.text
    assert released.json()["leaseReleased"] is True
    assert (await api.provider("a"))["inFlight"] == 0
    assert (await api.route(lease=False)).status_code == 200
    again = await api.report(leaseId=lease, outcome="success")
    assert again.status_code == 404
    assert again.json()["error"]["code"] == "unknown_lease"
    assert again.json()["error"]["details"] == {"leaseId": lease}


async def test_a_report_of_a_lease_another_replica_issued_counts_for_its_provider(
        api: Api) -> None:
    api.add_provider("a")
    api.add_policy("p", default=True, failover={"failureThreshold": 1})
    foreign = "0badcafe-7"  # not this router's prefix: another replica, or before a restart
    alone = await api.report(leaseId=foreign, outcome="error")
    assert alone.status_code == 404
    named = await api.report(leaseId=foreign, provider="a", namespace=NS,
                             outcome="error", statusCode=502)
    assert named.status_code == 200, named.text
    assert named.json()["leaseReleased"] is False
    assert named.json()["circuit"] == "Open"


async def test_a_lease_never_reported_expires_after_the_ttl(api: Api) -> None:
    api.add_provider("a", maxConcurrent=1)
    api.add_policy("p", default=True)
    lease = (await api.route_ok())["leaseId"]
    assert (await api.route()).status_code == 503
    api.clock.advance(LEASE_TTL - 1)
    assert (await api.provider("a"))["inFlight"] == 1
    api.clock.advance(1)
    assert (await api.provider("a"))["inFlight"] == 0
    assert (await api.route(lease=False)).status_code == 200
    # A call that outlived its lease still reports its outcome and spend, once.
    late = await api.report(leaseId=lease, outcome="success", inputTokens=1000)
    assert late.status_code == 200, late.text
    assert late.json()["leaseReleased"] is False
    assert (await api.provider("a"))["inFlight"] == 0
    assert (await api.provider("a"))["outcomes"] == {"success": 1}
    again = await api.report(leaseId=lease, outcome="success")
    assert again.status_code == 404
    assert again.json()["error"]["code"] == "unknown_lease"


async def test_lease_false_takes_no_lease(api: Api) -> None:
    api.add_provider("a")
    api.add_policy("p", default=True)
    body = await api.route_ok(lease=False)
    assert body["leaseId"] is None
    assert (await api.provider("a"))["inFlight"] == 0


async def test_a_report_with_tokens_charges_the_provider_and_the_policy(api: Api) -> None:
    api.add_provider("a", pricing={"input": 1.0, "output": 3.0})
    api.add_policy("p", default=True, budget={"limitUSD": 100, "window": "1h"})
    lease = (await api.route_ok())["leaseId"]
    response = await api.report(leaseId=lease, outcome="success", inputTokens=1000,
                                outputTokens=500)
    assert response.status_code == 200, response.text
    assert response.json()["costUSD"] == 2.5
    assert (await api.provider("a"))["spendUSD"] == 2.5
    policies = (await api.client.get("/v1/policies")).json()["policies"]
    assert policies[0]["spendUSD"] == {"window": 2.5, "total": 2.5}
    assert policies[0]["budget"] == {"limitUSD": 100.0, "window": "1h", "throttled": False,
                                     "overBudget": False}
