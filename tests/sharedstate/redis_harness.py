"""A real redis-server (or valkey-server) for the shared-state tests, and standalone replicas
that share it.

Every server runs on a free loopback port in a temporary folder, is killed in teardown (after
a SIGCONT, in case a test left it stopped), and every wait has a deadline: a hung store must
fail a test, never hang the run.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from provider_router.standalone import Standalone

SYNC_MS = 100
"""The tests' sync interval: short, so that waits stay short."""


def redis_binary() -> str | None:
    return shutil.which("redis-server") or shutil.which("valkey-server")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pings(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.settimeout(0.5)
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One redis-server process a test can kill, pause (SIGSTOP) and bring back."""

    def __init__(self, binary: str, folder: Path) -> None:
        self.binary, self.folder = binary, folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        log = (self.folder / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder), "--protected-mode", "no"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while not _pings(self.port):
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited: see {self.folder / 'redis.log'}")
            if time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"redis-server did not answer within {timeout}s")
            time.sleep(0.02)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(timeout=10)

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def close(self) -> None:
        self.kill()


def provider_doc(name: str, **spec: Any) -> dict[str, Any]:
    """A provider nobody probes (no mock server needed): routing only."""
    return {"apiVersion": "router.zoeyos.io/v1alpha1", "kind": "LLMProvider",
            "metadata": {"name": name},
            "spec": {"baseURL": f"http://127.0.0.1:9/{name}", "capabilities": ["chat"],
                     "healthCheck": {"enabled": False}, **spec}}


def policy_doc(name: str = "main", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "router.zoeyos.io/v1alpha1", "kind": "RoutingPolicy",
            "metadata": {"name": name},
            "spec": {"default": True, "strategy": "Priority", **spec}}


@dataclass
class Replica:
    router: Standalone
    http: httpx.AsyncClient

    async def route(self, lease: bool = True) -> dict[str, Any] | None:
        """A route's answer, or None when nothing was available (503)."""
        response = await self.http.get("/v1/route", params={"lease": str(lease).lower()})
        if response.status_code == 503:
            return None
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def report(self, **body: Any) -> dict[str, Any]:
        response = await self.http.post("/v1/report", json=body)
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def details(self) -> dict[str, Any]:
        response = await self.http.get("/readyz")
        return dict(response.json()["details"])

    async def circuit(self, name: str) -> str:
        body = (await self.http.get("/v1/providers")).json()
        return str(next(p for p in body["providers"] if p["name"] == name)["circuit"])

    def provider(self, name: str) -> Any:
        return self.router.table.provider("default", name)


@asynccontextmanager
async def replicas(tmp_path: Path, url: str, count: int, *docs: dict[str, Any],
                   sync_ms: int = SYNC_MS, rates_ttl: float | None = None
                   ) -> AsyncIterator[list[Replica]]:
    """``count`` standalone routers over the same manifests, sharing the store at ``url``
    under a prefix of their own, each stopped on exit."""
    folder = tmp_path / f"manifests-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    (folder / "all.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    started: list[Replica] = []
    try:
        for _ in range(count):
            router = Standalone(folder, port=0, watch=False, state_url=url,
                                state_sync_ms=sync_ms)
            assert router.shared is not None
            router.shared.prefix = prefix
            if rates_ttl is not None:
                router.shared.rates_ttl = rates_ttl
            await router.start()
            http = httpx.AsyncClient(base_url=router.url, trust_env=False, timeout=5.0)
            started.append(Replica(router, http))
        yield started
    finally:
        for replica in started:
            await replica.http.aclose()
            await asyncio.wait_for(replica.router.stop(), timeout=15)


async def eventually(check: Callable[[], Any], timeout: float = 10.0,
                     what: str = "condition") -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy, or fail."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while True:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        if loop.time() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s (last: {last!r})")
        await asyncio.sleep(0.02)


async def all_see(fleet: list[Replica], count: int, timeout: float = 10.0) -> None:
    """Wait until every replica is connected and sees ``count`` replicas."""
    async def seen() -> bool:
        for replica in fleet:
            details = await replica.details()
            if details.get("sharedState") != "connected" or details.get("replicas") != count:
                return False
        return True

    await eventually(seen, timeout, f"every replica connected and seeing {count}")
