"""The router's upstream client against aiohttp's and httpx's, for the proxy's calls, in one run.

The proxy makes one upstream POST per proxied call, so its HTTP client's cost per request
bounds the proxy's throughput. Both clients POST a chat-completion body to the same fast
local backend (a uvloop server in a child process answering a canned completion) over
pooled keep-alive connections, from 1 and from 16 concurrent callers in one event loop
(uvloop), for a fixed time per round; rounds alternate between the clients. Prints the
median req/s per client and concurrency, and the ratios to ours (``provider_router.upstream``,
which the proxy uses because of this measurement).

    python bench/upstream_client.py [--rounds 3] [--seconds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import orjson

BODY = orjson.dumps({"model": "bench", "messages": [{"role": "user", "content": "hi"}]})
CANNED = orjson.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": "bench",
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "Hello."}}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}})


def start_backend() -> tuple[subprocess.Popen[str], int]:
    """The canned backend of ``bench/proxy.py`` in a child process."""
    here = os.path.dirname(os.path.abspath(__file__))
    child = subprocess.Popen([sys.executable, os.path.join(here, "proxy.py"), "--serve",
                              "backend"], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    line = child.stdout.readline()
    if not line.startswith("PORT "):
        child.kill()
        raise RuntimeError(f"the backend did not start: {line!r}")
    return child, int(line.split()[1])


async def drive(call: Callable[[], Awaitable[None]], callers: int, seconds: float) -> float:
    done = 0
    deadline = time.perf_counter() + seconds

    async def caller() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await call()
            done += 1

    started = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(caller() for _ in range(callers))), seconds + 30)
    return done / (time.perf_counter() - started)


async def with_aiohttp(url: str, callers: int, seconds: float) -> float:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, trust_env=False) as session:
        async def call() -> None:
            async with session.post(url, data=BODY,
                                    headers={"content-type": "application/json"}) as response:
                await response.read()

        await drive(call, callers, 0.5)
        return await drive(call, callers, seconds)


async def with_httpx(url: str, callers: int, seconds: float) -> float:
    import httpx

    limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
    async with httpx.AsyncClient(trust_env=False, limits=limits) as client:
        async def call() -> None:
            response = await client.post(url, content=BODY,
                                         headers={"content-type": "application/json"})
            response.read()

        await drive(call, callers, 0.5)
        return await drive(call, callers, seconds)


async def with_ours(url: str, callers: int, seconds: float) -> float:
    from provider_router.upstream import Client, parse_url

    client = Client()
    target = parse_url(url)
    headers = [(b"content-type", b"application/json")]
    try:
        async def call() -> None:
            response = await client.request(b"POST", target, headers, BODY)
            await response.read(1 << 20)
            response.release()

        await drive(call, callers, 0.5)
        return await drive(call, callers, seconds)
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    import uvloop

    backend, port = start_backend()
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    results: dict[tuple[str, int], list[float]] = {}
    try:
        for _ in range(args.rounds):
            for callers in (1, 16):
                for name, run in (("ours", with_ours), ("aiohttp", with_aiohttp),
                                  ("httpx", with_httpx)):
                    rps = uvloop.run(run(url, callers, args.seconds))
                    results.setdefault((name, callers), []).append(rps)
    finally:
        backend.terminate()
        backend.wait(timeout=10)
    print(f"{'client':<10}{'callers':>8}{'req/s':>10}")
    for (name, callers), values in sorted(results.items(), key=lambda i: (i[0][1], i[0][0])):
        print(f"{name:<10}{callers:>8}{statistics.median(values):>10.0f}")
    for callers in (1, 16):
        ours = statistics.median(results["ours", callers])
        for other in ("aiohttp", "httpx"):
            ratio = ours / statistics.median(results[other, callers])
            print(f"ours / {other} at {callers} caller(s): {ratio:.1f}x")


if __name__ == "__main__":
    main()
