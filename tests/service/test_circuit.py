"""The circuit breaker and 429 cooldowns, as workloads drive them through ``/v1/report``."""

from __future__ import annotations

import asyncio

from .conftest import Api


def _setup(api: Api) -> None:
    api.add_provider("flaky")
    api.add_provider("steady")
    api.add_policy("p", strategy="RoundRobin", default=True,
                   failover={"failureThreshold": 3, "cooldownSeconds": 30})


async def test_three_errors_open_the_circuit_and_routing_avoids_the_provider(api: Api) -> None:
    _setup(api)
    circuits = []
    for status in (500, 502, 503):
        response = await api.report(provider="flaky", namespace="default", outcome="error",
                                    statusCode=status)
        assert response.status_code == 200, response.text
        assert response.json()["leaseReleased"] is False
        circuits.append(response.json()["circuit"])
    assert circuits == ["Closed", "Closed", "Open"]
    assert {await api.pick() for _ in range(6)} == {"steady"}
    body = await api.route_ok(explain=True, lease=False)
    assert [f["name"] for f in body["fallbacks"]] == []
    flaky = next(c for c in body["candidates"] if c["name"] == "flaky")
    assert flaky["role"] == "excluded"
    assert flaky["reasons"] == ["CircuitOpen"]
    assert "retry in 30.0s" in flaky["detail"]
    view = await api.provider("flaky")
    assert (view["circuit"], view["available"], view["reasons"]) == ("Open", False,
                                                                     ["CircuitOpen"])
    assert view["retryInSeconds"] == 30.0
    assert view["retryAt"].endswith("Z")


async def test_after_cooldown_one_trial_is_admitted_and_a_success_closes(api: Api) -> None:
    _setup(api)
    for _ in range(3):
        await api.report(provider="flaky", outcome="timeout")
    api.clock.advance(31)
    assert (await api.provider("flaky"))["circuit"] == "HalfOpen"
    # Round robin reaches the half-open provider within two turns; that route is the trial.
    trial = None
    for _ in range(2):
        body = await api.route_ok()
        if body["provider"]["name"] == "flaky":
            trial = body
            break
        await api.report(leaseId=body["leaseId"], outcome="success")
    assert trial is not None
    # While the trial is out, concurrent routes all go elsewhere, and not even as a fallback.
    others = await asyncio.gather(*(api.route_ok(lease=False) for _ in range(8)))
    assert {b["provider"]["name"] for b in others} == {"steady"}
    assert all(b["fallbacks"] == [] for b in others)
    explained = await api.route_ok(explain=True, lease=False)
    assert next(c for c in explained["candidates"]
                if c["name"] == "flaky")["reasons"] == ["HalfOpenTrialInFlight"]
    # The trial succeeds: the circuit closes and the provider takes its turns again.
    response = await api.report(leaseId=trial["leaseId"], outcome="success", latencyMs=120)
    assert response.status_code == 200, response.text
    assert response.json() == {"provider": "flaky", "namespace": "default",
                               "leaseReleased": True, "circuit": "Closed", "costUSD": 0.0}
    assert {await api.pick() for _ in range(4)} == {"flaky", "steady"}


async def test_a_failed_trial_reopens_the_circuit_for_another_cooldown(api: Api) -> None:
    _setup(api)
    api.add_provider("steady", disabled=True)  # only flaky is left to take the trial
    for _ in range(3):
        await api.report(provider="flaky", outcome="error")
    api.clock.advance(30)
    trial = await api.route_ok()
    assert trial["provider"]["name"] == "flaky"
    response = await api.report(leaseId=trial["leaseId"], outcome="error")
    assert response.json()["circuit"] == "Open"
    assert (await api.route()).status_code == 503
    api.clock.advance(30)
    assert await api.pick() == "flaky"


async def test_rate_limited_with_retry_after_excludes_for_that_long(api: Api) -> None:
    _setup(api)
    response = await api.report(provider="flaky", outcome="rate_limited", statusCode=429,
                                retryAfterSeconds=20)
    assert response.status_code == 200, response.text
    assert response.json()["circuit"] == "Closed"  # throttled is not broken
    view = await api.provider("flaky")
    assert view["reasons"] == ["CoolingDown"]
    assert view["retryInSeconds"] == 20.0
    assert view["lastError"] == "rate limited (HTTP 429)"
    api.clock.advance(19.5)
    assert {await api.pick() for _ in range(4)} == {"steady"}
    body = await api.route_ok(explain=True, lease=False)
    flaky = next(c for c in body["candidates"] if c["name"] == "flaky")
    assert flaky["reasons"] == ["CoolingDown"]
    assert flaky["detail"] == "retry in 0.5s"
    api.clock.advance(1)
    assert {await api.pick() for _ in range(4)} == {"flaky", "steady"}
    assert (await api.provider("flaky"))["available"] is True


async def test_rate_limited_without_retry_after_uses_the_policy_cooldown(api: Api) -> None:
    _setup(api)
    await api.report(provider="flaky", policy="p", outcome="rate_limited")
    assert (await api.provider("flaky"))["retryInSeconds"] == 30.0
    api.clock.advance(30)
    assert (await api.provider("flaky"))["available"] is True
