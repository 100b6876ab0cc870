"""Budgets and rate limits hold across standalone replicas sharing a real redis-server.

Traffic is paced to about one admission per replica per sync interval, so the documented
overshoot bound (what each replica admits before its totals reach the others) is one admission
per replica; without sharing, each replica would admit the whole limit.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sharedstate.redis_harness import (
    SYNC_MS,
    RedisServer,
    all_see,
    policy_doc,
    provider_doc,
    replicas,
)

pytestmark = pytest.mark.timeout(90)


async def test_a_budget_holds_across_three_replicas(tmp_path: Path,
                                                    redis_server: RedisServer) -> None:
    docs = (provider_doc("paid", costPer1kTokens=1.0),
            policy_doc(budget={"limitUSD": 10, "window": "1h"}))
    async with replicas(tmp_path, redis_server.url, 3, *docs) as fleet:
        await all_see(fleet, 3)
        admitted = 0
        for step in range(36):
            replica = fleet[step % 3]
            route = await replica.route()
            if route is None:
                continue
            admitted += 1
            await replica.report(leaseId=route["leaseId"], outcome="success",
                                 inputTokens=500, outputTokens=500)  # $1
            await asyncio.sleep(SYNC_MS / 1000 / 2)
        # $10, plus at most one interval's admissions per replica (one each at this pace).
        assert 10 <= admitted <= 10 + 3, admitted
        spent = sum(r.router.table.policy("default", "main").spend_total for r in fleet)
        assert spent == pytest.approx(admitted)
        for replica in fleet:
            assert await replica.route() is None


async def test_an_rpm_limit_holds_across_two_replicas(tmp_path: Path,
                                                      redis_server: RedisServer) -> None:
    async with replicas(tmp_path, redis_server.url, 2, provider_doc("a", rateLimitRPM=12),
                        policy_doc()) as fleet:
        await all_see(fleet, 2)
        admitted = [0, 0]
        for step in range(40):
            if await fleet[step % 2].route(lease=False) is not None:
                admitted[step % 2] += 1
            await asyncio.sleep(SYNC_MS / 1000 / 2)
        assert 12 <= sum(admitted) <= 12 + 2, admitted
        assert min(admitted) >= 4, admitted  # both replicas took part
        for replica in fleet:
            assert replica.provider("a").others_requests == pytest.approx(
                admitted[1 - fleet.index(replica)])


async def test_concurrency_counts_every_replicas_leases(tmp_path: Path,
                                                        redis_server: RedisServer) -> None:
    async with replicas(tmp_path, redis_server.url, 2, provider_doc("a", maxConcurrent=4),
                        policy_doc()) as fleet:
        await all_see(fleet, 2)
        held = [await fleet[0].route() for _ in range(3)]
        assert all(held)
        one = fleet[1]
        await asyncio.wait_for(_until_others_in_flight(one, 3), timeout=10)
        assert await one.route() is not None
        assert await one.route() is None  # 3 there + 1 here = maxConcurrent


async def _until_others_in_flight(replica: object, count: int) -> None:
    while replica.provider("a").others_in_flight != count:  # type: ignore[attr-defined]
        await asyncio.sleep(0.02)
