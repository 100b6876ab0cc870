"""LeastLoaded and Capability on what vLLM servers say about themselves.

The servers are real loopback servers serving vLLM-shaped ``/metrics``; the table runs on a
hand-driven clock, so "two intervals later" needs no sleeping. Scrapes are made one at a time
(``scrape_now``), exactly as the scrape loop makes them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from provider_router.api import LLMProviderSpec, RoutingPolicySpec
from provider_router.engine import (
    Outcome,
    OutcomeKind,
    RouteRequest,
    RoutingTable,
    load_view,
)
from provider_router.health import Prober
from support.engine import FakeClock

from .conftest import FakeVllm, StartApp

INTERVAL = 5


def vllm(url: str, **extra: Any) -> LLMProviderSpec:
    return LLMProviderSpec.model_validate({
        "baseURL": url, "apiFormat": "vllm", "healthCheck": {"enabled": False},
        "loadMetrics": {"enabled": True, "intervalSeconds": INTERVAL}, **extra})


def route(table: RoutingTable, lease: bool = True, **fields: Any) -> str:
    return table.route(RouteRequest(namespace="ns", lease=lease, **fields)).target.provider.name


@pytest.fixture
async def prober(table: RoutingTable) -> AsyncIterator[Prober]:
    prober = Prober(table, initial_delay=0.0)
    yield prober
    await asyncio.wait_for(prober.stop(), 10)


async def scrape(prober: Prober, *names: str) -> None:
    for name in names:
        sample = await asyncio.wait_for(prober.scraper.scrape_now("ns", name), 10)
        assert sample is not None, f"scrape of {name} failed"


async def test_least_loaded_follows_the_providers_queue_not_our_leases(
        start_app: StartApp, table: RoutingTable, prober: Prober) -> None:
    # "busy" is loaded by clients that never ask the router; "idle" is not.
    busy, idle = FakeVllm(running=16, waiting=14), FakeVllm(running=1, waiting=0)
    table.upsert_provider("ns", "busy", vllm(await start_app(busy.app)))
    table.upsert_provider("ns", "idle", vllm(await start_app(idle.app)))
    table.upsert_policy("ns", "p", RoutingPolicySpec.model_validate(
        {"strategy": "LeastLoaded", "default": True}))
    # Without figures, our leases alone split the load evenly: they cannot see busy's queue.
    for _ in range(4):
        table.route(RouteRequest(namespace="ns", policy="p"))
    assert table.provider("ns", "idle").in_flight == 2
    await scrape(prober, "busy", "idle")
    # idle has 1 in its queue plus each route sent since: it takes them until it nears 30.
    picks = [route(table) for _ in range(20)]
    assert picks == ["idle"] * 20
    explained = table.explain(RouteRequest(namespace="ns"))
    detail = {c.name: c.detail for c in explained}
    assert "16 running + 14 waiting" in detail["busy"]
    assert "1 running + 0 waiting + 20 routed - 0 reported since" in detail["idle"]
    # A new sample replaces the routes-since estimate with the server's own count.
    idle.running, busy.running, busy.waiting = 40, 2, 0
    await scrape(prober, "busy", "idle")
    assert [route(table) for _ in range(5)] == ["busy"] * 5


async def test_stale_figures_are_ignored_without_any_other_event(
        start_app: StartApp, table: RoutingTable, clock: FakeClock, prober: Prober) -> None:
    busy, idle = FakeVllm(running=0, waiting=0), FakeVllm(running=50, waiting=10)
    table.upsert_provider("ns", "a", vllm(await start_app(busy.app)))
    table.upsert_provider("ns", "b", vllm(await start_app(idle.app)))
    table.upsert_policy("ns", "p", RoutingPolicySpec.model_validate(
        {"strategy": "LeastLoaded", "default": True}))
    # While b's own queue is long, a takes five routes (and holds their leases).
    await scrape(prober, "a", "b")
    for _ in range(5):
        assert route(table) == "a"
    assert table.provider("ns", "a").in_flight == 5
    clock.advance(2 * INTERVAL - 0.5)
    assert route(table, lease=False) == "a"  # still fresh: b's own queue is 60
    clock.advance(1.0)
    # Two intervals without a sample: the figures no longer count, and a's five leases make
    # b the less loaded one. Nothing but time has happened.
    assert route(table, lease=False) == "b"
    provider = table.provider("ns", "b")
    assert provider.live is not None
    assert not provider.live.fresh(clock())


async def test_a_nearly_full_kv_cache_ranks_last(
        start_app: StartApp, table: RoutingTable, prober: Prober) -> None:
    full, roomy = FakeVllm(running=0, waiting=0, kv=0.97), FakeVllm(running=12, kv=0.30)
    table.upsert_provider("ns", "full", vllm(await start_app(full.app)))
    table.upsert_provider("ns", "roomy", vllm(await start_app(roomy.app)))
    table.upsert_policy("ns", "ll", RoutingPolicySpec.model_validate(
        {"strategy": "LeastLoaded", "default": True}))
    table.upsert_policy("ns", "cap", RoutingPolicySpec.model_validate(
        {"strategy": "Capability"}))
    await scrape(prober, "full", "roomy")
    # An empty queue does not make up for a cache about to preempt.
    assert [route(table, lease=False) for _ in range(3)] == ["roomy"] * 3
    assert route(table, lease=False, policy="cap") == "roomy"
    decision = table.route(RouteRequest(namespace="ns", lease=False, explain=True))
    assert [t.provider.name for t in (decision.target, *decision.fallbacks)] == ["roomy",
                                                                                 "full"]
    # The threshold is the policy's: one that tolerates 98% ranks by queue again.
    table.upsert_policy("ns", "ll", RoutingPolicySpec.model_validate(
        {"strategy": "LeastLoaded", "default": True, "kvCacheThreshold": 0.98}))
    assert route(table, lease=False) == "full"


async def test_providers_without_figures_still_rank_by_leases(
        start_app: StartApp, table: RoutingTable, prober: Prober) -> None:
    server = FakeVllm(running=3)
    table.upsert_provider("ns", "scraped", vllm(await start_app(server.app)))
    table.upsert_provider("ns", "plain", LLMProviderSpec.model_validate(
        {"baseURL": "http://127.0.0.1:9", "healthCheck": {"enabled": False}}))
    table.upsert_policy("ns", "p", RoutingPolicySpec.model_validate(
        {"strategy": "LeastLoaded", "default": True}))
    await scrape(prober, "scraped")
    # scraped: 3 of a nominal 100 in its queue; plain: none of ours. Then plain's leases
    # count against it, and the two alternate by the same measure.
    picks = [route(table) for _ in range(8)]
    assert picks[:3] == ["plain"] * 3
    assert set(picks[3:]) == {"plain", "scraped"}


async def test_calls_reported_since_the_sample_leave_the_estimate(
        start_app: StartApp, table: RoutingTable, prober: Prober) -> None:
    server = FakeVllm(running=4, waiting=0)
    table.upsert_provider("ns", "v", vllm(await start_app(server.app), maxConcurrent=10))
    table.upsert_policy("ns", "p", RoutingPolicySpec.model_validate(
        {"strategy": "LeastLoaded", "default": True}))
    await scrape(prober, "v")
    leases = [table.route(RouteRequest(namespace="ns")).lease_id for _ in range(3)]
    assert load_of(table, "v") == pytest.approx((4 + 3) / 10)  # relative to maxConcurrent
    for lease in leases[:2]:
        table.report(Outcome(OutcomeKind.SUCCESS, lease_id=lease))
    assert load_of(table, "v") == pytest.approx((4 + 3 - 2) / 10)


def load_of(table: RoutingTable, name: str) -> float | None:
    state = table.provider("ns", name)
    view = load_view(state, table.clock())
    assert view is not None
    value = view["queueLoad"]
    assert isinstance(value, float)
    return value
