"""Property tests: invariants that hold whatever the providers, their state and the sequence."""

from __future__ import annotations

import random
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from provider_router.api import Strategy
from provider_router.engine import (
    NoProviderAvailable,
    Outcome,
    OutcomeKind,
    ProbeResult,
    RouteRequest,
    RoutingTable,
    UnknownLease,
)
from support.engine import FakeClock, policy, provider

provider_fields = st.fixed_dictionaries({
    "priority": st.integers(0, 3),
    "weight": st.integers(0, 5),
    "costPer1kTokens": st.sampled_from([0.0, 0.1, 0.5, 1.0]),
    "disabled": st.booleans(),
    "maxConcurrent": st.one_of(st.none(), st.integers(1, 3)),
    "rateLimitRPM": st.one_of(st.none(), st.integers(1, 5)),
    "capabilities": st.sets(st.sampled_from(["chat", "vision"])).map(sorted),
})

events = st.lists(st.one_of(
    st.tuples(st.just("route"), st.sampled_from([(), ("chat",), ("vision",)])),
    st.tuples(st.just("report"), st.sampled_from(list(OutcomeKind))),
    st.tuples(st.just("probe"), st.booleans()),
    st.tuples(st.just("tick"), st.sampled_from([0.5, 5.0, 31.0, 61.0])),
), max_size=60)


def build(fields: list[dict[str, object]], strategy: Strategy) -> tuple[RoutingTable, FakeClock]:
    clock = FakeClock()
    table = RoutingTable(clock=clock, rng=random.Random(0), lease_ttl=30)
    for index, spec in enumerate(fields):
        table.upsert_provider("ns", f"p{index}", provider(**spec))
    table.upsert_policy("ns", "p", policy(strategy=strategy.value,
                                          failover={"failureThreshold": 2,
                                                    "cooldownSeconds": 30}))
    return table, clock


@settings(max_examples=150, deadline=None)
@given(fields=st.lists(provider_fields, min_size=1, max_size=6),
       strategy=st.sampled_from(list(Strategy)), script=events, data=st.data())
def test_an_ineligible_provider_is_never_returned(fields, strategy, script, data) -> None:
    table, clock = build(fields, strategy)
    leases: list[tuple[str, float]] = []
    names = [f"p{i}" for i in range(len(fields))]
    for action, arg in script:
        if action == "tick":
            clock.advance(arg)
        elif action == "probe":
            table.record_probe("ns", data.draw(st.sampled_from(names)),
                               ProbeResult(arg, 1.0, "X", "x"))
        elif action == "report" and leases:
            lease_id, leased_at = leases.pop(0)
            try:
                table.report(Outcome(arg, lease_id=lease_id, retry_after_seconds=2,
                                     input_tokens=10))
            except UnknownLease:
                assert clock.now - leased_at >= table.lease_ttl  # only expiry forgets a lease
        elif action == "route":
            request = RouteRequest(namespace="ns", capabilities=arg)
            # What an independent reading of the rules allows, before the decision:
            explained = {c.name: c for c in table.explain(request)}
            try:
                decision = table.route(request)
            except NoProviderAvailable:
                assert all(c.reasons for c in explained.values())
                continue
            chosen = decision.target.provider.name
            assert explained[chosen].reasons == ()
            state = table.provider("ns", chosen)
            assert not state.spec.disabled
            assert set(arg) <= state.capabilities
            for fallback in decision.fallbacks:
                assert explained[fallback.provider.name].reasons == ()
            if decision.lease_id:
                leases.append((decision.lease_id, clock.now))


@settings(max_examples=50, deadline=None)
@given(count=st.integers(1, 12), rounds=st.integers(1, 4))
def test_round_robin_is_fair_over_a_cycle(count: int, rounds: int) -> None:
    table, _ = build([{}] * count, Strategy.ROUND_ROBIN)
    seen = Counter(table.route(RouteRequest(namespace="ns", lease=False)).target.provider.name
                   for _ in range(count * rounds))
    assert set(seen.values()) == {rounds}
    assert len(seen) == count


@settings(max_examples=20, deadline=None)
@given(weights=st.lists(st.integers(1, 9), min_size=2, max_size=5))
def test_weighted_split_converges_to_the_weights(weights: list[int]) -> None:
    table, _ = build([{"weight": w} for w in weights], Strategy.WEIGHTED)
    draws = 6000
    seen = Counter(table.route(RouteRequest(namespace="ns", lease=False)).target.provider.name
                   for _ in range(draws))
    total = sum(weights)
    for index, weight in enumerate(weights):
        assert abs(seen[f"p{index}"] / draws - weight / total) < 0.035


@settings(max_examples=60, deadline=None)
@given(fields=st.lists(provider_fields, min_size=1, max_size=6),
       strategy=st.sampled_from(list(Strategy)),
       sessions=st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=10),
       disable=st.integers(0, 5))
def test_sticky_keys_stay_put_while_their_provider_is_eligible(
        fields, strategy, sessions, disable) -> None:
    for spec in fields:
        spec.update(maxConcurrent=None, rateLimitRPM=None)
    table, _ = build(fields, strategy)
    table.upsert_policy("ns", "p", policy(strategy=strategy.value,
                                          stickySessions={"enabled": True}))

    def owner(session: str) -> str | None:
        try:
            return table.route(RouteRequest(namespace="ns", session=session,
                                            lease=False)).target.provider.name
        except NoProviderAvailable:
            return None

    first = {s: owner(s) for s in sessions}
    victim = f"p{disable % len(fields)}"
    table.upsert_provider("ns", victim, provider(**{**fields[disable % len(fields)],
                                                    "disabled": True}))
    for session, was in first.items():
        if was is not None and was != victim:
            assert owner(session) == was
