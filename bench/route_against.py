"""``/v1/route`` of this checkout against another one (an older commit), paired round by round.

Why: on a shared machine throughput drifts by 20% over minutes, so two runs of
``route_service.py`` made minutes apart cannot show a 5-10% change. Here every round runs the
same server kind from both checkouts back to back (in alternating order), each restarted, with
the same wrk load, so a drift hits both sides of a pair alike. What is compared per pair is
the server's CPU time per request (the inverse of its one-core throughput at saturation) and
its requests per second; the medians of the pairs' ratios are printed.

The other checkout needs its own ``.venv`` (``make .venv/.installed`` there), e.g.::

    git worktree add --detach ../base 4862f47 && make -C ../base .venv/.installed
    python bench/route_against.py ../base [--rounds 7] [--servers route-rr,route-weighted]

Every load targets 127.0.0.1 and is bounded in time; wrk is required (``make bench-deps``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
from pathlib import Path

from route_service import ROUTE_PATH, cpu_seconds, require_venv, run_wrk, start_server, stop_server

HERE = Path(__file__).resolve().parent.parent


def measure(checkout: Path, kind: str, seconds: float, connections: int) -> tuple[float, float]:
    """Requests per second and server CPU microseconds per request."""
    child, port = start_server(kind, 0, "tuned", str(checkout))
    try:
        url = f"http://127.0.0.1:{port}{ROUTE_PATH}"
        run_wrk(url, 1, connections, 1)  # warm-up, discarded
        before = cpu_seconds(child.pid)
        result = run_wrk(url, seconds, connections, 1)
        used = cpu_seconds(child.pid) - before
        return result.rps, used / (result.rps * seconds) * 1e6
    finally:
        stop_server(child)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", type=Path, help="the checkout to compare with (has a .venv)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--servers", default="route-rr,route-weighted")
    args = parser.parse_args()
    other = args.other.resolve()
    require_venv(other)
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: run `make bench-deps`")
    if len(os.sched_getaffinity(0)) < 2:
        sys.exit("needs two cores: one for the server, one for wrk")
    kinds = [k for k in args.servers.split(",") if k]
    sides = {"this": HERE, "other": other}
    print(f"this: {HERE}\nother: {other}\nwrk, {args.connections} connections, "
          f"{args.seconds:g}s x {args.rounds} rounds; load average {os.getloadavg()[0]:.2f}")
    for kind in kinds:
        cpu_ratios: list[float] = []
        rps_ratios: list[float] = []
        for round_no in range(args.rounds):
            order = ("this", "other") if round_no % 2 == 0 else ("other", "this")
            got = {side: measure(sides[side], kind, args.seconds, args.connections)
                   for side in order}
            cpu_ratios.append(got["this"][1] / got["other"][1])
            rps_ratios.append(got["this"][0] / got["other"][0])
            print(f"  {kind:<16} round {round_no + 1}: this {got['this'][0]:7.0f} req/s "
                  f"{got['this'][1]:5.1f} us/req   other {got['other'][0]:7.0f} req/s "
                  f"{got['other'][1]:5.1f} us/req", flush=True)
        print(f"{kind}: this / other, medians of {args.rounds} pairs: CPU per request "
              f"{statistics.median(cpu_ratios):.3f}x, requests per second "
              f"{statistics.median(rps_ratios):.3f}x")


if __name__ == "__main__":
    main()
