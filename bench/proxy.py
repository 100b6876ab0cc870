"""Proxy mode against a direct call, a bare forwarder and LiteLLM, in one run.

Subjects, each a child process pinned to one core (the backend and the load share the other):

- ``direct``   the load calls the backend itself: the floor
- ``ours``     ``provider-router serve --proxy`` over one provider (the backend) with a key
               from a Secret: routing, credential, failover bookkeeping, usage parsing,
               reports and metrics included
- ``bare``     a bare forwarding proxy: aiohttp server and client on uvloop, no routing, about
               25 lines (``_run_bare``): the Python-stack limit
- ``litellm``  the LiteLLM proxy (``litellm[proxy]`` from PyPI) with one worker, installed by
               this script into a throwaway venv under ``~/.cache``; skipped, with the reason,
               when it cannot be installed or started

The backend is a uvloop server answering a canned chat completion (or, for streams, one event
a second without end). Load is ``wrk`` (POST through a Lua script) at 16 connections for
throughput and at 1 connection for the added latency without load; every target is on
127.0.0.1 and every run is bounded in time. Rounds alternate between subjects; medians over
rounds are printed, with the ratios the proxy is held to. Then 1,000 concurrent slow streams
are opened through ``ours`` and ``bare`` and the server's extra RSS is printed.

    python bench/proxy.py [--rounds 3] [--seconds 5] [--streams 1000] [--no-litellm]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from route_service import Result, _pin, cpu_seconds, run_wrk

KEY = "sk-bench-provider-key"
CALLER = "sk-bench-caller-5f0e2c9a7b314d68a1c2e3f4"
"""What every load sends as its ``Authorization``: LiteLLM's master key (it refuses to start
without one); the others ignore it."""
BODY = orjson.dumps({"model": "bench", "messages": [{"role": "user", "content": "hi"}]})
STREAM_BODY = orjson.dumps({"model": "bench", "stream": True,
                            "messages": [{"role": "user", "content": "hi"}]})
CANNED = orjson.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": "bench",
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "Hello."}}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}})
EVENT = b"data: " + orjson.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0, "model": "bench",
    "choices": [{"index": 0, "delta": {"content": "tick"}, "finish_reason": None}]}) + b"\n\n"
PATH = "/v1/chat/completions"
LITELLM_HOME = Path.home() / ".cache" / "provider-router-bench" / "litellm-venv"
SERVER_CPU, LOAD_CPU = 0, 1


def _announce(port: int) -> None:
    sys.stdout.write(f"PORT {port}\n")
    sys.stdout.flush()


def _more_files() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# -- servers (child processes) -----------------------------------------------------------------


def _run_backend() -> None:
    """Canned completions; a streamed request gets one event a second until it leaves."""
    import httptools
    import uvloop

    head = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
            + str(len(CANNED)).encode() + b"\r\n\r\n" + CANNED)
    stream_head = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                   b"transfer-encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n" % len(EVENT) + EVENT + b"\r\n"

    class Backend(asyncio.Protocol):
        def __init__(self) -> None:
            self.parser = httptools.HttpRequestParser(self)
            self.body = b""
            self.transport: Any = None
            self.ticking: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def connection_lost(self, exc: Exception | None) -> None:
            if self.ticking is not None:
                self.ticking.cancel()

        def data_received(self, data: bytes) -> None:
            self.parser.feed_data(data)

        def on_body(self, body: bytes) -> None:
            self.body += body

        def on_message_complete(self) -> None:
            if b'"stream":true' in self.body:
                self.transport.write(stream_head + chunk)
                self._tick()
            else:
                self.transport.write(head)
            self.body = b""

        def _tick(self) -> None:
            if not self.transport.is_closing():
                self.transport.write(chunk)
                self.ticking = asyncio.get_running_loop().call_later(1.0, self._tick)

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Backend, "127.0.0.1", 0,
                                                                backlog=4096)
        _announce(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    uvloop.run(main())


def _run_ours(backend: str) -> None:
    import uvloop
    import yaml

    from provider_router.proxy import ProxyOptions
    from provider_router.service import tune_gc
    from provider_router.standalone import Standalone

    folder = Path(tempfile.mkdtemp(prefix="bench-proxy-"))
    docs = [{"apiVersion": "router.zoeyos.io/v1alpha1", "kind": "LLMProvider",
             "metadata": {"name": "backend"},
             "spec": {"baseURL": backend, "models": ["bench"], "healthCheck": {"enabled": False},
                      "costPer1kTokens": 0.001,
                      "credentialsSecretRef": {"name": "backend-key", "key": "apiKey"}}},
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "backend-key"},
             "stringData": {"apiKey": KEY}},
            {"apiVersion": "router.zoeyos.io/v1alpha1", "kind": "RoutingPolicy",
             "metadata": {"name": "main"}, "spec": {"default": True, "strategy": "Priority"}}]
    (folder / "all.yaml").write_text(yaml.safe_dump_all(docs))

    async def main() -> None:
        router = Standalone(folder, port=0, watch=False, proxy=ProxyOptions())
        await router.start()
        tune_gc()
        _announce(router.port)
        await asyncio.Event().wait()

    uvloop.run(main())


def _run_bare(backend: str) -> None:
    """A bare forwarding proxy: what aiohttp and uvloop cost with no routing at all."""
    import aiohttp
    import uvloop
    from aiohttp import web

    async def main() -> None:
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

        async def forward(request: web.Request) -> web.StreamResponse:
            body = await request.read()
            upstream = await session.post(backend + request.path, data=body, headers={
                "content-type": "application/json", "authorization": f"Bearer {KEY}"})
            if upstream.content_type != "text/event-stream":
                data = await upstream.read()
                return web.Response(body=data, status=upstream.status,
                                    content_type=upstream.content_type)
            response = web.StreamResponse(status=upstream.status,
                                          headers={"content-type": "text/event-stream"})
            await response.prepare(request)
            async for piece in upstream.content.iter_any():
                await response.write(piece)
            return response

        app = web.Application()
        app.router.add_post("/{tail:.*}", forward)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
        await site.start()
        _announce(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        await asyncio.Event().wait()

    uvloop.run(main())


def serve_child(kind: str, backend: str) -> None:
    _more_files()
    if kind == "backend":
        _pin(LOAD_CPU)
        _run_backend()
    else:
        _pin(SERVER_CPU)
        (_run_ours if kind == "ours" else _run_bare)(backend)


# -- LiteLLM -----------------------------------------------------------------------------------


def litellm_command() -> tuple[list[str] | None, str]:
    """The ``litellm`` entry point of the throwaway venv (installed on first use)."""
    binary = LITELLM_HOME / "bin" / "litellm"
    if binary.exists():
        return [str(binary)], ""
    try:
        subprocess.run([sys.executable, "-m", "venv", str(LITELLM_HOME)], check=True,
                       capture_output=True, timeout=300)
        subprocess.run([str(LITELLM_HOME / "bin" / "pip"), "install", "--quiet",
                        "litellm[proxy]"], check=True, capture_output=True, timeout=1200)
    except (subprocess.SubprocessError, OSError) as error:
        shutil.rmtree(LITELLM_HOME, ignore_errors=True)
        return None, f"cannot install litellm[proxy]: {error}"
    return ([str(binary)], "") if binary.exists() else (None, "no litellm entry point")


def start_litellm(backend: str) -> tuple[subprocess.Popen[bytes] | None, int, str]:
    command, why = litellm_command()
    if command is None:
        return None, 0, why
    folder = Path(tempfile.mkdtemp(prefix="bench-litellm-"))
    config = folder / "config.yaml"
    config.write_text(
        "model_list:\n  - model_name: bench\n    litellm_params:\n"
        f"      model: openai/bench\n      api_base: {backend}/v1\n      api_key: {KEY}\n"
        "litellm_settings:\n  telemetry: false\n")
    port = _free_port()
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY": "False",
           "LITELLM_MASTER_KEY": CALLER,
           # Nothing but loopback: any call it would make elsewhere fails here, at once.
           "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
           "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    log = open(folder / "litellm.log", "wb")  # noqa: SIM115 - kept open for the child
    child = subprocess.Popen([*command, "--config", str(config), "--host", "127.0.0.1",
                              "--port", str(port), "--num_workers", "1"], env=env,
                             stdout=log, stderr=subprocess.STDOUT)
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setaffinity(child.pid, {SERVER_CPU})
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if child.poll() is not None:
            return None, 0, f"litellm exited ({child.returncode}); see {folder / 'litellm.log'}"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                pass
            if _post_ok(port):
                return child, port, ""
        except OSError:
            pass
        time.sleep(1)
    stop(child)
    return None, 0, "litellm did not answer within 180 s"


def _post_ok(port: int) -> bool:
    import httpx

    try:
        response = httpx.post(f"http://127.0.0.1:{port}{PATH}", content=BODY, timeout=10,
                              headers={"content-type": "application/json",
                                       "authorization": f"Bearer {CALLER}"}, trust_env=False)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


# -- orchestration -----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start(kind: str, backend: str = "") -> tuple[subprocess.Popen[str], int]:
    # Children's stderr goes to a file: a forwarder logs every stream the bench hangs up on.
    log = open(Path(tempfile.gettempdir()) / f"bench-proxy-{kind}.log", "w")  # noqa: SIM115
    child = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve", kind,
                              "--backend", backend], stdout=subprocess.PIPE, stderr=log,
                             text=True)
    assert child.stdout is not None
    line = child.stdout.readline()
    if not line.startswith("PORT "):
        child.kill()
        raise RuntimeError(f"{kind} did not start: {line!r}; see {log.name}")
    return child, int(line.split()[1])


def stop(child: subprocess.Popen[Any]) -> None:
    child.send_signal(signal.SIGTERM)
    try:
        child.wait(timeout=10)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def wrk_script(folder: Path) -> str:
    script = folder / "post.lua"
    body = BODY.decode().replace("\\", "\\\\").replace('"', '\\"')
    script.write_text(f'wrk.method = "POST"\nwrk.body = "{body}"\n'
                      'wrk.headers["Content-Type"] = "application/json"\n'
                      f'wrk.headers["Authorization"] = "Bearer {CALLER}"\n')
    return str(script)


def load(port: int, pid: int | None, seconds: float, connections: int, script: str) -> Result:
    url = f"http://127.0.0.1:{port}{PATH}"
    run_wrk(url, 1, connections, LOAD_CPU, script)  # warm-up, discarded
    before = cpu_seconds(pid) if pid else 0.0
    result = run_wrk(url, seconds, connections, LOAD_CPU, script)
    if pid and result.rps:
        result.cpu_us = (cpu_seconds(pid) - before) / (result.rps * seconds) * 1e6
    return result


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


async def hold_streams(port: int, count: int, pid: int) -> tuple[float, int]:
    """Open ``count`` streams at once, wait for each one's first event, hold them for two
    seconds; the server's RSS growth (MB) and how many streams were open at the end."""
    request = (f"POST {PATH} HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\n"
               f"content-length: {len(STREAM_BODY)}\r\n\r\n").encode() + STREAM_BODY
    before = rss_mb(pid)
    writers: list[asyncio.StreamWriter] = []

    async def one() -> bool:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 16)
        writers.append(writer)
        writer.write(request)
        await writer.drain()
        data = b""
        while b"tick" not in data:
            piece = await reader.read(4096)
            if not piece:
                return False
            data += piece
        return True

    try:
        opened = await asyncio.wait_for(asyncio.gather(*(one() for _ in range(count)),
                                                       return_exceptions=True), 120)
        await asyncio.sleep(2.0)
        extra = rss_mb(pid) - before
        return extra, sum(1 for ok in opened if ok is True)
    finally:
        for writer in writers:
            writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--backend", default="", help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--no-litellm", action="store_true")
    args = parser.parse_args()
    if args.serve:
        serve_child(args.serve, args.backend)
        return
    if shutil.which("wrk") is None:
        print("bench/proxy.py needs wrk (apt-get install wrk); skipped")
        return
    _more_files()
    folder = Path(tempfile.mkdtemp(prefix="bench-proxy-"))
    script = wrk_script(folder)
    backend_child, backend_port = start("backend")
    backend = f"http://127.0.0.1:{backend_port}"
    litellm: tuple[subprocess.Popen[bytes] | None, int, str] = (None, 0, "--no-litellm")
    children: list[subprocess.Popen[Any]] = [backend_child]
    try:
        ours, ours_port = start("ours", backend)
        bare, bare_port = start("bare", backend)
        children += [ours, bare]
        if not args.no_litellm:
            litellm = start_litellm(backend)
            if litellm[0] is not None:
                children.append(litellm[0])
        subjects: dict[str, tuple[int, int | None]] = {
            "direct": (backend_port, None), "ours": (ours_port, ours.pid),
            "bare": (bare_port, bare.pid)}
        if litellm[0] is not None:
            subjects["litellm"] = (litellm[1], litellm[0].pid)
        busy: dict[str, list[Result]] = {name: [] for name in subjects}
        idle: dict[str, list[Result]] = {name: [] for name in subjects}
        for _ in range(args.rounds):
            for name, (port, pid) in subjects.items():
                busy[name].append(load(port, pid, args.seconds, args.connections, script))
                idle[name].append(load(port, pid, min(args.seconds, 3.0), 1, script))
        streams = {name: asyncio.run(hold_streams(port, args.streams, pid))
                   for name, (port, pid) in (("ours", (ours_port, ours.pid)),
                                             ("bare", (bare_port, bare.pid)))}
    finally:
        for child in children:
            stop(child)
    report(busy, idle, streams, args, litellm[2])


def report(busy: dict[str, list[Result]], idle: dict[str, list[Result]],
           streams: dict[str, tuple[float, int]], args: argparse.Namespace,
           litellm_why: str) -> None:
    def med(values: list[Result], attr: str) -> float:
        return float(statistics.median(getattr(r, attr) for r in values))

    c = args.connections
    print(f"\nproxy bench: {args.rounds} rounds of {args.seconds:g} s, wrk at {c} "
          "connections and at 1, server pinned to one core\n")
    print(f"{'subject':<9}{f'req/s@{c}':>11}{f'p50@{c} ms':>12}{f'p99@{c} ms':>12}"
          f"{'p50@1 ms':>10}{'cpu µs/req':>12}{'errors':>8}")
    for name, results in busy.items():
        errors = sum(r.errors for r in results) + sum(r.errors for r in idle[name])
        print(f"{name:<9}{med(results, 'rps'):>11.0f}{med(results, 'p50_ms'):>12.2f}"
              f"{med(results, 'p99_ms'):>12.2f}{med(idle[name], 'p50_ms'):>10.3f}"
              f"{med(results, 'cpu_us'):>12.0f}{errors:>8}")
    if litellm_why:
        print(f"\nlitellm skipped: {litellm_why}")
    ours = med(busy["ours"], "rps")
    print(f"\nours / bare forwarder req/s at {c}: {ours / med(busy['bare'], 'rps'):.2f}x "
          "(target >= 1.0x)")
    if "litellm" in busy:
        print(f"ours / litellm req/s at {c}:        {ours / med(busy['litellm'], 'rps'):.1f}x "
              "(target >= 40x)")
    added = med(idle["ours"], "p50_ms") - med(idle["direct"], "p50_ms")
    print(f"ours added p50 latency, no load:  {added:.3f} ms (target <= 0.5 ms); bare adds "
          f"{med(idle['bare'], 'p50_ms') - med(idle['direct'], 'p50_ms'):.3f} ms")
    for name, (extra, opened) in streams.items():
        print(f"{name}: {opened} concurrent slow streams cost {extra:.0f} MB of extra RSS"
              + (" (target <= 100 MB)" if name == "ours" else ""))


if __name__ == "__main__":
    main()
