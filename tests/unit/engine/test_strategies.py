"""Each strategy orders the eligible providers as documented, ties and zero weights included."""

from __future__ import annotations

from collections import Counter

import pytest

from provider_router.engine import Outcome, OutcomeKind, RouteRequest, RoutingTable
from support.engine import FakeClock, pick, picks, policy


def test_round_robin_cycles_through_every_provider_in_turn(table: RoutingTable, add) -> None:
    add(a={}, b={}, c={})
    table.upsert_policy("ns", "p", policy(strategy="RoundRobin"))
    assert picks(table, 6) == ["a", "b", "c", "a", "b", "c"]


def test_round_robin_skips_an_excluded_provider_and_keeps_the_turn(
        table: RoutingTable, add) -> None:
    add(a={}, b={}, c={})
    table.upsert_policy("ns", "p", policy(strategy="RoundRobin"))
    assert pick(table) == "a"
    add(b={"disabled": True})
    assert picks(table, 4) == ["c", "a", "c", "a"]


def test_priority_prefers_the_highest_and_round_robins_its_ties(
        table: RoutingTable, add) -> None:
    add(low={"priority": 1}, high1={"priority": 9}, high2={"priority": 9})
    table.upsert_policy("ns", "p", policy(strategy="Priority"))
    assert picks(table, 4) == ["high1", "high2", "high1", "high2"]
    decision = table.route(RouteRequest(namespace="ns", lease=False))
    assert decision.target.provider.name == "high1"
    assert [t.provider.name for t in decision.fallbacks] == ["high2", "low"]


def test_priority_falls_to_the_next_level_when_the_top_is_excluded(
        table: RoutingTable, add) -> None:
    add(low={"priority": 1}, high={"priority": 9, "disabled": True})
    table.upsert_policy("ns", "p", policy(strategy="Priority"))
    assert pick(table) == "low"


def test_cost_picks_the_cheapest_and_uses_split_pricing(table: RoutingTable, add) -> None:
    add(flat={"costPer1kTokens": 0.5},
        split={"costPer1kTokens": 9.0, "pricing": {"input": 0.1, "output": 0.3}},
        free={"costPer1kTokens": 0.0, "disabled": True})
    table.upsert_policy("ns", "p", policy(strategy="Cost"))
    assert picks(table, 3) == ["split", "split", "split"]


def test_cost_ties_take_turns(table: RoutingTable, add) -> None:
    add(a={"costPer1kTokens": 0.1}, b={"costPer1kTokens": 0.1}, c={"costPer1kTokens": 0.2})
    table.upsert_policy("ns", "p", policy(strategy="Cost"))
    assert picks(table, 4) == ["a", "b", "a", "b"]


def test_latency_uses_the_prior_until_measured_then_the_measurement(
        table: RoutingTable, add) -> None:
    add(fast={"avgLatencyMs": 100}, slow={"avgLatencyMs": 900})
    table.upsert_policy("ns", "p", policy(strategy="Latency"))
    assert pick(table) == "fast"
    for _ in range(20):
        table.report(Outcome(OutcomeKind.SUCCESS, provider="fast", namespace="ns",
                             latency_ms=2000))
    assert pick(table) == "slow"


def test_latency_ranks_streamed_requests_by_time_to_first_token(
        table: RoutingTable, add) -> None:
    # "steady" answers whole in 800 ms; "bursty" starts streaming at once but ends later.
    add(steady={"avgLatencyMs": 100}, bursty={"avgLatencyMs": 900})
    table.upsert_policy("ns", "p", policy(strategy="Latency"))
    table.report(Outcome(OutcomeKind.SUCCESS, provider="steady", namespace="ns",
                         latency_ms=800, ttft_ms=700))
    table.report(Outcome(OutcomeKind.SUCCESS, provider="bursty", namespace="ns",
                         latency_ms=3000, ttft_ms=50))
    assert pick(table) == "steady"
    assert pick(table, stream=True) == "bursty"
    state = table.provider("ns", "bursty")
    assert (state.reported_latency_ms, state.reported_ttft_ms) == (3000, 50)
    # The time-to-first-token average moves like the latency one.
    table.report(Outcome(OutcomeKind.SUCCESS, provider="bursty", namespace="ns",
                         latency_ms=3000, ttft_ms=4050))
    assert state.reported_ttft_ms == pytest.approx(50 + 0.2 * 4000)
    assert pick(table, stream=True) == "steady"


def test_a_streamed_request_ranks_by_latency_where_no_ttft_was_measured(
        table: RoutingTable, add) -> None:
    add(fast={"avgLatencyMs": 100}, slow={"avgLatencyMs": 900})
    table.upsert_policy("ns", "p", policy(strategy="Latency"))
    assert pick(table, stream=True) == "fast"
    table.report(Outcome(OutcomeKind.SUCCESS, provider="slow", namespace="ns", ttft_ms=200))
    assert pick(table, stream=True) == "fast", "fast's 100 ms latency beats slow's 200 ms TTFT"
    table.report(Outcome(OutcomeKind.ERROR, provider="fast", namespace="ns", ttft_ms=1))
    assert table.provider("ns", "fast").reported_ttft_ms is None, "failures teach no speed"


def test_stream_changes_nothing_under_other_strategies(table: RoutingTable, add) -> None:
    add(a={"priority": 1}, b={"priority": 5})
    table.upsert_policy("ns", "p", policy(strategy="Priority"))
    table.report(Outcome(OutcomeKind.SUCCESS, provider="a", namespace="ns", ttft_ms=1))
    assert pick(table, stream=True) == pick(table) == "b"
    assert len(table.policy("ns", "p").entries) == 1, "one pool serves both"


def test_least_loaded_counts_leases_relative_to_max_concurrent(
        table: RoutingTable, add) -> None:
    add(small={"maxConcurrent": 2}, big={"maxConcurrent": 10})
    table.upsert_policy("ns", "p", policy(strategy="LeastLoaded"))
    chosen = [table.route(RouteRequest(namespace="ns")).target.provider.name
              for _ in range(6)]
    # Ratios after each lease: small 1/2 vs big 1/10 ... big takes five before small's second.
    assert Counter(chosen) == Counter({"big": 5, "small": 1})


def test_least_loaded_prefers_the_provider_whose_lease_was_released(
        table: RoutingTable, add) -> None:
    add(a={}, b={})
    table.upsert_policy("ns", "p", policy(strategy="LeastLoaded"))
    first = table.route(RouteRequest(namespace="ns"))
    second = table.route(RouteRequest(namespace="ns"))
    assert {first.target.provider.name, second.target.provider.name} == {"a", "b"}
    assert second.lease_id is not None
    table.report(Outcome(OutcomeKind.SUCCESS, lease_id=second.lease_id))
    assert table.route(RouteRequest(namespace="ns")).target.provider.name == \
        second.target.provider.name


def _order(table: RoutingTable, **fields: object) -> list[str]:
    decision = table.route(RouteRequest(namespace="ns", lease=False, **fields))  # type: ignore[arg-type]
    return [decision.target.provider.name, *(t.provider.name for t in decision.fallbacks)]


def test_capability_headroom_is_the_number_of_requests_left(table: RoutingTable, add) -> None:
    # Fractions left would all be 1.0 here and cost would decide (small, big, unlimited).
    add(small={"costPer1kTokens": 0.1, "rateLimitRPM": 100},
        big={"costPer1kTokens": 1.0, "rateLimitRPM": 500},
        unlimited={"costPer1kTokens": 5.0})
    table.upsert_policy("ns", "p", policy(strategy="Capability"))
    assert _order(table) == ["unlimited", "big", "small"]


def test_capability_prefers_headroom_then_cost_then_load(
        table: RoutingTable, add, clock: FakeClock) -> None:
    add(cheap={"costPer1kTokens": 0.1, "rateLimitRPM": 3, "capabilities": ["chat"]},
        dear={"costPer1kTokens": 1.0, "rateLimitRPM": 2, "capabilities": ["chat"]},
        blind={"costPer1kTokens": 0.0, "capabilities": ["embeddings"]})
    table.upsert_policy("ns", "p", policy(strategy="Capability"))
    # 3 left against 2; then 2 and 2, a tie the cheaper one wins; then 1 against 2.
    assert picks(table, 3, capabilities=("chat",)) == ["cheap", "cheap", "dear"]
    clock.advance(61)  # the minute slides past every request: 3 against 2 again
    assert pick(table, capabilities=("chat",)) == "cheap"


def test_capability_names_compare_case_insensitively(table: RoutingTable, add) -> None:
    add(a={"capabilities": ["Chat", "Vision"]}, b={"capabilities": ["chat"]},
        c={"capabilities": ["EMBEDDINGS"]})
    table.upsert_policy("ns", "p", policy(strategy="Capability",
                                          requirements={"capabilities": ["CHAT"]}))
    assert sorted(_order(table)) == ["a", "b"]
    assert _order(table, capabilities=("vision",)) == ["a"]
    assert _order(table, capabilities=("vIsIoN", "Chat")) == ["a"]
    table.upsert_policy("ns", "p", policy(strategy="RoundRobin"))
    assert _order(table, capabilities=("embeddings",)) == ["c"]


def test_weighted_splits_by_weight_and_never_picks_zero_weight_while_others_serve(
        table: RoutingTable, add) -> None:
    add(a={"weight": 3}, b={"weight": 1}, off={"weight": 0})
    table.upsert_policy("ns", "p", policy(strategy="Weighted"))
    counts = Counter(picks(table, 4000))
    assert counts["off"] == 0
    assert 0.70 < counts["a"] / 4000 < 0.80


def test_weighted_zero_weight_serves_as_fallback_and_as_last_resort(
        table: RoutingTable, add) -> None:
    add(a={"weight": 1}, off={"weight": 0})
    table.upsert_policy("ns", "p", policy(strategy="Weighted"))
    decision = table.route(RouteRequest(namespace="ns", lease=False))
    assert [decision.target.provider.name, *(t.provider.name for t in decision.fallbacks)] \
        == ["a", "off"]
    add(a={"weight": 1, "disabled": True})
    assert pick(table) == "off"


def test_weighted_is_stable_per_session_key(table: RoutingTable, add) -> None:
    add(a={"weight": 1}, b={"weight": 1}, c={"weight": 1})
    table.upsert_policy("ns", "p", policy(strategy="Weighted"))
    owners = {f"user-{i}": pick(table, session=f"user-{i}") for i in range(60)}
    assert set(owners.values()) == {"a", "b", "c"}
    for session, owner in owners.items():
        assert pick(table, session=session) == owner


def test_answer_holds_at_most_max_fallbacks_and_none_when_failover_is_off(
        table: RoutingTable, add) -> None:
    add(a={}, b={}, c={}, d={})
    table.upsert_policy("ns", "p", policy(failover={"maxFallbacks": 2}))
    decision = table.route(RouteRequest(namespace="ns", lease=False))
    assert len(decision.fallbacks) == 2
    assert decision.target.provider.name not in {t.provider.name for t in decision.fallbacks}
    table.upsert_policy("ns", "p", policy(failover={"enabled": False}))
    assert table.route(RouteRequest(namespace="ns", lease=False)).fallbacks == ()


def test_requirements_filter_by_capability_and_model(table: RoutingTable, add) -> None:
    add(chat={"capabilities": ["chat"], "models": ["llama3"]},
        vision={"capabilities": ["chat", "vision"], "models": ["gpt-4o"]},
        anything={"capabilities": ["chat"]})
    table.upsert_policy("ns", "p", policy(strategy="RoundRobin"))
    assert set(picks(table, 4, capabilities=("vision",))) == {"vision"}
    assert set(picks(table, 4, model="llama3")) == {"chat", "anything"}
    decision = table.route(RouteRequest(namespace="ns", model="gpt-4o", lease=False))
    assert decision.target.model == "gpt-4o"


def test_policy_requirements_apply_to_every_request(table: RoutingTable, add) -> None:
    add(chat={"capabilities": ["chat"]}, emb={"capabilities": ["embeddings"]})
    table.upsert_policy("ns", "p", policy(requirements={"capabilities": ["embeddings"]}))
    assert set(picks(table, 3)) == {"emb"}


def test_answer_names_the_provider_api_base_and_first_model(table: RoutingTable, add) -> None:
    add(a={"baseURL": "http://h:1/", "models": ["m1", "m2"], "apiFormat": "vllm"},
        b={"baseURL": "https://api.example.com/v1", "disabled": True})
    table.upsert_policy("ns", "p", policy())
    target = table.route(RouteRequest(namespace="ns", lease=False)).target
    assert (target.provider.api_base, target.model, target.provider.api_format.value) == (
        "http://h:1/v1", "m1", "vllm")
    add(a={"disabled": True}, b={"baseURL": "https://api.example.com/v1"})
    assert table.route(RouteRequest(namespace="ns", lease=False)).target.provider.api_base \
        == "https://api.example.com/v1"
