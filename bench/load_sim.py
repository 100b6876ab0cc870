"""Queueing delay under three rankings: lease-based LeastLoaded, load-aware LeastLoaded, random.

A discrete-event simulation, no network: the routing engine itself (a real ``RoutingTable`` on
a simulated clock) routes every request, so what is measured is the shipped ranking.

- 8 providers of unequal capacity (1, 1, 2, 2, 4, 4, 8 and 8 parallel slots, like vLLM servers
  of different sizes), each a FIFO queue in front of its slots, with exponential service times
  (mean 1 s). No ``maxConcurrent`` is set: the servers queue internally, as vLLM does.
- Bursty arrivals: Poisson, alternating 5 s at 150% of total capacity with 10 s at 40%.
- Half of the clients never report, so their leases stay counted until the lease TTL (120 s):
  what lease counting sees drifts away from what the servers hold.
- Load-aware: each provider is scraped every second (``record_load``: running and waiting,
  exactly what vLLM's ``/metrics`` says); the figures go stale after two intervals.

Prints, per ranking, the mean and p99 of the queueing delay (time from arrival to the start of
service) as the median over several seeds, and the ratio of load-aware p99 to lease-based p99
(the target is at most 0.5).

    python bench/load_sim.py [--seconds 600] [--seeds 5] [--report-share 0.5]
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import random
import statistics
from collections import deque
from dataclasses import dataclass, field

from provider_router.api import LLMProviderSpec, RoutingPolicySpec
from provider_router.engine import LoadSample, Outcome, OutcomeKind, RouteRequest, RoutingTable

SLOTS = (4,) * 8
SERVICE_MEANS = (4.0, 4.0, 2.0, 2.0, 1.0, 1.0, 0.5, 0.5)
"""Seconds per request: capacities of 1, 1, 2, 2, 4, 4, 8 and 8 requests a second."""
BURST = (5.0, 1.5)
"""(seconds, share of total capacity) of a burst."""
LULL = (10.0, 0.4)
SCRAPE_INTERVAL = 1
RANKINGS = ("lease-based", "load-aware", "random")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Server:
    name: str
    slots: int
    service_mean: float
    busy: int = 0
    queue: deque[tuple[float, str | None]] = field(default_factory=deque)
    """Waiting jobs: (arrival time, the lease to report at the end, None if never reported)."""


def build(clock: Clock, seed: int) -> tuple[RoutingTable, list[Server]]:
    table = RoutingTable(clock=clock, rng=random.Random(seed))
    servers = [Server(f"p{i}", slots, mean)
               for i, (slots, mean) in enumerate(zip(SLOTS, SERVICE_MEANS, strict=True))]
    for server in servers:
        table.upsert_provider("sim", server.name, LLMProviderSpec.model_validate({
            "baseURL": f"http://{server.name}.sim:8000", "apiFormat": "vllm",
            "healthCheck": {"enabled": False},
            "loadMetrics": {"enabled": True, "intervalSeconds": SCRAPE_INTERVAL}}))
    table.upsert_policy("sim", "ll", RoutingPolicySpec.model_validate(
        {"strategy": "LeastLoaded", "default": True, "failover": {"maxFallbacks": 0}}))
    return table, servers


def simulate(ranking: str, seconds: float, seed: int, report_share: float) -> list[float]:
    """Queueing delays of every request that started service within ``seconds``."""
    rng = random.Random(seed)
    clock = Clock()
    table, servers = build(clock, seed)
    by_name = {s.name: s for s in servers}
    capacity = sum(s / m for s, m in zip(SLOTS, SERVICE_MEANS, strict=True))
    seq = itertools.count()
    events: list[tuple[float, int, str, object]] = []
    heapq.heappush(events, (0.0, next(seq), "arrival", None))
    if ranking == "load-aware":
        heapq.heappush(events, (0.0, next(seq), "scrape", None))
    delays: list[float] = []

    def start(server: Server, arrived: float, lease: str | None) -> None:
        server.busy += 1
        delays.append(clock.now - arrived)
        done = clock.now + rng.expovariate(1.0 / server.service_mean)
        heapq.heappush(events, (done, next(seq), "done", (server, lease)))

    def rate_at(t: float) -> float:
        cycle = BURST[0] + LULL[0]
        share = BURST[1] if t % cycle < BURST[0] else LULL[1]
        return share * capacity

    while events:
        t, _, kind, data = heapq.heappop(events)
        if t > seconds:
            break
        clock.now = t
        if kind == "arrival":
            heapq.heappush(events, (t + rng.expovariate(rate_at(t)), next(seq), "arrival", None))
            reports = rng.random() < report_share
            if ranking == "random":
                server, lease = rng.choice(servers), None
            else:
                decision = table.route(RouteRequest(namespace="sim"))
                server = by_name[decision.target.provider.name]
                lease = decision.lease_id if reports else None
            if server.busy < server.slots:
                start(server, t, lease)
            else:
                server.queue.append((t, lease))
        elif kind == "done":
            assert isinstance(data, tuple)
            server, lease = data
            server.busy -= 1
            if lease is not None:
                table.report(Outcome(OutcomeKind.SUCCESS, lease_id=lease))
            if server.queue:
                start(server, *server.queue.popleft())
        else:  # scrape
            for server in servers:
                table.record_load("sim", server.name, LoadSample(
                    running=float(server.busy), waiting=float(len(server.queue))))
            heapq.heappush(events, (t + SCRAPE_INTERVAL, next(seq), "scrape", None))
    return delays


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--report-share", type=float, default=0.5,
                        help="share of clients that report their outcome (default 0.5)")
    args = parser.parse_args()
    results: dict[str, tuple[float, float, int]] = {}
    print(f"{len(SLOTS)} providers, {SLOTS[0]} slots each, mean service s {SERVICE_MEANS}, "
          f"{args.seconds:g} s simulated, "
          f"{args.report_share:.0%} of clients report, median of {args.seeds} seeds")
    print(f"{'ranking':<12} {'requests':>9} {'mean delay s':>13} {'p99 delay s':>12}")
    for ranking in RANKINGS:
        runs = [simulate(ranking, args.seconds, seed, args.report_share)
                for seed in range(1, args.seeds + 1)]
        mean = statistics.median(statistics.fmean(r) for r in runs)
        tail = statistics.median(p99(r) for r in runs)
        count = int(statistics.median(len(r) for r in runs))
        results[ranking] = (mean, tail, count)
        print(f"{ranking:<12} {count:>9} {mean:>13.3f} {tail:>12.3f}")
    lease_p99, aware_p99 = results["lease-based"][1], results["load-aware"][1]
    ratio = aware_p99 / lease_p99 if lease_p99 > 0 else float("inf")
    print(f"load-aware p99 / lease-based p99 = {ratio:.3f} (target <= 0.5)")
    print(f"load-aware mean / lease-based mean = "
          f"{results['load-aware'][0] / max(results['lease-based'][0], 1e-9):.3f}")


if __name__ == "__main__":
    main()
