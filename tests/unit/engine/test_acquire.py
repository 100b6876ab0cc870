"""Leases on a route's fallbacks, taken when a caller tries them (``RoutingTable.acquire``)."""

from __future__ import annotations

import pytest

from provider_router.engine import (
    Outcome,
    OutcomeKind,
    ProviderUnavailable,
    RouteRequest,
    RoutingTable,
    UnknownPolicy,
    UnknownProvider,
)
from support.engine import FakeClock, policy


def test_a_fallback_lease_counts_in_flight_until_reported(table: RoutingTable, add) -> None:
    add(a={"priority": 10}, b={"priority": 1, "maxConcurrent": 5})
    table.upsert_policy("ns", "p", policy(strategy="Priority"))
    decision = table.route(RouteRequest(namespace="ns"))
    assert [t.provider.name for t in decision.fallbacks] == ["b"]
    b = table.provider("ns", "b")
    assert b.in_flight == 0, "naming a fallback takes nothing"
    lease = table.acquire("ns", "p", "b")
    assert b.in_flight == 1
    assert b.requests.total(table.clock()) == 1
    assert table.in_flight_leases() == 2
    result = table.report(Outcome(OutcomeKind.SUCCESS, lease_id=lease, latency_ms=20))
    assert (result.provider, result.lease_released) == ("b", True)
    assert b.in_flight == 0


def test_a_fallback_that_filled_up_since_the_route_is_refused(table: RoutingTable,
                                                              add) -> None:
    add(a={"priority": 10}, b={"priority": 1, "maxConcurrent": 1})
    table.upsert_policy("ns", "p", policy(strategy="Priority"))
    decision = table.route(RouteRequest(namespace="ns"))
    assert [t.provider.name for t in decision.fallbacks] == ["b"]
    table.acquire("ns", "p", "b")  # another call took its only slot meanwhile
    with pytest.raises(ProviderUnavailable) as raised:
        table.acquire("ns", "p", "b")
    assert raised.value.reasons == ("AtMaxConcurrent",)
    assert table.provider("ns", "b").in_flight == 1


def test_a_fallback_over_its_rate_limit_is_refused(table: RoutingTable, add) -> None:
    add(b={"rateLimitRPM": 2})
    table.upsert_policy("ns", "p", policy())
    table.acquire("ns", "p", "b")
    table.acquire("ns", "p", "b")
    with pytest.raises(ProviderUnavailable) as raised:
        table.acquire("ns", "p", "b")
    assert raised.value.reasons == ("RateLimitRPM",)


def test_a_half_open_fallback_takes_its_circuits_one_trial(
        table: RoutingTable, add, clock: FakeClock) -> None:
    add(a={"priority": 10}, b={"priority": 1})
    table.upsert_policy("ns", "p", policy(strategy="Priority",
                                          failover={"failureThreshold": 1,
                                                    "cooldownSeconds": 10}))
    table.report(Outcome(OutcomeKind.ERROR, provider="b", namespace="ns"))
    with pytest.raises(ProviderUnavailable) as raised:
        table.acquire("ns", "p", "b")
    assert raised.value.reasons == ("CircuitOpen",)
    clock.advance(10)
    trial = table.acquire("ns", "p", "b")
    assert table.provider("ns", "b").breaker.trial == trial
    with pytest.raises(ProviderUnavailable) as raised:
        table.acquire("ns", "p", "b")
    assert raised.value.reasons == ("HalfOpenTrialInFlight",)
    assert table.report(Outcome(OutcomeKind.SUCCESS, lease_id=trial)).circuit == "Closed"
    table.acquire("ns", "p", "b")


def test_only_providers_the_policy_selects_are_leased(table: RoutingTable, add) -> None:
    add(a={"labels": {"tier": "x"}}, b={"labels": {"tier": "y"}})
    table.upsert_policy("ns", "p", policy(providerSelector={"matchLabels": {"tier": "x"}}))
    with pytest.raises(ProviderUnavailable):
        table.acquire("ns", "p", "b")
    with pytest.raises(UnknownProvider):
        table.acquire("ns", "p", "nope")
    with pytest.raises(UnknownPolicy):
        table.acquire("ns", "nope", "a")
    assert table.in_flight_leases() == 0
