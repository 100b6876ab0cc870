"""Shared state's cost: route decisions with a store vs without, and store traffic per replica.

Starts a redis-server (or valkey-server) on a free port, then builds routing tables of the same
shape (providers with RPM, TPM and concurrency limits, a policy with a budget) and times
``route`` in batches: tables alone, and tables whose SharedState loop syncs every interval with
two other replicas' loops (in the same event loop, routing too, so the others' totals are real).
Rounds alternate between the two so that machine noise hits both alike. Then it runs one
replica at two very different request rates and counts the store commands it sent per second:
they follow the sync interval, not the traffic.

    python bench/shared_state.py [--providers 20] [--rounds 7] [--sync-ms 200]

Prints medians and ratios. The target is a decision-time ratio of at most 1.1.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from provider_router.api import LLMProviderSpec, RoutingPolicySpec  # noqa: E402
from provider_router.engine import RouteRequest, RoutingTable  # noqa: E402
from provider_router.sharedstate import SharedState  # noqa: E402
from sharedstate.redis_harness import RedisServer, redis_binary  # noqa: E402

BATCH = 2000


def build(providers: int) -> RoutingTable:
    table = RoutingTable()
    for index in range(providers):
        table.upsert_provider("bench", f"p{index:03d}", LLMProviderSpec.model_validate({
            "baseURL": f"http://127.0.0.1:9/{index}", "capabilities": ["chat"],
            "priority": index % 5, "costPer1kTokens": 0.001 * (1 + index % 3),
            "rateLimitRPM": 10_000_000, "rateLimitTPM": 1_000_000_000,
            "maxConcurrent": 1_000_000, "healthCheck": {"enabled": False}}))
    table.upsert_policy("bench", "main", RoutingPolicySpec.model_validate({
        "default": True, "strategy": "Priority",
        "budget": {"limitUSD": 1_000_000, "window": "24h"}}))
    return table


REQUEST = RouteRequest(namespace="bench", lease=False)


def time_batch(table: RoutingTable) -> float:
    """Microseconds per decision over one batch."""
    route = table.route
    started = time.perf_counter_ns()
    for _ in range(BATCH):
        route(REQUEST)
    return (time.perf_counter_ns() - started) / BATCH / 1000


async def decisions(url: str, providers: int, rounds: int, sync_ms: int) -> None:
    alone = build(providers)
    fleet = [build(providers) for _ in range(3)]
    loops = [SharedState(t, url, sync_ms=sync_ms, prefix="bench-decisions") for t in fleet]
    for shared in loops:
        await shared.start()
    try:
        for table in fleet[1:]:  # the others route too, so their totals are not zero
            for _ in range(200):
                table.route(REQUEST)
        await asyncio.sleep(4 * sync_ms / 1000)
        shared_table = fleet[0]
        assert loops[0].replicas == 3, f"replicas seen: {loops[0].replicas}"
        with_store: list[float] = []
        without: list[float] = []
        for _ in range(rounds):
            for batch in range(5):  # batches within a round, with syncs in between
                # Alternate which goes first, so that neither always runs on a warmer cache.
                pair = [(without, alone), (with_store, shared_table)]
                for results, table in (pair if batch % 2 else pair[::-1]):
                    results.append(time_batch(table))
                    await asyncio.sleep(0)
                await asyncio.sleep(sync_ms / 1000 / 4)
        others = sum(p.others_requests for p in shared_table.providers())
        a, b = statistics.median(without), statistics.median(with_store)
        print(f"route decision ({providers} providers, {len(without)} batches of {BATCH}):")
        print(f"  without store   median {a:7.2f} us")
        print(f"  with store      median {b:7.2f} us   (others' requests counted: {others:.0f})")
        print(f"  ratio with/without       {b / a:5.3f}   (target <= 1.1)")
        syncs = loops[0].syncs
        print(f"  syncs meanwhile          {syncs}, failures {loops[0].failures}")
    finally:
        for shared in loops:
            await shared.stop()


async def command_rate(url: str, providers: int, sync_ms: int, seconds: float) -> None:
    print(f"store commands per replica (sync every {sync_ms} ms, 3 replicas):")
    for rate in (200, 5000):
        fleet = [build(providers) for _ in range(3)]
        loops = [SharedState(t, url, sync_ms=sync_ms, prefix=f"bench-rate-{rate}")
                 for t in fleet]
        for shared in loops:
            await shared.start()
        try:
            await asyncio.sleep(2 * sync_ms / 1000)
            loop = asyncio.get_running_loop()
            before, started = loops[0].commands, loop.time()
            routed = 0
            tick = 0.01
            while loop.time() - started < seconds:
                for _ in range(int(rate * tick)):
                    fleet[0].route(REQUEST)
                    routed += 1
                await asyncio.sleep(tick)
            elapsed = loop.time() - started
            sent = loops[0].commands - before
            print(f"  {routed / elapsed:7.0f} routes/s -> {sent / elapsed:6.1f} commands/s "
                  f"({sent / max(1, loops[0].syncs):.1f} per sync)")
        finally:
            for shared in loops:
                await shared.stop()
    print(f"  bound: about 8 per sync = {8 * 1000 / sync_ms:.0f}/s (MULTI, 5 commands, EXEC, "
          "MGET), whatever the traffic")


def sync_work(providers: int) -> None:
    """The engine's side of one sync, which runs on the event loop between routes."""
    print("engine work per sync (snapshot + apply of two others), median of 20:")
    for count in (providers, 50 * providers):
        table, other = build(count), build(count)
        for _ in range(100):
            other.route(REQUEST)
        snap = other.fleet.snapshot(other.clock())
        times: list[float] = []
        for _ in range(20):
            started = time.perf_counter_ns()
            table.fleet.snapshot(table.clock())
            table.fleet.apply([snap, snap], table.clock())
            times.append((time.perf_counter_ns() - started) / 1e6)
        print(f"  {count:5d} providers: {statistics.median(times):7.3f} ms")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--providers", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--sync-ms", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    binary = redis_binary()
    if binary is None:
        sys.exit("redis-server is not installed: run tests/tools/install-redis.sh")
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as folder:
        server = RedisServer(binary, Path(folder))
        server.start()
        try:
            await decisions(server.url, args.providers, args.rounds, args.sync_ms)
            await command_rate(server.url, args.providers, args.sync_ms, args.seconds)
            sync_work(args.providers)
        finally:
            server.close()


if __name__ == "__main__":
    asyncio.run(main())
