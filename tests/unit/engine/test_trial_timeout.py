"""A half-open trial waits for its verdict for one cooldown (at most the lease TTL), then counts
as failed: the circuit re-opens instead of answering HalfOpenTrialInFlight for a whole TTL."""

from __future__ import annotations

import random

import pytest

from provider_router.api import CircuitState
from provider_router.engine import (
    NoProviderAvailable,
    Outcome,
    OutcomeKind,
    RouteRequest,
    RoutingTable,
)
from provider_router.engine._fleet import PENDING_TRIAL
from support.engine import FakeClock, pick, policy, provider


def reasons_of(table: RoutingTable, name: str) -> tuple[str, ...]:
    candidates = table.explain(RouteRequest(namespace="ns"))
    return next(c.reasons for c in candidates if c.name == name)


def open_circuit(table: RoutingTable, cooldown: float, lease_ttl: float = 120.0) -> None:
    table.upsert_provider("ns", "a", provider(priority=10))
    table.upsert_provider("ns", "b", provider(priority=1))
    table.upsert_policy("ns", "p", policy(strategy="Priority",
                                          failover={"failureThreshold": 1,
                                                    "cooldownSeconds": cooldown}))
    table.report(Outcome(OutcomeKind.ERROR, provider="a", namespace="ns"))


def trial(table: RoutingTable) -> str:
    decision = table.route(RouteRequest(namespace="ns"))
    assert decision.target.provider.name == "a", "the half-open provider takes the trial"
    assert decision.lease_id is not None
    return decision.lease_id


def test_an_unreported_trial_fails_after_one_cooldown(clock: FakeClock) -> None:
    table = RoutingTable(clock=clock, rng=random.Random(0), lease_ttl=120.0)
    open_circuit(table, cooldown=10)
    assert table.trial_timeout("ns", "a") == 10
    clock.advance(10)
    lease = trial(table)
    clock.advance(9.9)
    assert reasons_of(table, "a") == ("HalfOpenTrialInFlight",)
    clock.advance(0.1)  # a cooldown without a verdict: failed, open for another cooldown
    assert reasons_of(table, "a") == ("CircuitOpen",)
    state = table.provider("ns", "a")
    assert state.breaker.state(clock()) is CircuitState.OPEN
    assert state.breaker.open_until == pytest.approx(clock() + 10)
    assert state.last_error == "the half-open trial had no verdict within 10 s"
    assert state.in_flight == 1, "the call may still be running: its lease holds"
    assert pick(table) == "b"
    clock.advance(10)
    second = trial(table)  # a new trial, long before the first lease's TTL
    assert second != lease
    # The first call's verdict comes late, and still counts: a success closes the circuit.
    assert table.report(Outcome(OutcomeKind.SUCCESS, lease_id=lease)).circuit == "Closed"
    assert [pick(table) for _ in range(2)] == ["a", "a"]
    clock.advance(200)  # both leases expire; the closed circuit stays closed
    assert table.in_flight_leases() == 0
    assert table.provider("ns", "a").breaker.state(clock()) is CircuitState.CLOSED


def test_a_trial_reported_in_time_is_judged_by_its_outcome(clock: FakeClock) -> None:
    table = RoutingTable(clock=clock, rng=random.Random(0), lease_ttl=120.0)
    open_circuit(table, cooldown=10)
    clock.advance(10)
    lease = trial(table)
    clock.advance(5)
    table.report(Outcome(OutcomeKind.SUCCESS, lease_id=lease))
    clock.advance(30)  # the trial's deadline passes with no trial out: nothing happens
    assert table.provider("ns", "a").breaker.state(clock()) is CircuitState.CLOSED
    assert pick(table) == "a"


def test_the_trial_never_waits_longer_than_the_lease_ttl(clock: FakeClock) -> None:
    table = RoutingTable(clock=clock, rng=random.Random(0), lease_ttl=20.0)
    open_circuit(table, cooldown=300)
    assert table.trial_timeout("ns", "a") == 20
    clock.advance(300)
    trial(table)
    clock.advance(20)  # the lease expires as the trial times out: the timeout wins, failed
    assert reasons_of(table, "a") == ("CircuitOpen",)
    assert table.in_flight_leases() == 0


def test_in_the_fleet_a_timed_out_trial_reopens_the_circuit_everywhere(
        clock: FakeClock) -> None:
    one = RoutingTable(clock=clock, rng=random.Random(0))
    two = RoutingTable(clock=clock, rng=random.Random(1))
    for table in (one, two):
        table.upsert_provider("ns", "a", provider())
        table.upsert_policy("ns", "p", policy(failover={"failureThreshold": 1,
                                                        "cooldownSeconds": 30}))

    def sync() -> dict[int, list[tuple[tuple[str, str], str]]]:
        snaps = [t.fleet.snapshot(t.clock()) for t in (one, two)]
        return {0: one.fleet.apply([snaps[1]], clock()),
                1: two.fleet.apply([snaps[0]], clock())}

    sync()
    one.report(Outcome(OutcomeKind.ERROR, provider="a", namespace="ns"))
    claims = sync()
    clock.advance(30)
    key, flip_id = claims[0][0]
    assert one.fleet.grant_trial(key, flip_id, clock())
    assert one.route(RouteRequest(namespace="ns")).lease_id is not None
    sync()
    assert two.provider("ns", "a").breaker.trial == PENDING_TRIAL
    clock.advance(30)  # the granted trial gets no verdict within the cooldown
    with pytest.raises(NoProviderAvailable):
        pick(one)
    assert one.provider("ns", "a").breaker.state(clock()) is CircuitState.OPEN
    claims = sync()  # the re-opening is a new flip: the other replica adopts it
    breaker = two.provider("ns", "a").breaker
    assert breaker.state(clock()) is CircuitState.OPEN
    assert breaker.open_until == pytest.approx(clock() + 30)
    new_flips = {flip for replica in claims.values() for _, flip in replica}
    assert new_flips, "the fleet claims the new flip's trial"
    assert flip_id not in new_flips
    clock.advance(30)
    (key, new_flip), = claims[1]
    assert two.fleet.grant_trial(key, new_flip, clock())
    assert two.route(RouteRequest(namespace="ns")).target.provider.name == "a"
    with pytest.raises(NoProviderAvailable):
        pick(one)


def test_a_trial_noticed_late_failed_at_its_deadline(clock: FakeClock) -> None:
    table = RoutingTable(clock=clock, rng=random.Random(0), lease_ttl=120.0)
    open_circuit(table, cooldown=10)
    clock.advance(10)
    trial(table)
    clock.advance(15)  # nothing asked the table at the deadline (5 s ago)
    breaker = table.provider("ns", "a").breaker
    assert reasons_of(table, "a") == ("CircuitOpen",)
    assert breaker.open_until == pytest.approx(clock() + 5), "open from the deadline on"
