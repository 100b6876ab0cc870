"""One availability answer: routing, the listings, status conditions and the embedded API
agree on whether a provider is available to a policy."""

from __future__ import annotations

from provider_router import ProviderInfo, ProviderRouter, RouterConfig
from provider_router.engine import NoProviderAvailable, Outcome, OutcomeKind, RoutingTable
from provider_router.operator import Acceptance, policy_verdicts
from provider_router.service._views import policy_view
from support.engine import FakeClock, pick, policy


def _open_circuit(table: RoutingTable, name: str, namespace: str = "ns") -> None:
    """Errors until the breaker opens (without failover the default threshold applies)."""
    for _ in range(10):
        table.report(Outcome(OutcomeKind.ERROR, provider=name, namespace=namespace))
    assert "CircuitOpen" in table.provider_availability(namespace, name).reasons


def _ready(table: RoutingTable) -> tuple[str, str]:
    verdicts, _ = policy_verdicts(table.availability("ns", "p"), Acceptance(True), True)
    ready = next(v for v in verdicts if v.type == "Ready")
    return ready.status, ready.reason


def test_without_failover_an_open_circuit_is_routed_and_reported_available(
        table: RoutingTable, add, clock: FakeClock) -> None:
    add(a={"healthCheck": {"enabled": False}})
    table.upsert_policy("ns", "p", policy(failover={"enabled": False, "failureThreshold": 1}))
    _open_circuit(table, "a")
    assert table.provider_availability("ns", "a").reasons == ["CircuitOpen"]
    assert pick(table) == "a"  # nowhere else to go: the policy keeps sending
    seen = table.availability("ns", "p")
    assert seen.available() == 1
    assert _ready(table) == ("True", "ProvidersAvailable")
    assert policy_view(table.policy("ns", "p"), table, clock.now)["providers"] == {
        "selected": 1, "healthy": 1, "available": 1}


def test_with_failover_an_open_circuit_is_unavailable_everywhere(
        table: RoutingTable, add, clock: FakeClock) -> None:
    add(a={"healthCheck": {"enabled": False}})
    table.upsert_policy("ns", "p", policy(failover={"enabled": True, "failureThreshold": 1}))
    _open_circuit(table, "a")
    seen = table.availability("ns", "p")
    assert seen.available() == 0
    assert seen.providers[0].reasons == ["CircuitOpen"]
    assert seen.providers[0].retry_at is not None
    assert _ready(table) == ("False", "NoProviderAvailable")
    assert policy_view(table.policy("ns", "p"), table, clock.now)["providers"][
        "available"] == 0


def test_a_spent_budget_blocks_only_the_providers_that_cost(
        table: RoutingTable, add) -> None:
    add(free={"costPer1kTokens": 0}, paid={"costPer1kTokens": 10})
    table.upsert_policy("ns", "p", policy(budget={"limitUSD": 1.0, "window": "1h"}))
    table.report(Outcome(OutcomeKind.SUCCESS, provider="paid", namespace="ns", policy="p",
                         input_tokens=100, output_tokens=100))
    seen = {a.provider[1]: a for a in table.availability("ns", "p").providers}
    assert seen["paid"].reasons == ["OverBudget"]
    assert seen["free"].available
    assert table.provider_availability("ns", "paid").available  # on its own it is fine
    assert {pick(table) for _ in range(4)} == {"free"}


def test_the_embedded_statuses_follow_the_routers_policy() -> None:
    clock = FakeClock()
    router = ProviderRouter(config=RouterConfig(enable_failover=False, failover_threshold=1),
                            clock=clock)
    router.register(ProviderInfo(name="a", base_url="http://127.0.0.1:9"))
    for _ in range(10):
        router.report("a", "error")
    assert not router.table.provider_availability("default", "a").available
    status = router.all_statuses()["a"]
    assert status.available
    assert router.route().name == "a"
    assert router.status("a").available


def test_route_then_report_without_a_lease_counts_one_request(
        table: RoutingTable, add, clock: FakeClock) -> None:
    add(a={"rateLimitRPM": 10, "healthCheck": {"enabled": False}})
    table.upsert_policy("ns", "p", policy())
    admitted = 0
    for _ in range(30):
        try:
            pick(table)
        except NoProviderAvailable:
            break
        admitted += 1
        table.report(Outcome(OutcomeKind.SUCCESS, provider="a", namespace="ns"))
    assert admitted == 10


def test_a_report_without_any_route_still_counts_as_a_request(
        table: RoutingTable, add) -> None:
    add(a={"rateLimitRPM": 2, "healthCheck": {"enabled": False}})
    table.upsert_policy("ns", "p", policy())
    for _ in range(2):
        table.report(Outcome(OutcomeKind.SUCCESS, provider="a", namespace="ns"))
    assert table.provider_availability("ns", "a").reasons == ["RateLimitRPM"]


def test_the_embedded_route_then_report_pattern_admits_the_whole_limit() -> None:
    router = ProviderRouter(clock=FakeClock())
    router.register(ProviderInfo(name="a", base_url="http://127.0.0.1:9", rate_limit_rpm=10))
    admitted = 0
    for _ in range(30):
        try:
            info = router.route()
        except NoProviderAvailable:
            break
        admitted += 1
        router.report(info.name, "success")
    assert admitted == 10
