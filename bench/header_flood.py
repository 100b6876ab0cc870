"""What an endless header line costs the route server: RSS growth and /healthz latency.

A server process (standalone route API over an empty table) is flooded by rounds of
``--connections`` clients, each sending one header line of ``--size`` bytes that never ends.
The server must refuse each with a 431 once the head passes its limit, so memory stays flat
and ``/healthz`` stays fast. Loopback only; every round is bounded.

Prints, per round, the answers seen, the server's RSS growth since start and the median
``/healthz`` latency measured while the round ran; then the total growth (target < 20 MB).

    python bench/header_flood.py [--rounds 5] [--connections 20] [--size 1048576]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.flood import flood

SERVER = """
import asyncio, sys
from provider_router.engine import RoutingTable
from provider_router.service import Server, create_app
async def main():
    async with Server(create_app(RoutingTable())) as server:
        print(server.port, flush=True)
        await server.wait()
asyncio.run(main())
"""


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def healthz_ms(port: int) -> float:
    start = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()
    return (time.perf_counter() - start) * 1000


async def run(args: argparse.Namespace) -> None:
    proc = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        await asyncio.sleep(0.5)
        base = rss_mb(proc.pid)
        print(f"server RSS at start: {base:.1f} MB")
        print("round  answers(431/total)  RSS growth MB  /healthz p50 ms")
        for number in range(1, args.rounds + 1):
            attack = asyncio.create_task(flood(port, args.connections, args.size))
            samples = []
            while not attack.done():
                samples.append(await healthz_ms(port))
                await asyncio.sleep(0.05)
            answers = attack.result()
            refused = sum(a.startswith(b"HTTP/1.1 431") for a in answers)
            await asyncio.sleep(0.3)
            print(f"{number:>5}  {refused:>8}/{len(answers):<9}  {rss_mb(proc.pid) - base:>13.1f}"
                  f"  {statistics.median(samples) if samples else float('nan'):>15.2f}")
        growth = rss_mb(proc.pid) - base
        print(f"total RSS growth: {growth:.1f} MB (target < 20 MB): "
              f"{'met' if growth < 20 else 'MISSED'}")
    finally:
        proc.kill()
        proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--size", type=int, default=1 << 20)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
