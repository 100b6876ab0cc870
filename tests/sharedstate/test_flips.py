"""Circuits and cooldowns learned by one replica hold on all of them, with exactly one
half-open trial fleet-wide; replicas share a real redis-server."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from sharedstate.redis_harness import (
    SYNC_MS,
    RedisServer,
    Replica,
    all_see,
    eventually,
    policy_doc,
    provider_doc,
    replicas,
)

pytestmark = pytest.mark.timeout(90)

COOLDOWN = 2
DOCS = (provider_doc("a", priority=10), provider_doc("b", priority=1),
        policy_doc(failover={"failureThreshold": 1, "cooldownSeconds": COOLDOWN}))


async def _everywhere(fleet: list[Replica], circuit: str, timeout: float) -> float:
    started = time.monotonic()

    async def all_there() -> bool:
        return all([await r.circuit("a") == circuit for r in fleet])

    await eventually(all_there, timeout, f"circuit {circuit} on every replica")
    return time.monotonic() - started


async def test_a_circuit_opens_everywhere_with_one_half_open_trial(
        tmp_path: Path, redis_server: RedisServer) -> None:
    async with replicas(tmp_path, redis_server.url, 3, *DOCS) as fleet:
        await all_see(fleet, 3)
        report = await fleet[0].report(provider="a", outcome="error", statusCode=500)
        assert report["circuit"] == "Open"
        # One interval to be written, one to be read, plus a margin for a loaded machine.
        await _everywhere(fleet, "Open", timeout=2 * SYNC_MS / 1000 + 3.0)
        for replica in fleet:
            route = await replica.route(lease=False)
            assert route is not None
            assert route["provider"]["name"] == "b"

        await asyncio.sleep(COOLDOWN)
        trials: list[tuple[Replica, dict[str, Any]]] = []

        async def hammer(replica: Replica, until: float) -> None:
            while time.monotonic() < until:
                route = await replica.route()  # leases held, never reported: trials stay open
                if route is not None and route["provider"]["name"] == "a":
                    trials.append((replica, route))
                await asyncio.sleep(0.005)

        await asyncio.wait_for(asyncio.gather(*(hammer(r, time.monotonic() + 1.5)
                                                for r in fleet)), timeout=30)
        assert len(trials) == 1, [r.router.url for r, _ in trials]
        winner, route = trials[0]
        assert winner.router.shared is not None
        assert winner.router.shared.trials_won == 1
        await winner.report(leaseId=route["leaseId"], outcome="success")
        await _everywhere(fleet, "Closed", timeout=2 * SYNC_MS / 1000 + 3.0)
        for replica in fleet:
            chosen = await replica.route(lease=False)
            assert chosen is not None
            assert chosen["provider"]["name"] == "a"


async def _take_trial(fleet: list[Replica], timeout: float) -> tuple[Replica, dict[str, Any]]:
    """Route on every replica until one is given provider a's trial (never reported)."""
    async def taken() -> tuple[Replica, dict[str, Any]] | None:
        for replica in fleet:
            route = await replica.route()
            if route is not None and route["provider"]["name"] == "a":
                return replica, route
        return None

    found: tuple[Replica, dict[str, Any]] = await eventually(taken, timeout, "a trial of a")
    return found


async def test_a_trial_without_a_verdict_reopens_the_circuit_everywhere(
        tmp_path: Path, redis_server: RedisServer) -> None:
    async with replicas(tmp_path, redis_server.url, 2, *DOCS) as fleet:
        await all_see(fleet, 2)
        await fleet[0].report(provider="a", outcome="error", statusCode=500)
        await _everywhere(fleet, "Open", timeout=2 * SYNC_MS / 1000 + 3.0)
        first, _ = await _take_trial(fleet, timeout=COOLDOWN + 5.0)
        shared = first.router.shared
        assert shared is not None
        # The fleet's claim lives until the trial would time out (a cooldown after the
        # half-open), not a lease TTL.
        client = Redis.from_url(redis_server.url, socket_timeout=5.0)
        try:
            keys = await asyncio.wait_for(client.keys(f"{shared.prefix}:trial:*"), 5.0)
            assert keys
            ttls = [await asyncio.wait_for(client.pttl(k), 5.0) for k in keys]
        finally:
            await client.aclose()
        assert all(0 < ttl <= COOLDOWN * 1000 for ttl in ttls), ttls
        # Nobody reports the trial: after a cooldown it fails, and the circuit re-opens on
        # every replica (it would otherwise stay HalfOpenTrialInFlight for the lease's TTL).
        await _everywhere(fleet, "Open", timeout=COOLDOWN + 2 * SYNC_MS / 1000 + 3.0)
        # Another cooldown on, the fleet grants a new trial.
        await _take_trial(fleet, timeout=COOLDOWN + 5.0)


async def test_a_429_cools_the_provider_down_everywhere(tmp_path: Path,
                                                        redis_server: RedisServer) -> None:
    async with replicas(tmp_path, redis_server.url, 3, *DOCS) as fleet:
        await all_see(fleet, 3)
        await fleet[1].report(provider="a", outcome="rate_limited", statusCode=429,
                              retryAfterSeconds=30)

        async def cooled_everywhere() -> bool:
            names = [((await r.route(lease=False)) or {}).get("provider", {}).get("name")
                     for r in fleet]
            return names == ["b", "b", "b"]

        await eventually(cooled_everywhere, 2 * SYNC_MS / 1000 + 3.0, "a cooled down on all")
        cooling = [r.provider("a").cooling_until - r.router.table.clock() for r in fleet]
        assert all(25 < left <= 30 for left in cooling), cooling
