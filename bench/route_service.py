"""Throughput and latency of ``/v1/route`` against bare HTTP servers, measured in one run.

Servers, each in its own process pinned to one core, restarted for every round:

- ``aiohttp``          a bare aiohttp hello-JSON handler on the default asyncio loop
- ``aiohttp-uvloop``   the same on uvloop
- ``asgi``             a bare ASGI hello-JSON on uvicorn (httptools, uvloop): what a stock
                       ASGI server costs
- ``native``           the service's own ``/healthz`` on its native backend: the bare cost of
                       that stack (uvloop)
- ``route-rr``         ``/v1/route``, 1,000 providers, RoundRobin policy, native backend
- ``route-weighted``   the same with a Weighted policy
- ``route-rr-nolease`` ``route-rr`` with ``lease=false``: the decision without lease upkeep

Rounds alternate between the servers so that a noisy neighbour hits all of them alike. The
load comes from ``wrk`` (one thread, N keep-alive connections, pinned to another core) when it
is installed, else from a raw-socket HTTP/1.1 keep-alive generator in this file. Every load
targets 127.0.0.1 only and is bounded in time. Routes take leases (as workloads do); the table's
lease TTL is short so that unreported leases expire during the run instead of piling up.

Every server process gets the same garbage-collector settings: ``--gc tuned`` (the default)
applies ``provider_router.service.tune_gc()`` as the router's entry points do, ``--gc default``
leaves CPython's. A thousand-provider table makes the default GC the largest cost of a route.

Prints medians over rounds of req/s, p50, p99 and server CPU time per request per server, and
the ratios of the route servers to bare aiohttp (throughput, and p99 latency).

    python bench/route_service.py [--rounds 3] [--seconds 5] [--connections 64] [--gc tuned]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

SERVERS = ("aiohttp", "aiohttp-uvloop", "asgi", "native", "route-rr", "route-weighted",
           "route-rr-nolease")
ROUTE_PATH = "/v1/route?policy=bench&namespace=bench&capability=chat"
HELLO_PATH = "/hello"
PROVIDERS = 1000
HELLO = orjson.dumps({"hello": "world", "status": "ok"})


# -- servers (run in child processes) ----------------------------------------------------------


def _pin(cpu: int | None) -> None:
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):  # fewer cores than asked for: run unpinned
            os.sched_setaffinity(0, {cpu})


def _announce(port: int) -> None:
    sys.stdout.write(f"PORT {port}\n")
    sys.stdout.flush()


def _run_aiohttp(use_uvloop: bool) -> None:
    from aiohttp import web

    async def hello(request: web.Request) -> web.Response:
        return web.Response(body=HELLO, content_type="application/json")

    async def main() -> None:
        app = web.Application()
        app.router.add_get(HELLO_PATH, hello)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        site = web.SockSite(runner, sock, backlog=2048)
        await site.start()
        _announce(sock.getsockname()[1])
        await asyncio.Event().wait()

    if use_uvloop:
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())


def _bare_asgi() -> Any:
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(HELLO)).encode())]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": HELLO})

    return app


def build_table(strategy: str, size: int = PROVIDERS) -> Any:
    import random

    from provider_router.api import LLMProviderSpec, RoutingPolicySpec
    from provider_router.engine import RoutingTable

    rng = random.Random(7)
    table = RoutingTable(rng=random.Random(7), lease_ttl=2.0)
    for i in range(size):
        table.upsert_provider("bench", f"p{i:05d}", LLMProviderSpec.model_validate({
            "baseURL": f"http://10.0.{i // 250}.{i % 250}:8000",
            "capabilities": ["chat", "embeddings"] if i % 2 else ["chat"],
            "models": ["llama3", "gpt-4o"] if i % 3 else ["llama3"],
            "priority": rng.randrange(5), "weight": rng.randrange(1, 10),
            "costPer1kTokens": round(rng.random(), 4), "avgLatencyMs": rng.randrange(50, 900),
            "healthCheck": {"enabled": False}}), labels={"tier": "a"})
    table.upsert_policy("bench", "bench", RoutingPolicySpec.model_validate(
        {"strategy": strategy, "default": True,
         "providerSelector": {"matchLabels": {"tier": "a"}}}))
    return table


def _run_asgi() -> None:
    import socket

    import uvicorn
    import uvloop

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    config = uvicorn.Config(_bare_asgi(), loop="none", http="httptools", ws="none",
                            lifespan="off", access_log=False, log_config=None,
                            proxy_headers=False, server_header=False)

    async def main() -> None:
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.005)
        _announce(sock.getsockname()[1])
        await task

    uvloop.run(main())


def _run_native(kind: str) -> None:
    import uvloop

    from provider_router.service import Server, create_app

    if kind == "native":
        app = create_app(build_table("RoundRobin", 1))
    else:
        app = create_app(build_table("Weighted" if kind == "route-weighted" else "RoundRobin"))
    if os.environ.get("BENCH_GC") == "tuned":
        from provider_router.service import tune_gc

        tune_gc()

    async def main() -> None:
        server = Server(app, "127.0.0.1", 0)
        await server.start()
        _announce(server.port)
        await server.wait()

    uvloop.run(main())


def serve_child(kind: str, cpu: int | None, gc_mode: str) -> None:
    _pin(cpu)
    if gc_mode == "tuned":
        # Every server alike, after its imports; the route servers again once their table
        # is built (in _run_native), as the service's entry points are meant to.
        from provider_router.service import tune_gc

        tune_gc()
    if kind == "aiohttp":
        _run_aiohttp(use_uvloop=False)
    elif kind == "aiohttp-uvloop":
        _run_aiohttp(use_uvloop=True)
    elif kind == "asgi":
        _run_asgi()
    else:
        _run_native(kind)


# -- load --------------------------------------------------------------------------------------


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us: float = 0.0
    """Server CPU time per request: less sensitive to noisy neighbours than req/s."""


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, from /proc (0 where there is no /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not match:
        raise ValueError(f"cannot read wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def run_wrk(url: str, seconds: float, connections: int, cpu: int | None,
            script: str | None = None) -> Result:
    """``script``: a wrk Lua script (``bench/proxy.py`` POSTs with one)."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
               "--timeout", "5s", *(["-s", script] if script else []), url]
    done = subprocess.run(command, capture_output=True, text=True, check=True,
                          timeout=seconds + 30, preexec_fn=lambda: _pin(cpu))
    out = done.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = 0
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non2xx:
        errors += int(non2xx.group(1))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                              r"timeout (\d+)", out)
    if socket_errors:
        errors += sum(int(g) for g in socket_errors.groups())
    return Result(rps, p50, p99, errors)


def keep_alive_gets(port: int, path: str, connections: int, *, seconds: float | None = None,
                    total: int | None = None) -> tuple[list[float], int]:
    """Keep-alive HTTP/1.1 GETs of ``path`` over ``connections`` raw sockets, one request in
    flight on each, multiplexed with ``selectors``: for ``seconds``, or until exactly ``total``
    answers (then a ``TimeoutError`` after 600 s). Returns each answer's latency in seconds
    and how many answers were not a 200."""
    if (seconds is None) == (total is None):
        raise ValueError("give seconds or total, not both")
    request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").encode()
    selector = selectors.DefaultSelector()
    state: dict[socket.socket, list[Any]] = {}
    sent = 0
    for _ in range(connections if total is None else min(connections, total)):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        state[sock] = [b"", time.perf_counter()]
        sock.send(request)
        sent += 1
        selector.register(sock, selectors.EVENT_READ)
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + (seconds if seconds is not None else 600.0)
    while total is None or len(latencies) < total:
        now = time.perf_counter()
        if now >= deadline:
            if total is None:
                break
            raise TimeoutError(f"{len(latencies)} of {total} answers in 600 s")
        for key, _ in selector.select(timeout=deadline - now):
            sock = key.fileobj  # type: ignore[assignment]
            entry = state[sock]
            chunk = sock.recv(65536)
            if not chunk:
                raise RuntimeError("the server closed a keep-alive connection")
            buffer = entry[0] + chunk
            while (answer := _next_answer(buffer)) is not None:
                head, buffer = answer
                if not head.startswith(b"HTTP/1.1 200"):
                    errors += 1
                finished = time.perf_counter()
                latencies.append(finished - entry[1])
                entry[1] = finished
                if total is None or sent < total:
                    sock.send(request)
                    sent += 1
            entry[0] = buffer
    for sock in state:
        selector.unregister(sock)
        sock.close()
    return latencies, errors


def _next_answer(buffer: bytes) -> tuple[bytes, bytes] | None:
    """The head of the first whole answer in ``buffer`` and what follows it; None until one
    has arrived."""
    head_end = buffer.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    head = buffer[:head_end]
    match = re.search(rb"(?i)content-length:\s*(\d+)", head)
    end = head_end + 4 + (int(match.group(1)) if match else 0)
    if len(buffer) < end:
        return None
    return head, buffer[end:]


def run_python_load(port: int, path: str, seconds: float, connections: int) -> Result:
    """``keep_alive_gets`` for ``seconds``: a fallback for machines without wrk. Slower than
    wrk, so it saturates sooner; the same generator drives every server, so ratios stay
    fair."""
    started = time.perf_counter()
    latencies, errors = keep_alive_gets(port, path, connections, seconds=seconds)
    elapsed = time.perf_counter() - started
    latencies.sort()
    return Result(len(latencies) / elapsed, latencies[len(latencies) // 2] * 1000,
                  latencies[int(len(latencies) * 0.99)] * 1000, errors)


# -- orchestration -----------------------------------------------------------------------------


def venv_python(checkout: str | os.PathLike[str]) -> str:
    """The interpreter of another checkout's own ``.venv``."""
    return os.path.join(checkout, ".venv", "bin", "python")


def require_venv(checkout: str | os.PathLike[str]) -> None:
    """Exit with what to do when ``checkout`` has no ``.venv`` to run its server with."""
    if not os.path.exists(venv_python(checkout)):
        sys.exit(f"{checkout} has no .venv: run `make .venv/.installed` there first")


def start_server(kind: str, cpu: int | None, gc_mode: str, checkout: str | None = None,
                 wrapper: Sequence[str] = (),
                 env: Mapping[str, str] | None = None) -> tuple[subprocess.Popen[str], int]:
    """``kind``'s server, from this bench or from another ``checkout``'s (with its own
    ``.venv``), run under ``wrapper`` (valgrind, say) if given; with its port."""
    if checkout is None:
        command = [sys.executable, os.path.abspath(__file__)]
    else:
        command = [venv_python(checkout), os.path.join(checkout, "bench", "route_service.py")]
    command = [*wrapper, *command, "--serve", kind]
    if cpu is not None:
        command += ["--cpu", str(cpu)]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True,
                             env={**os.environ, **(env or {}), "BENCH_GC": gc_mode})
    assert child.stdout is not None
    line = child.stdout.readline()
    if not line.startswith("PORT "):
        child.kill()
        raise RuntimeError(f"{kind} server from {checkout or 'here'} did not start: {line!r}")
    return child, int(line.split()[1])


def stop_server(child: subprocess.Popen[str]) -> None:
    child.terminate()
    try:
        child.wait(timeout=10)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def measure(kind: str, args: argparse.Namespace, use_wrk: bool) -> Result:
    child, port = start_server(kind, args.server_cpu, args.gc)
    try:
        path = (ROUTE_PATH + "&lease=false" if kind == "route-rr-nolease"
                else ROUTE_PATH if kind.startswith("route")
                else "/healthz" if kind == "native" else HELLO_PATH)
        url = f"http://127.0.0.1:{port}{path}"
        if use_wrk:
            run_wrk(url, 1, args.connections, args.load_cpu)  # warm-up, discarded
            before = cpu_seconds(child.pid)
            result = run_wrk(url, args.seconds, args.connections, args.load_cpu)
        else:
            _pin(args.load_cpu)
            run_python_load(port, path, 1, args.connections)
            before = cpu_seconds(child.pid)
            result = run_python_load(port, path, args.seconds, args.connections)
        used = cpu_seconds(child.pid) - before
        result.cpu_us = used / (result.rps * args.seconds) * 1e6 if result.rps else 0.0
        return result
    finally:
        stop_server(child)



def print_medians(results: dict[str, list[Result]], rounds: int) -> dict[str, Result]:
    """Print, and return, each server's medians over its rounds (errors are summed)."""
    medians = {kind: Result(statistics.median(r.rps for r in rs),
                            statistics.median(r.p50_ms for r in rs),
                            statistics.median(r.p99_ms for r in rs),
                            sum(r.errors for r in rs),
                            statistics.median(r.cpu_us for r in rs))
               for kind, rs in results.items()}
    print(f"\nmedians over {rounds} rounds")
    print(f"{'server':<18}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'cpu us/req':>12}{'errors':>8}")
    for kind, m in medians.items():
        print(f"{kind:<18}{m.rps:9.0f}{m.p50_ms:9.2f}{m.p99_ms:9.2f}{m.cpu_us:12.1f}"
              f"{m.errors:8d}")
    print()
    return medians

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--gc", choices=("tuned", "default"), default="tuned",
                        help="tuned: provider_router.service.tune_gc() in every server "
                        "(as the router's entry points do); default: CPython's settings")
    parser.add_argument("--serve", choices=SERVERS, help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_child(args.serve, args.cpu, os.environ.get("BENCH_GC", "default"))
        return

    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    args.server_cpu = cores[0] if len(cores) >= 2 else None
    args.load_cpu = cores[1] if len(cores) >= 2 else None
    use_wrk = args.loadgen == "wrk" or (args.loadgen == "auto" and shutil.which("wrk"))
    servers = [s for s in args.servers.split(",") if s]
    print(f"load: {'wrk' if use_wrk else 'python raw-socket generator'}, "
          f"{args.connections} connections, {args.seconds:g}s x {args.rounds} rounds; "
          f"server on cpu {args.server_cpu}, load on cpu {args.load_cpu}; "
          f"{PROVIDERS} providers in the route table; gc {args.gc}", flush=True)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    results: dict[str, list[Result]] = {s: [] for s in servers}
    for round_no in range(1, args.rounds + 1):
        for kind in servers:
            result = measure(kind, args, bool(use_wrk))
            results[kind].append(result)
            print(f"  round {round_no} {kind:<17} {result.rps:8.0f} req/s  "
                  f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms  "
                  f"cpu {result.cpu_us:5.1f} us/req"
                  + (f"  ERRORS {result.errors}" if result.errors else ""), flush=True)
    print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    medians = print_medians(results, args.rounds)
    for base in ("aiohttp", "aiohttp-uvloop"):
        if base not in medians:
            continue
        for kind in (k for k in medians if k.startswith("route")):
            b, r = medians[base], medians[kind]
            print(f"{kind:<17} / {base:<15} throughput {r.rps / b.rps:5.2f}x  "
                  f"p99 {r.p99_ms / b.p99_ms:5.2f}x  (target: >= 1.00x, <= 1.30x)")


if __name__ == "__main__":
    main()
