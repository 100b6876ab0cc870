"""The store killed (SIGKILL) or frozen (SIGSTOP) mid-run, brought back, and a replica that
stops: routing never waits, each replica falls back to its share, readiness says so, the
fleet converges without counting anything twice, and a dead replica's share is released once
its entries expire. Replicas are standalone routers; the store is a real redis-server."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from sharedstate.redis_harness import (
    RedisServer,
    Replica,
    all_see,
    eventually,
    free_port,
    policy_doc,
    provider_doc,
    replicas,
)

pytestmark = pytest.mark.timeout(120)

RPM = 10


async def _admitted(replica: Replica, attempts: int) -> int:
    return sum([await replica.route(lease=False) is not None for _ in range(attempts)])


async def _all_degraded(fleet: list[Replica]) -> bool:
    return all([(await r.details())["sharedState"] == "degraded" for r in fleet])


@pytest.mark.parametrize("failure", ["killed", "stopped"])
async def test_store_lost_then_back(tmp_path: Path, redis_server: RedisServer,
                                    failure: str) -> None:
    async with replicas(tmp_path, redis_server.url, 2, provider_doc("a", rateLimitRPM=RPM),
                        policy_doc()) as fleet:
        await all_see(fleet, 2)
        if failure == "killed":
            redis_server.kill()
        else:
            redis_server.pause()
        try:
            await eventually(lambda: _all_degraded(fleet), 15, "readiness degraded")
            for replica in fleet:
                response = await replica.http.get("/readyz")
                assert response.status_code == 200  # still ready: routing goes on
                assert str(redis_server.port) not in response.text  # never the address
                metrics = (await replica.http.get("/metrics")).text
                assert "provider_router_shared_state_degraded 1.0" in metrics
            # Each replica alone admits its share, half the limit; no route waits on the store.
            started = time.monotonic()
            admitted = [await _admitted(r, RPM) for r in fleet]
            elapsed = time.monotonic() - started
            assert admitted == [RPM // 2, RPM // 2], admitted
            assert elapsed < 15, f"{2 * RPM} local routes took {elapsed:.1f}s"
        finally:
            if failure == "killed":
                redis_server.start()  # an empty store, on the same port
            else:
                redis_server.resume()
        await all_see(fleet, 2, timeout=15)
        # Converged: each counts the other's requests once, and together they are at the limit.
        for index, replica in enumerate(fleet):
            other = fleet[1 - index].provider("a").requests.total(
                fleet[1 - index].router.table.clock())
            await eventually(lambda r=replica, o=other: r.provider("a").others_requests == o,
                             5, "the other's requests counted once")
            assert replica.provider("a").others_requests == RPM // 2
            assert await replica.route(lease=False) is None
        metrics = (await fleet[0].http.get("/metrics")).text
        assert "provider_router_shared_state_degraded 0.0" in metrics


async def test_a_dead_replicas_share_is_released_after_expiry(
        tmp_path: Path, redis_server: RedisServer) -> None:
    docs = (provider_doc("a", rateLimitRPM=RPM), policy_doc())
    async with replicas(tmp_path, redis_server.url, 2, *docs, rates_ttl=2.0) as fleet:
        await all_see(fleet, 2)
        survivor, doomed = fleet
        assert await _admitted(doomed, 8) == 8
        await eventually(lambda: survivor.provider("a").others_requests == 8, 5,
                         "the doomed replica's requests seen")
        assert await _admitted(survivor, 5) == 2
        # The doomed replica stops writing (its loop ends; its last entries stay).
        assert doomed.router.shared is not None
        await asyncio.wait_for(doomed.router.shared.stop(), timeout=10)
        assert await survivor.route(lease=False) is None  # still counted until expiry
        await eventually(lambda: survivor.provider("a").others_requests == 0, 10,
                         "the dead replica's entries expired")
        assert await _admitted(survivor, RPM) == RPM - 2
        details = await survivor.details()
        assert details["replicas"] == 1


async def test_a_store_down_from_the_start_never_stops_routing(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    async with replicas(tmp_path, url, 1, provider_doc("a", rateLimitRPM=RPM),
                        policy_doc()) as fleet:
        replica = fleet[0]
        await eventually(lambda: _all_degraded(fleet), 15, "readiness degraded")
        assert (await replica.http.get("/readyz")).status_code == 200
        assert await _admitted(replica, RPM + 2) == RPM  # alone, it knows of no other replica
