"""Helpers for tests that need a real standalone router: manifests with mock providers in a
temp folder, a router on a free loopback port, and polling. Shared by tests/standalone,
tests/client and tests/cli as ``standalone.router_harness`` (``tests`` is on pytest's path)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from provider_router.mock_provider import MockProvider
from provider_router.standalone import Standalone


def provider_doc(name: str, url: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "router.zoeyos.io/v1alpha1", "kind": "LLMProvider",
            "metadata": {"name": name},
            "spec": {"baseURL": url, "capabilities": ["chat"],
                     "healthCheck": {"intervalSeconds": 1, "timeoutSeconds": 1}, **spec}}


def policy_doc(name: str = "main", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "router.zoeyos.io/v1alpha1", "kind": "RoutingPolicy",
            "metadata": {"name": name},
            "spec": {"default": True, "strategy": "Priority", **spec}}


def write_docs(path: Path, *docs: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")


async def eventually(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"not reached within {timeout}s")
        await asyncio.sleep(0.05)


@dataclass
class Env:
    router: Standalone
    folder: Path
    alpha: MockProvider
    beta: MockProvider
    http: httpx.AsyncClient

    @property
    def url(self) -> str:
        return self.router.url

    async def provider_names(self) -> list[str]:
        body = (await self.http.get("/v1/providers")).json()
        return [p["name"] for p in body["providers"]]


@asynccontextmanager
async def running_env(tmp_path: Path) -> AsyncIterator[Env]:
    """Mocks ``alpha`` (priority 10) and ``beta`` (priority 1) under a default Priority
    policy, served by a standalone router."""
    alpha, beta = MockProvider("alpha"), MockProvider("beta")
    await alpha.start()
    await beta.start()
    folder = tmp_path / "manifests"
    folder.mkdir()
    write_docs(folder / "providers.yaml",
               provider_doc("alpha", alpha.url, priority=10),
               provider_doc("beta", beta.url, priority=1))
    write_docs(folder / "policy.yaml", policy_doc())
    router = Standalone(folder, port=0, probe_initial_delay=0.0, debounce_ms=50)
    await router.start()
    try:
        async with httpx.AsyncClient(base_url=router.url, trust_env=False) as http:
            yield Env(router, folder, alpha, beta, http)
    finally:
        await router.stop()
        await alpha.stop()
        await beta.stop()
