"""Sticky sessions: the same key reaches the same provider while it is eligible, and adding or
removing a provider moves only the sessions that must move."""

from __future__ import annotations

from provider_router.engine import RoutingTable
from support.engine import FakeClock, pick, policy


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
