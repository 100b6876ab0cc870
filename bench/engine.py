"""Decision time of the routing engine per strategy and table size.

Prints the median and p99 of one ``route()`` call (with a lease, as the route service makes it)
at N providers in one policy, and the growth of the median from N=10 to N=1,000. Each lease is
reported right after its decision, outside the timed section, as a workload would. Two more
rows route with session keys (1,000 distinct, in turn): Weighted, whose sessions stay with
their owner, and RoundRobin with sticky sessions enabled.

    python bench/engine.py [--sizes 10,100,1000,10000] [--calls 20000]
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time

from provider_router.api import LLMProviderSpec, RoutingPolicySpec, Strategy
from provider_router.engine import Outcome, OutcomeKind, RouteRequest, RoutingTable

SESSIONS = 1000
CASES: list[tuple[str, Strategy, bool]] = [
    *((strategy.value, strategy, False) for strategy in Strategy),
    ("Weighted+session", Strategy.WEIGHTED, False),
    ("RR+sticky", Strategy.ROUND_ROBIN, True),
]
"""(label, strategy, sticky sessions enabled); a label with ``+`` routes with session keys."""


def build(strategy: Strategy, size: int, seed: int = 7, sticky: bool = False) -> RoutingTable:
    rng = random.Random(seed)
    table = RoutingTable(rng=random.Random(seed))
    for i in range(size):
        table.upsert_provider("bench", f"p{i:05d}", LLMProviderSpec(
            base_url=f"http://10.0.{i // 250}.{i % 250}:8000",
            capabilities=["chat", "embeddings"] if i % 2 else ["chat"],
            models=["llama3", "gpt-4o"] if i % 3 else ["llama3"],
            priority=rng.randrange(5), weight=rng.randrange(1, 10),
            cost_per1k_tokens=round(rng.random(), 4), avg_latency_ms=rng.randrange(50, 900),
            max_concurrent=1000, rate_limit_rpm=10_000_000), labels={"tier": "a"})
    table.upsert_policy("bench", "pol", RoutingPolicySpec.model_validate(
        {"strategy": strategy.value, "default": True, "stickySessions": {"enabled": sticky},
         "providerSelector": {"matchLabels": {"tier": "a"}}}))
    return table


def measure(label: str, strategy: Strategy, sticky: bool, size: int,
            calls: int) -> tuple[float, float]:
    table = build(strategy, size, sticky=sticky)
    keys: list[str | None] = [f"user-{i}" for i in range(SESSIONS)] if "+" in label else [None]
    requests = [RouteRequest(namespace="bench", policy="pol", capabilities=("chat",),
                             session=key) for key in keys]
    samples: list[int] = []
    clock = time.perf_counter_ns
    route, report = table.route, table.report
    for i in range(max(200, len(requests))):  # warm the pool (and each session) first
        report(Outcome(OutcomeKind.SUCCESS, lease_id=route(requests[i % len(requests)]).lease_id,
                       latency_ms=100.0))
    gc.collect()
    gc.disable()
    try:
        for i in range(calls):
            request = requests[i % len(requests)]
            start = clock()
            decision = route(request)
            samples.append(clock() - start)
            report(Outcome(OutcomeKind.SUCCESS, lease_id=decision.lease_id,
                           latency_ms=50.0 + (i % 97)))
    finally:
        gc.enable()
    samples.sort()
    return statistics.median(samples) / 1000, samples[int(len(samples) * 0.99)] / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000,10000")
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3,
                        help="runs per cell, interleaved; the cell shows the median run")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{'strategy':<17}" + "".join(f"{'N=' + str(n):>22}" for n in sizes)
          + f"{'growth 10->1000':>17}")
    print(f"{'':<17}" + "".join(f"{'median/p99 us':>22}" for _ in sizes))
    # Rounds are interleaved across every cell, so a burst of noise on this shared machine
    # lands on one run of many cells rather than on every run of one cell.
    runs: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for _ in range(args.rounds):
        for label, strategy, sticky in CASES:
            for size in sizes:
                calls = args.calls if size <= 1000 else max(args.calls // 4, 1000)
                runs.setdefault((label, size), []).append(
                    measure(label, strategy, sticky, size, calls))
    for label, _, _ in CASES:
        medians: dict[int, float] = {}
        cells = []
        for size in sizes:
            median, p99 = sorted(runs[(label, size)])[len(runs[(label, size)]) // 2]
            medians[size] = median
            cells.append(f"{median:10.1f} /{p99:8.1f}")
        growth = (f"{medians[1000] / medians[10]:16.2f}x"
                  if 10 in medians and 1000 in medians else "")
        print(f"{label:<17}" + "".join(f"{c:>22}" for c in cells) + growth, flush=True)


if __name__ == "__main__":
    main()
