"""The table's fleet view: the others' totals added to limits, shares when cut off, circuit
flips adopted, and one half-open trial granted at a time; two tables stand in for replicas."""

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


def replica(clock: FakeClock, **spec: object) -> RoutingTable:
    table = RoutingTable(clock=clock, rng=random.Random(0))
    table.upsert_provider("ns", "a", provider(costPer1kTokens=1.0, **spec))
    table.upsert_policy("ns", "p", policy(budget={"limitUSD": 10, "window": "1h"},
                                          failover={"failureThreshold": 1,
                                                    "cooldownSeconds": 30}))
    return table


def sync(*tables: RoutingTable) -> dict[int, list[tuple[tuple[str, str], str]]]:
    """Every table takes in every other's snapshot, as the shared-state edge does."""
    snaps = [t.fleet.snapshot(t.clock()) for t in tables]
    return {i: t.fleet.apply([s for j, s in enumerate(snaps) if j != i], t.clock())
            for i, t in enumerate(tables)}


def spend(table: RoutingTable, dollars: int) -> None:
    table.report(Outcome(namespace="ns", provider="a", policy="p",
                         outcome=OutcomeKind.SUCCESS, input_tokens=500 * dollars,
                         output_tokens=500 * dollars))


def test_the_others_spend_counts_against_the_budget() -> None:
    clock = FakeClock()
    one, two = replica(clock), replica(clock)
    spend(one, 6)
    spend(two, 4)
    pick(one)  # neither is over alone
    sync(one, two)
    with pytest.raises(NoProviderAvailable):
        pick(one)
    with pytest.raises(NoProviderAvailable):
        pick(two)


def test_totals_replace_rather_than_accumulate() -> None:
    clock = FakeClock()
    one, two = replica(clock), replica(clock)
    spend(two, 3)
    for _ in range(5):
        sync(one, two)
    assert one.policy("ns", "p").others_spend == pytest.approx(3.0)


def test_rpm_counts_every_replica_and_ages_out_with_the_window() -> None:
    clock = FakeClock()
    one, two = replica(clock, rateLimitRPM=4), replica(clock, rateLimitRPM=4)
    for _ in range(3):
        pick(two)
    pick(one)
    sync(one, two)
    with pytest.raises(NoProviderAvailable):
        pick(one)
    clock.advance(61)
    sync(one, two)
    assert pick(one) == "a"


def test_cut_off_each_replica_enforces_its_share() -> None:
    clock = FakeClock()
    table = replica(clock, rateLimitRPM=6)
    table.fleet.divide(3, clock())
    assert [pick(table) for _ in range(2)] == ["a", "a"]
    with pytest.raises(NoProviderAvailable):
        pick(table)
    spend(table, 3)  # $3 of $10: a third is $3.33
    table.fleet.divide(1, clock())
    clock.advance(61)
    assert pick(table) == "a"
    table.fleet.divide(3, clock())
    spend(table, 1)
    clock.advance(61)
    with pytest.raises(NoProviderAvailable):
        pick(table)


def test_cooldowns_and_circuits_spread_and_one_trial_is_granted() -> None:
    clock = FakeClock()
    one, two = replica(clock), replica(clock)
    sync(one, two)
    one.report(Outcome(namespace="ns", provider="a", outcome=OutcomeKind.ERROR))
    assert one.provider("ns", "a").breaker.state(clock()) is CircuitState.OPEN
    claims = sync(one, two)
    assert two.provider("ns", "a").breaker.state(clock()) is CircuitState.OPEN
    assert len(claims[0]) == len(claims[1]) == 1
    clock.advance(31)
    for table in (one, two):  # half-open, but nobody is granted the trial yet
        with pytest.raises(NoProviderAvailable):
            pick(table)
    key, flip_id = claims[1][0]
    assert two.fleet.grant_trial(key, flip_id, clock())
    decision = two.route(RouteRequest(namespace="ns", lease=True))
    assert decision.lease_id is not None
    with pytest.raises(NoProviderAvailable):
        pick(one)
    two.report(Outcome(lease_id=decision.lease_id, outcome=OutcomeKind.SUCCESS))
    sync(one, two)
    assert one.provider("ns", "a").breaker.state(clock()) is CircuitState.CLOSED
    assert pick(one) == "a"
    two.report(Outcome(namespace="ns", provider="a", outcome=OutcomeKind.RATE_LIMITED,
                       retry_after_seconds=20))
    sync(one, two)
    assert one.provider("ns", "a").cooling_until == pytest.approx(clock() + 20)


def test_cut_off_a_pending_trial_is_released() -> None:
    clock = FakeClock()
    one, two = replica(clock), replica(clock)
    one.report(Outcome(namespace="ns", provider="a", outcome=OutcomeKind.ERROR))
    sync(one, two)
    assert two.provider("ns", "a").breaker.trial == PENDING_TRIAL
    clock.advance(31)
    two.fleet.divide(2, clock())
    assert pick(two) == "a"
