"""Sticky sessions: the same key reaches the same provider while it is eligible, and adding or
removing a provider moves only the sessions that must move."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provider_router.engine import ProbeResult, RoutingTable
from provider_router.engine._sticky import owner
from support.engine import FakeClock, pick, policy, provider


def owners(table: RoutingTable, sessions: int = 300) -> dict[str, str]:
    return {f"s{i}": pick(table, session=f"s{i}") for i in range(sessions)}


def test_session_stays_put_while_its_provider_is_eligible(table: RoutingTable, add) -> None:
    add(a={}, b={}, c={})
    table.upsert_policy("ns", "p", policy(strategy="RoundRobin",
                                          stickySessions={"enabled": True}))
    first = owners(table)
    assert set(first.values()) == {"a", "b", "c"}
    assert owners(table) == first


def test_session_moves_when_its_provider_is_excluded_and_only_those_move(
        table: RoutingTable, add) -> None:
    add(a={}, b={}, c={})
    table.upsert_policy("ns", "p", policy(stickySessions={"enabled": True}))
    before = owners(table)
    add(b={"disabled": True})
    after = owners(table)
    moved = {s for s in before if before[s] != after[s]}
    assert moved == {s for s, owner in before.items() if owner == "b"}


def test_adding_a_provider_moves_few_sessions(table: RoutingTable, add) -> None:
    add(**{f"p{i}": {} for i in range(4)})
    # Without remembered assignments, rendezvous hashing alone must keep most keys in place.
    table.upsert_policy("ns", "p", policy(strategy="Weighted"))
    before = owners(table, 1000)
    add(p4={})
    after = owners(table, 1000)
    moved = [s for s in before if before[s] != after[s]]
    assert all(after[s] == "p4" for s in moved)
    assert 100 < len(moved) < 300  # about 1/5 of the keys, all to the newcomer


def test_assignment_expires_after_ttl(table: RoutingTable, add, clock: FakeClock) -> None:
    add(a={}, b={})
    table.upsert_policy("ns", "p", policy(stickySessions={"enabled": True, "ttlSeconds": 10}))
    owner = pick(table, session="k")
    policy_state = table.policy("ns", "p")
    assert policy_state.sticky["k"][0] == ("ns", owner)
    clock.advance(11)
    pick(table, session="k")
    assert policy_state.sticky["k"][1] > clock.now


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.booleans(), st.integers(0, 19)),
                min_size=1, max_size=60))
def test_remembered_owners_match_a_full_recount_while_providers_come_and_go(
        steps: list[tuple[int, bool, int]]) -> None:
    table = RoutingTable(clock=FakeClock(), rng=random.Random(0))
    weights = [1, 2, 3, 5, 8, 0]
    for i, weight in enumerate(weights):
        table.upsert_provider("ns", f"p{i}", provider(weight=weight))
    table.upsert_policy("ns", "p", policy(strategy="Weighted"))
    up = dict.fromkeys(range(len(weights)), True)
    unauthorized = ProbeResult(False, None, "Unauthorized", "HTTP 401", unauthorized=True)
    for index, eligible, session in steps:
        if up[index] != eligible:
            table.record_probe("ns", f"p{index}",
                               ProbeResult(True, 5.0) if eligible else unauthorized)
            up[index] = eligible
        expected = owner(f"s{session}", [(i, f"p{i}", weights[i]) for i in up if up[i]])
        if expected is None:
            continue
        assert pick(table, session=f"s{session}") == f"p{expected[0]}"


def test_a_full_session_map_forgets_the_least_recently_routed(
        table: RoutingTable, add, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("provider_router.engine._policy.MAX_SESSIONS_PER_POLICY", 3)
    add(a={}, b={})
    table.upsert_policy("ns", "p", policy(stickySessions={"enabled": True}))
    for key in ("k1", "k2", "k3"):
        pick(table, session=key)
    pick(table, session="k1")  # k1 is routed again: k2 is now the oldest
    pick(table, session="k4")
    assert list(table.policy("ns", "p").sticky) == ["k3", "k1", "k4"]
