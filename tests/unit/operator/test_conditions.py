"""Status conditions follow the API conventions and move only when something changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from provider_router.engine import Outcome, OutcomeKind, ProbeResult, RouteRequest, RoutingTable
from provider_router.operator import (
    Acceptance,
    Verdict,
    merge_conditions,
    policy_verdicts,
    provider_verdicts,
)
from provider_router.operator._conditions import round_latency
from support.engine import FakeClock, policy, provider

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def by_type(verdicts: list[Verdict]) -> dict[str, tuple[str, str]]:
    return {v.type: (v.status, v.reason) for v in verdicts}


def test_last_transition_time_moves_only_when_status_flips() -> None:
    first = merge_conditions([], [Verdict("Healthy", "True", "ProbeSucceeded", "ok")], 1, T0)
    later = T0 + timedelta(minutes=5)
    same = merge_conditions(first, [Verdict("Healthy", "True", "ProbeSucceeded", "still ok")],
                            2, later)
    assert same[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert same[0]["observedGeneration"] == 2
    assert same[0]["message"] == "still ok"
    flipped = merge_conditions(same, [Verdict("Healthy", "False", "Timeout", "slow")], 2,
                               later)
    assert flipped[0]["lastTransitionTime"] == "2026-01-01T00:05:00Z"


def test_conditions_owned_by_others_are_kept() -> None:
    foreign = [{"type": "Custom", "status": "True", "reason": "X", "message": "",
                "lastTransitionTime": "2025-01-01T00:00:00Z"}]
    merged = merge_conditions(foreign, [Verdict("Ready", "True", "Ready", "")], None, T0)
    assert [c["type"] for c in merged] == ["Ready", "Custom"]
    assert "observedGeneration" not in merged[0]


def test_provider_verdicts_for_each_situation() -> None:
    clock = FakeClock()
    table = RoutingTable(clock=clock)
    table.upsert_provider("ns", "a", provider(healthCheck={"failureThreshold": 1}))
    table.upsert_policy("ns", "p", policy(failover={"failureThreshold": 2}))
    state = table.provider("ns", "a")
    ok = Acceptance(True)
    assert by_type(provider_verdicts(state, ok, clock.now))["Healthy"] == (
        "Unknown", "NotProbedYet")
    table.record_probe("ns", "a", ProbeResult(True, 3.0, "ProbeSucceeded", "HTTP 200"))
    assert by_type(provider_verdicts(state, ok, clock.now)) == {
        "Accepted": ("True", "Valid"), "Healthy": ("True", "ProbeSucceeded"),
        "Available": ("True", "Eligible"), "Ready": ("True", "Ready")}
    table.record_probe("ns", "a", ProbeResult(False, None, "ConnectionRefused", "refused"))
    verdicts = by_type(provider_verdicts(state, ok, clock.now))
    assert verdicts["Healthy"] == ("False", "ConnectionRefused")
    assert verdicts["Ready"] == ("False", "ConnectionRefused")
    bad = Acceptance(False, "SecretNotFound", "Secret ns/x does not exist")
    assert by_type(provider_verdicts(None, bad, clock.now))["Ready"] == (
        "False", "SecretNotFound")


def test_rate_limited_and_circuit_reach_available() -> None:
    clock = FakeClock()
    table = RoutingTable(clock=clock)
    table.upsert_provider("ns", "a", provider(healthCheck={"enabled": False}))
    table.upsert_policy("ns", "p", policy(failover={"failureThreshold": 1}))
    state = table.provider("ns", "a")
    table.report(Outcome(OutcomeKind.RATE_LIMITED, provider="a", namespace="ns",
                         retry_after_seconds=9))
    assert by_type(provider_verdicts(state, Acceptance(True), clock.now))["Available"] == (
        "False", "RateLimited")
    clock.advance(10)
    table.report(Outcome(OutcomeKind.ERROR, provider="a", namespace="ns"))
    assert by_type(provider_verdicts(state, Acceptance(True), clock.now))["Available"] == (
        "False", "CircuitOpen")


def test_transient_load_is_held_back() -> None:
    clock = FakeClock()
    table = RoutingTable(clock=clock)
    table.upsert_provider("ns", "a", provider(maxConcurrent=1, healthCheck={"enabled": False}))
    table.upsert_policy("ns", "p", policy())
    table.route(RouteRequest(namespace="ns"))
    state = table.provider("ns", "a")
    assert by_type(provider_verdicts(state, Acceptance(True), clock.now))["Available"] == (
        "False", "AtMaxConcurrent")
    held = provider_verdicts(state, Acceptance(True), clock.now, hold_transient=True)
    assert by_type(held)["Available"] == ("True", "Eligible")


def test_policy_ready_reasons() -> None:
    table = RoutingTable(clock=FakeClock())
    table.upsert_policy("ns", "p", policy(providerSelector={"matchLabels": {"x": "y"}}))
    verdicts, counts = policy_verdicts(table.availability("ns", "p"), Acceptance(True), False)
    assert by_type(verdicts)["Ready"] == ("False", "NoProvidersSelected")
    table.upsert_provider("ns", "a", provider(), {"x": "z"})
    verdicts, counts = policy_verdicts(table.availability("ns", "p"), Acceptance(True), True)
    assert by_type(verdicts)["Ready"] == ("False", "DanglingSelector")
    table.upsert_provider("ns", "a", provider(disabled=True), {"x": "y"})
    verdicts, counts = policy_verdicts(table.availability("ns", "p"), Acceptance(True), True)
    assert by_type(verdicts)["Ready"] == ("False", "NoProviderAvailable")
    assert counts == {"selected": 1, "healthy": 1, "available": 0}


def test_latency_rounding_ignores_noise() -> None:
    assert round_latency(123.4) == 120.0
    assert round_latency(7.94) == 7.9
    assert round_latency(1534.0) == 1500.0


def test_probe_latency_noise_is_not_worth_a_status_write() -> None:
    from provider_router.operator._status_writer import _latency_is_close

    assert _latency_is_close(6.7, 27.0)  # one slow probe on a busy node
    assert _latency_is_close(100.0, 180.0)  # within a factor of two
    assert not _latency_is_close(5.0, 500.0)
    assert not _latency_is_close(None, 5.0)


def test_status_health_shows_the_reported_time_to_first_token() -> None:
    from provider_router.operator._conditions import provider_health

    clock = FakeClock()
    table = RoutingTable(clock=clock)
    table.upsert_provider("ns", "a", provider(healthCheck={"enabled": False}))
    state = table.provider("ns", "a")
    assert "ttftMs" not in (provider_health(state, clock(), T0) or {})
    table.report(Outcome(OutcomeKind.SUCCESS, provider="a", namespace="ns", latency_ms=2345,
                         ttft_ms=123.4))
    health = provider_health(state, clock(), T0)
    assert health is not None
    assert (health["latencyMs"], health["ttftMs"]) == (2300.0, 120.0)
