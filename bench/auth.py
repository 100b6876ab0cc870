"""``/v1/route`` with ``--auth kubernetes`` (warm caches) against ``--auth none``, in one run.

Servers, each in its own process pinned to one core, restarted for every round:

- ``none``             the route API with ``OpenAccess``
- ``kubernetes``       the same with ``KubernetesAccess``; every request carries
                       ``Authorization: Bearer``, so each one hashes the token and finds the
                       cached TokenReview and SubjectAccessReview
- ``caller-kubernetes``  ``kubernetes`` with no ``namespace`` in the query: the policy comes
                       from the caller's namespace (the token's ServiceAccount's, ``bench``)
- ``small-none`` / ``small-kubernetes``  the same over a 10-provider table, where the route
                       itself is cheap and the access check is a larger share of the work

The reviews go to a local fake API server (aiohttp, in the server's process) that accepts the
bench token and allows it: it answers the warm-up's two reviews and nothing after, which the
bench checks. This fake exists for the bench only; the tests use the real API server.

The load comes from ``wrk`` (one thread, N keep-alive connections, on the other core), as in
``bench/route_service.py``, whose helpers this reuses. Prints medians over rounds and the
ratio kubernetes / none (target: >= 0.8x throughput).

    python bench/auth.py [--rounds 3] [--seconds 5] [--connections 64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from route_service import (  # a sibling script, not a package
    PROVIDERS,
    ROUTE_PATH,
    Result,
    _pin,
    build_table,
    cpu_seconds,
    print_medians,
    run_wrk,
    stop_server,
)

SERVERS = ("none", "kubernetes", "caller-kubernetes", "small-none", "small-kubernetes")
CALLER_PATH = ROUTE_PATH.replace("&namespace=bench", "")
"""The same route, naming no namespace: the caller's (``bench``) is used."""
TOKEN = "bench-token-for-the-provider-router-audience"


async def fake_api_server() -> tuple[str, list[str]]:
    """Accepts ``TOKEN`` for any audience and allows every SubjectAccessReview."""
    from aiohttp import web

    calls: list[str] = []

    async def token_review(request: web.Request) -> web.Response:
        body = await request.json()
        calls.append("TokenReview")
        ok = body["spec"]["token"] == TOKEN
        return web.json_response({"status": {
            "authenticated": ok, "audiences": body["spec"].get("audiences", []),
            "user": {"username": "system:serviceaccount:bench:worker",
                     "groups": ["system:serviceaccounts"]} if ok else {}}}, status=201)

    async def access_review(request: web.Request) -> web.Response:
        await request.json()
        calls.append("SubjectAccessReview")
        return web.json_response({"status": {"allowed": True}}, status=201)

    app = web.Application()
    app.router.add_post("/apis/authentication.k8s.io/v1/tokenreviews", token_review)
    app.router.add_post("/apis/authorization.k8s.io/v1/subjectaccessreviews", access_review)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return f"http://127.0.0.1:{port}", calls


def serve_child(kind: str, cpu: int | None) -> None:
    import uvloop

    from provider_router.access import KubernetesAccess, ReviewClient
    from provider_router.service import Access, Server, create_app, tune_gc

    _pin(cpu)
    table = build_table("RoundRobin", 10 if kind.startswith("small") else PROVIDERS)

    async def main() -> None:
        access: Access | None = None
        calls: list[str] = []
        if "kubernetes" in kind:
            url, calls = await fake_api_server()
            access = KubernetesAccess(ReviewClient(url))
        app = create_app(table, access=access)
        tune_gc()  # as the router's entry points do, once the table is built
        server = Server(app, "127.0.0.1", 0)
        await server.start()
        sys.stdout.write(f"PORT {server.port}\n")
        sys.stdout.flush()
        # One line per review the fake API server answered, for the parent to check.
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        await reader.readline()
        sys.stdout.write(f"REVIEWS {len(calls)}\n")
        sys.stdout.flush()

    uvloop.run(main())


def measure(kind: str, args: argparse.Namespace) -> tuple[Result, int]:
    command = [sys.executable, os.path.abspath(__file__), "--serve", kind]
    if args.server_cpu is not None:
        command += ["--cpu", str(args.server_cpu)]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stdin=subprocess.PIPE,
                             text=True)
    assert child.stdout is not None
    assert child.stdin is not None
    try:
        line = child.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"{kind} server did not start: {line!r}")
        path = CALLER_PATH if kind.startswith("caller") else ROUTE_PATH
        url = f"http://127.0.0.1:{int(line.split()[1])}{path}"
        headers = ["-H", f"Authorization: Bearer {TOKEN}"]
        run_wrk_with(url, 1, args, headers)  # warm-up (and the reviews), discarded
        before = cpu_seconds(child.pid)
        result = run_wrk_with(url, args.seconds, args, headers)
        used = cpu_seconds(child.pid) - before
        result.cpu_us = used / (result.rps * args.seconds) * 1e6 if result.rps else 0.0
        child.stdin.write("done\n")
        child.stdin.flush()
        reviews = int(child.stdout.readline().split()[1])
        return result, reviews
    finally:
        stop_server(child)


def run_wrk_with(url: str, seconds: float, args: argparse.Namespace,
                 headers: list[str]) -> Result:
    """``run_wrk`` with extra wrk arguments (the Authorization header)."""
    real = shutil.which("wrk")
    assert real is not None
    wrapper = Path(args.tmp) / "wrk"
    wrapper.write_text("#!/bin/sh\nexec " + real + " " + " ".join(
        f"'{h}'" for h in headers) + ' "$@"\n')
    wrapper.chmod(0o755)
    path = os.environ["PATH"]
    os.environ["PATH"] = f"{args.tmp}{os.pathsep}{path}"
    try:
        return run_wrk(url, seconds, args.connections, args.load_cpu)
    finally:
        os.environ["PATH"] = path


def main() -> None:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--serve", choices=SERVERS, help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_child(args.serve, args.cpu)
        return
    if shutil.which("wrk") is None:
        sys.exit("bench/auth.py needs wrk (apt-get install wrk)")
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    args.server_cpu = cores[0] if len(cores) >= 2 else None
    args.load_cpu = cores[1] if len(cores) >= 2 else None
    servers = [s for s in args.servers.split(",") if s]
    print(f"load: wrk, {args.connections} connections, {args.seconds:g}s x {args.rounds} "
          f"rounds; server on cpu {args.server_cpu}, load on cpu {args.load_cpu}; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    results: dict[str, list[Result]] = {s: [] for s in servers}
    with tempfile.TemporaryDirectory(prefix="bench-auth-") as tmp:
        args.tmp = tmp
        for round_no in range(1, args.rounds + 1):
            for kind in servers:
                result, reviews = measure(kind, args)
                results[kind].append(result)
                print(f"  round {round_no} {kind:<17} {result.rps:8.0f} req/s  "
                      f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms  "
                      f"cpu {result.cpu_us:5.1f} us/req  reviews {reviews}"
                      + (f"  ERRORS {result.errors}" if result.errors else ""), flush=True)
                if "kubernetes" in kind and reviews != 2:
                    print(f"  !! expected 2 reviews (warm caches), saw {reviews}")
    medians = print_medians(results, args.rounds)
    for prefix in ("", "small-"):
        open_, checked = medians.get(f"{prefix}none"), medians.get(f"{prefix}kubernetes")
        if open_ and checked and open_.rps:
            print(f"{prefix}kubernetes / {prefix}none  throughput {checked.rps / open_.rps:5.2f}x"
                  f"  cpu/req {checked.cpu_us / open_.cpu_us if open_.cpu_us else 0:5.2f}x  "
                  f"(target: >= 0.80x throughput)")
    named, caller = medians.get("kubernetes"), medians.get("caller-kubernetes")
    if named and caller and named.rps:
        print(f"caller-kubernetes / kubernetes  throughput {caller.rps / named.rps:5.2f}x"
              f"  cpu/req {caller.cpu_us / named.cpu_us if named.cpu_us else 0:5.2f}x")


if __name__ == "__main__":
    main()
