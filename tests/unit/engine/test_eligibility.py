"""Every eligibility rule of a route (step 2 in the README), and the reasons reported for each."""

from __future__ import annotations

import random

import pytest

from provider_router.engine import (
    NoProviderAvailable,
    Outcome,
    OutcomeKind,
    ProbeResult,
    RouteRequest,
    RoutingTable,
    UnknownLease,
    UnknownPolicy,
)
from provider_router.engine._leases import MAX_EXPIRED_REMEMBERED
from support.engine import FakeClock, pick, policy, provider


def reasons_of(table: RoutingTable, name: str, **request: object) -> tuple[str, ...]:
    candidates = table.explain(RouteRequest(namespace="ns", **request))  # type: ignore[arg-type]
    return next(c.reasons for c in candidates if c.name == name)


def fail(table: RoutingTable, name: str, times: int = 1) -> None:
    for _ in range(times):
        table.report(Outcome(OutcomeKind.ERROR, provider=name, namespace="ns", status_code=500))


def test_disabled_provider_is_never_routed(table: RoutingTable, add) -> None:
    add(a={"disabled": True}, b={})
    table.upsert_policy("ns", "p", policy())
    assert {pick(table) for _ in range(5)} == {"b"}
    assert reasons_of(table, "a") == ("Disabled",)


def test_all_excluded_raises_with_a_reason_per_candidate(table: RoutingTable, add) -> None:
    add(a={"disabled": True}, b={"capabilities": ["chat"]})
    table.upsert_policy("ns", "p", policy())
    with pytest.raises(NoProviderAvailable) as caught:
        table.route(RouteRequest(namespace="ns", capabilities=("vision",)))
    by_name = {c.name: c.reasons for c in caught.value.candidates}
    assert by_name == {"a": ("MissingCapability",), "b": ("MissingCapability",)}
    add(b={"capabilities": ["chat"], "maxConcurrent": 1})
    table.route(RouteRequest(namespace="ns"))
    with pytest.raises(NoProviderAvailable) as caught:
        table.route(RouteRequest(namespace="ns"))
    by_name = {c.name: c.reasons for c in caught.value.candidates}
    assert by_name == {"a": ("Disabled",), "b": ("AtMaxConcurrent",)}
    assert "a: Disabled" in str(caught.value)


def test_unknown_policy_and_missing_default_are_typed_errors(table: RoutingTable, add) -> None:
    add(a={})
    table.upsert_policy("ns", "named", policy(default=False))
    with pytest.raises(UnknownPolicy):
        table.route(RouteRequest(namespace="ns"))
    with pytest.raises(UnknownPolicy):
        table.route(RouteRequest(namespace="ns", policy="nope"))
    assert table.route(RouteRequest(namespace="ns", policy="named")).target.provider.name == "a"


def test_policy_sees_only_its_own_namespace_and_selector(table: RoutingTable, add) -> None:
    add(a={"labels": {"tier": "gold"}}, b={"labels": {"tier": "bronze"}})
    table.upsert_provider("other", "c", provider(), {"tier": "gold"})
    table.upsert_policy("ns", "p", policy(providerSelector={"matchLabels": {"tier": "gold"}}))
    assert {pick(table) for _ in range(4)} == {"a"}
    add(b={"labels": {"tier": "gold"}})  # a label change re-evaluates the selector
    assert {pick(table) for _ in range(4)} == {"a", "b"}


def test_unhealthy_after_failure_threshold_probes_and_healthy_again(
        table: RoutingTable, add) -> None:
    add(a={"healthCheck": {"failureThreshold": 2, "successThreshold": 2}}, b={})
    table.upsert_policy("ns", "p", policy(failover={"failureThreshold": 10}))
    down = ProbeResult(False, None, "ConnectionRefused", "refused")
    table.record_probe("ns", "a", down)
    assert "Unhealthy" not in reasons_of(table, "a")
    table.record_probe("ns", "a", down)
    assert reasons_of(table, "a") == ("Unhealthy",)
    table.record_probe("ns", "a", ProbeResult(True, 12.0))
    assert reasons_of(table, "a") == ("Unhealthy",)
    table.record_probe("ns", "a", ProbeResult(True, 12.0))
    assert reasons_of(table, "a") == ()


def test_unauthorized_probe_excludes_at_once_with_its_own_reason(
        table: RoutingTable, add) -> None:
    add(a={}, b={})
    table.upsert_policy("ns", "p", policy())
    table.record_probe("ns", "a", ProbeResult(False, 5.0, "Unauthorized", "HTTP 401",
                                              unauthorized=True))
    assert reasons_of(table, "a") == ("Unauthorized",)


def test_circuit_opens_after_threshold_then_half_open_admits_one_trial_then_closes(
        table: RoutingTable, add, clock: FakeClock) -> None:
    add(a={"priority": 10}, b={"priority": 1})
    table.upsert_policy("ns", "p", policy(strategy="Priority",
                                          failover={"failureThreshold": 3,
                                                    "cooldownSeconds": 30}))
    fail(table, "a", 2)
    assert pick(table) == "a"
    fail(table, "a")
    assert pick(table) == "b"
    assert reasons_of(table, "a") == ("CircuitOpen",)
    clock.advance(30)
    trial = table.route(RouteRequest(namespace="ns"))
    assert trial.target.provider.name == "a"
    # A concurrent request does not get a second trial while the first is out.
    assert pick(table) == "b"
    assert reasons_of(table, "a") == ("HalfOpenTrialInFlight",)
    assert trial.lease_id is not None
    table.report(Outcome(OutcomeKind.SUCCESS, lease_id=trial.lease_id, latency_ms=50))
    assert [pick(table) for _ in range(3)] == ["a", "a", "a"]


def test_a_failed_trial_reopens_and_an_expired_trial_frees_the_slot(
        table: RoutingTable, add, clock: FakeClock) -> None:
    add(a={"priority": 10}, b={"priority": 1})
    table.upsert_policy("ns", "p", policy(strategy="Priority",
                                          failover={"failureThreshold": 1,
                                                    "cooldownSeconds": 10}))
    fail(table, "a")
    clock.advance(10)
    trial = table.route(RouteRequest(namespace="ns"))
    assert trial.lease_id is not None
    table.report(Outcome(OutcomeKind.TIMEOUT, lease_id=trial.lease_id))
    assert reasons_of(table, "a") == ("CircuitOpen",)
    clock.advance(10)
    assert table.route(RouteRequest(namespace="ns")).target.provider.name == "a"
    assert pick(table) == "b"
    clock.advance(60)  # the trial's lease TTL passes with no report
    assert reasons_of(table, "a") == ()
    assert pick(table) == "a"


def test_circuit_is_ignored_when_failover_is_disabled(table: RoutingTable, add) -> None:
    add(a={})
    table.upsert_policy("ns", "p", policy(failover={"enabled": False}))
    fail(table, "a", 5)
    assert pick(table) == "a"


def test_probe_failures_count_toward_the_circuit(table: RoutingTable, add) -> None:
    add(a={"healthCheck": {"failureThreshold": 100}}, b={})
    table.upsert_policy("ns", "p", policy(failover={"failureThreshold": 2}))
    for _ in range(2):
        table.record_probe("ns", "a", ProbeResult(False, None, "ServerError", "HTTP 503"))
    assert reasons_of(table, "a") == ("CircuitOpen",)


def test_429_cools_down_for_retry_after_else_the_policy_cooldown(
        table: RoutingTable, add, clock: FakeClock) -> None:
    add(a={}, b={})
    table.upsert_policy("ns", "p", policy(failover={"cooldownSeconds": 20}))
    table.report(Outcome(OutcomeKind.RATE_LIMITED, provider="a", namespace="ns",
                         retry_after_seconds=5, status_code=429))
    assert reasons_of(table, "a") == ("CoolingDown",)
    clock.advance(5)
    assert reasons_of(table, "a") == ()
    lease = table.route(RouteRequest(namespace="ns", policy="p"))
    assert lease.lease_id is not None
    table.report(Outcome(OutcomeKind.RATE_LIMITED, lease_id=lease.lease_id))
    name = lease.target.provider.name
    clock.advance(19.9)
    assert reasons_of(table, name) == ("CoolingDown",)
    clock.advance(0.1)
    assert reasons_of(table, name) == ()


def test_max_concurrent_counts_leases_until_reported_or_expired(
        table: RoutingTable, add, clock: FakeClock) -> None:
    add(a={"maxConcurrent": 2})
    table.upsert_policy("ns", "p", policy())
    first = table.route(RouteRequest(namespace="ns"))
    table.route(RouteRequest(namespace="ns"))
    assert reasons_of(table, "a") == ("AtMaxConcurrent",)
    with pytest.raises(NoProviderAvailable):
        table.route(RouteRequest(namespace="ns"))
    assert first.lease_id is not None
    table.report(Outcome(OutcomeKind.SUCCESS, lease_id=first.lease_id))
    assert table.in_flight_leases() == 1
    table.route(RouteRequest(namespace="ns"))
    clock.advance(60)  # both outstanding leases expire
    assert table.in_flight_leases() == 0
    assert reasons_of(table, "a") == ()
    with pytest.raises(UnknownLease):
        table.report(Outcome(OutcomeKind.SUCCESS, lease_id=first.lease_id))


def test_rpm_headroom_over_a_sliding_minute(
        table: RoutingTable, add, clock: FakeClock) -> None:
    add(a={"rateLimitRPM": 3})
    table.upsert_policy("ns", "p", policy())
    for step in (0, 10, 20):
        clock.advance(step and 10)
        pick(table)
    assert reasons_of(table, "a") == ("RateLimitRPM",)
    clock.advance(39.9)  # the first request is 59.9 s old
    assert reasons_of(table, "a") == ("RateLimitRPM",)
    clock.advance(0.1)
    assert reasons_of(table, "a") == ()


def test_tpm_headroom_counts_reported_tokens(
        table: RoutingTable, add, clock: FakeClock) -> None:
    add(a={"rateLimitTPM": 1000}, b={})
    table.upsert_policy("ns", "p", policy())
    table.report(Outcome(OutcomeKind.SUCCESS, provider="a", namespace="ns",
                         input_tokens=600, output_tokens=400))
    assert reasons_of(table, "a") == ("RateLimitTPM",)
    clock.advance(60)
    assert reasons_of(table, "a") == ()


def test_budget_throttles_to_cheaper_then_excludes_paid_then_rolls_over(
        table: RoutingTable, add, clock: FakeClock) -> None:
    add(free={"costPer1kTokens": 0, "priority": 0},
        paid={"costPer1kTokens": 10, "priority": 5})
    table.upsert_policy("ns", "p", policy(
        strategy="Priority", budget={"limitUSD": 1.0, "window": "1h", "throttleRatio": 0.5}))
    assert pick(table) == "paid"
    spend = Outcome(OutcomeKind.SUCCESS, provider="paid", namespace="ns", policy="p",
                    input_tokens=30, output_tokens=30)  # 0.6 USD
    table.report(spend)
    # Past half the budget the cheapest goes first, but the paid one is still a fallback.
    decision = table.route(RouteRequest(namespace="ns", lease=False))
    assert decision.target.provider.name == "free"
    assert decision.strategy.value == "Cost"
    assert [t.provider.name for t in decision.fallbacks] == ["paid"]
    table.report(spend)  # 1.2 USD: over the limit
    assert reasons_of(table, "paid") == ("OverBudget",)
    assert reasons_of(table, "free") == ()
    clock.advance(3600 + 60)  # the window rolls past the spend
    assert pick(table) == "paid"


def test_spend_is_charged_through_the_lease_policy(table: RoutingTable, add) -> None:
    add(a={"pricing": {"input": 1.0, "output": 2.0}})
    table.upsert_policy("ns", "p", policy(budget={"limitUSD": 100}))
    decision = table.route(RouteRequest(namespace="ns"))
    result = table.report(Outcome(OutcomeKind.SUCCESS, lease_id=decision.lease_id,
                                  input_tokens=1000, output_tokens=500))
    assert result.cost_usd == pytest.approx(2.0)
    assert table.policy("ns", "p").spend_total == pytest.approx(2.0)


def test_provider_leaving_mid_lease_releases_cleanly(
        table: RoutingTable, add) -> None:
    add(a={"maxConcurrent": 1, "costPer1kTokens": 1.0}, b={})
    table.upsert_policy("ns", "p", policy(strategy="Priority"))
    decision = table.route(RouteRequest(namespace="ns", policy="p"))
    name = decision.target.provider.name
    table.remove_provider("ns", name)
    result = table.report(Outcome(OutcomeKind.SUCCESS, lease_id=decision.lease_id,
                                  input_tokens=1000))
    assert result.lease_released
    assert table.in_flight_leases() == 0
    # Re-adding it starts from zero load: the old lease does not count against it.
    add(**{name: {"maxConcurrent": 1}})
    assert table.provider("ns", name).in_flight == 0


def test_state_survives_a_spec_update(table: RoutingTable, add) -> None:
    add(a={}, b={})
    table.upsert_policy("ns", "p", policy(failover={"failureThreshold": 1}))
    fail(table, "a")
    add(a={"costPer1kTokens": 2.0})
    assert reasons_of(table, "a") == ("CircuitOpen",)
    assert not table.upsert_provider("ns", "a", table.provider("ns", "a").spec)


def test_a_rate_window_left_unpruned_never_schedules_a_past_wakeup(
        table: RoutingTable, add, clock: FakeClock) -> None:
    # Regression: a window whose events had all expired unread used to schedule its expiry in
    # the past, and the next call spun forever on that timer.
    add(a={"rateLimitRPM": 100})
    table.upsert_policy("ns", "p", policy())
    for _ in range(3):
        pick(table)
    clock.advance(600)
    assert pick(table) == "a"
    assert table.provider("ns", "a").requests.total(clock.now) == 1


def test_leases_expire_in_the_order_taken_and_reported_ones_only_once(
        table: RoutingTable, add, clock: FakeClock) -> None:
    add(a={"maxConcurrent": 10})
    table.upsert_policy("ns", "p", policy())
    taken = []
    for _ in range(4):
        taken.append(table.route(RouteRequest(namespace="ns")).lease_id)
        clock.advance(10)
    table.report(Outcome(OutcomeKind.SUCCESS, lease_id=taken[1]))
    assert table.provider("ns", "a").in_flight == 3
    clock.advance(20.5)  # 60.5 s after the first lease, 50.5 s after the second
    assert table.in_flight_leases() == 2
    assert table.provider("ns", "a").in_flight == 2
    # Reported late, an expired lease counts its outcome once and releases nothing more.
    late = table.report(Outcome(OutcomeKind.SUCCESS, lease_id=taken[0]))
    assert not late.lease_released
    assert table.provider("ns", "a").in_flight == 2
    with pytest.raises(UnknownLease):
        table.report(Outcome(OutcomeKind.SUCCESS, lease_id=taken[0]))
    with pytest.raises(UnknownLease):
        table.report(Outcome(OutcomeKind.SUCCESS, lease_id=taken[1]))
    table.report(Outcome(OutcomeKind.SUCCESS, lease_id=taken[2]))
    clock.advance(60)
    assert table.in_flight_leases() == 0
    assert table.provider("ns", "a").in_flight == 0


def test_beyond_max_leases_the_oldest_is_released_early(clock: FakeClock) -> None:
    table = RoutingTable(clock=clock, rng=random.Random(1), lease_ttl=60.0, max_leases=2)
    table.upsert_provider("ns", "a", provider(maxConcurrent=5))
    table.upsert_policy("ns", "p", policy())
    first, second, third = (table.route(RouteRequest(namespace="ns")).lease_id
                            for _ in range(3))
    assert table.in_flight_leases() == 2
    assert table.leases_evicted == 1
    assert table.provider("ns", "a").in_flight == 2
    assert not table.report(Outcome(OutcomeKind.SUCCESS, lease_id=first)).lease_released
    assert table.provider("ns", "a").in_flight == 2
    table.report(Outcome(OutcomeKind.SUCCESS, lease_id=second))
    table.route(RouteRequest(namespace="ns"))  # room again: nothing evicted
    assert table.leases_evicted == 1
    assert third in table._leases


def test_max_leases_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_leases"):
        RoutingTable(max_leases=0)


def test_a_dead_provider_does_not_cycle_its_circuit_on_every_failed_probe(
        table: RoutingTable, add, clock: FakeClock) -> None:
    add(a={"healthCheck": {"failureThreshold": 2}}, b={})
    table.upsert_policy("ns", "p", policy(failover={"failureThreshold": 2,
                                                    "cooldownSeconds": 30}))
    down = ProbeResult(False, None, "ServerError", "HTTP 503")
    for _ in range(2):
        table.record_probe("ns", "a", down)
    assert reasons_of(table, "a") == ("Unhealthy", "CircuitOpen")
    circuits = []
    for _ in range(6):  # three minutes of failed probes every 30 s
        clock.advance(30)
        table.record_probe("ns", "a", down)
        circuits.append(table.provider("ns", "a").breaker.state(clock.now).value)
    assert circuits == ["HalfOpen"] * 6
    assert reasons_of(table, "a") == ("Unhealthy",)
    for _ in range(2):  # recovery closes the circuit with health
        table.record_probe("ns", "a", ProbeResult(True, 12.0))
    assert table.provider("ns", "a").breaker.state(clock.now).value == "Closed"
    assert reasons_of(table, "a") == ()


def test_reported_leases_do_not_pile_up_until_their_ttl(
        table: RoutingTable, add, clock: FakeClock) -> None:
    add(a={})
    table.upsert_policy("ns", "p", policy())
    table.route(RouteRequest(namespace="ns"))  # a lease never reported
    for _ in range(20_000):
        lease = table.route(RouteRequest(namespace="ns")).lease_id
        table.report(Outcome(OutcomeKind.SUCCESS, lease_id=lease))
        clock.advance(0.001)
    assert table.in_flight_leases() == 1
    assert table._leases.queued <= 2 * 1 + 1024
    clock.advance(60)  # the stuck lease still expires on time
    assert table.in_flight_leases() == 0
    assert table.provider("ns", "a").in_flight == 0


def test_a_lease_from_another_replica_still_counts_its_outcome(clock: FakeClock) -> None:
    replicas = [RoutingTable(clock=clock, rng=random.Random(n), lease_ttl=60.0)
                for n in (1, 2)]
    for table in replicas:
        table.upsert_provider("ns", "a", provider(maxConcurrent=5))
        table.upsert_policy("ns", "p", policy(failover={"failureThreshold": 1}))
    first, second = replicas
    lease = first.route(RouteRequest(namespace="ns")).lease_id
    assert lease is not None
    with pytest.raises(UnknownLease):  # the lease alone means nothing to the other replica
        second.report(Outcome(OutcomeKind.ERROR, lease_id=lease))
    result = second.report(Outcome(OutcomeKind.ERROR, lease_id=lease, provider="a",
                                   namespace="ns"))
    assert not result.lease_released
    assert reasons_of(second, "a") == ("CircuitOpen",)
    assert second.provider("ns", "a").requests.total(clock.now) == 0  # routed elsewhere
    assert first.report(Outcome(OutcomeKind.SUCCESS, lease_id=lease)).lease_released


def test_a_repeated_report_of_an_own_lease_never_counts_twice(
        table: RoutingTable, add) -> None:
    add(a={})
    table.upsert_policy("ns", "p", policy())
    lease = table.route(RouteRequest(namespace="ns")).lease_id
    report = Outcome(OutcomeKind.SUCCESS, lease_id=lease, provider="a", namespace="ns",
                     input_tokens=10)
    table.report(report)
    with pytest.raises(UnknownLease):
        table.report(report)
    assert table.provider("ns", "a").outcomes == {"success": 1}


def test_the_default_policy_follows_policy_changes(table: RoutingTable, add) -> None:
    add(a={"labels": {"tier": "a"}}, b={"labels": {"tier": "b"}})
    table.upsert_policy("ns", "zeta", policy(providerSelector={"matchLabels": {"tier": "a"}}))
    assert pick(table) == "a"
    # Two defaults: the first by name wins, and it takes over at once.
    table.upsert_policy("ns", "alpha", policy(providerSelector={"matchLabels": {"tier": "b"}}))
    assert pick(table) == "b"
    table.upsert_policy("ns", "alpha", policy(default=False,
                                              providerSelector={"matchLabels": {"tier": "b"}}))
    assert pick(table) == "a"
    table.remove_policy("ns", "zeta")
    with pytest.raises(UnknownPolicy):
        pick(table)


def test_late_reports_count_for_the_most_recent_expired_leases_only(
        table: RoutingTable, add, clock: FakeClock) -> None:
    add(a={})
    table.upsert_policy("ns", "p", policy())
    oldest = table.route(RouteRequest(namespace="ns")).lease_id
    for _ in range(MAX_EXPIRED_REMEMBERED):
        table.route(RouteRequest(namespace="ns"))
    newest = table.route(RouteRequest(namespace="ns")).lease_id
    clock.advance(61)
    assert table.in_flight_leases() == 0
    with pytest.raises(UnknownLease):  # forgotten: memory stays bounded
        table.report(Outcome(OutcomeKind.SUCCESS, lease_id=oldest))
    result = table.report(Outcome(OutcomeKind.ERROR, lease_id=newest, input_tokens=10))
    assert not result.lease_released
    assert table.provider("ns", "a").outcomes == {"error": 1}


def test_an_unavailable_answer_over_many_providers_is_bounded_and_counts_every_reason(
        table: RoutingTable, add) -> None:
    names = [f"p{i:02d}" for i in range(50)]
    add(**{name: {"capabilities": ["chat"] if i < 45 else ["embeddings"]}
           for i, name in enumerate(names)})
    table.upsert_policy("ns", "p", policy(failover={"failureThreshold": 1}))
    unauthorized = ProbeResult(False, None, "Unauthorized", "HTTP 401", unauthorized=True)
    for name in names[:45]:
        table.record_probe("ns", name, unauthorized)
    with pytest.raises(NoProviderAvailable) as caught:
        pick(table, capabilities=("chat",))
    error = caught.value
    assert error.selected == 50
    assert error.excluded == {"MissingCapability": 5, "Unauthorized": 45}
    assert [c.name for c in error.candidates] == names[:20]
    assert "50 selected, none eligible (MissingCapability 5, Unauthorized 45)" in str(error)
    assert len(str(error)) < 400
    # A member changing its reasons is counted at the next answer.
    table.report(Outcome(OutcomeKind.ERROR, provider="p03", namespace="ns"))
    with pytest.raises(NoProviderAvailable) as again:
        pick(table, capabilities=("chat",))
    assert again.value.excluded == {"CircuitOpen": 1, "MissingCapability": 5,
                                    "Unauthorized": 45}
