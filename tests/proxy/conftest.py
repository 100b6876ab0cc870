"""A standalone router in proxy mode over fake providers (real local HTTP servers).

``proxy_env`` writes LLMProvider, RoutingPolicy and Secret manifests for the fakes (each
provider gets its own random key), starts ``Standalone`` with proxy mode on a free port and
yields what tests need: the router's URL, each provider's key, and the fakes. Health probes
are off so that the fakes see only proxied calls. Priorities fall in the order given, so the
first fake is the primary and the others its fallbacks, in order.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from provider_router.proxy import ProxyOptions
from provider_router.standalone import Standalone
from support.fake_llm import FakeLLM, fake_providers

FAST = ProxyOptions(connect_seconds=2.0, first_byte_seconds=3.0, idle_seconds=3.0,
                    deadline_seconds=8.0)


@dataclass
class ProxyEnv:
    router: Standalone
    url: str
    keys: dict[str, str]
    fakes: dict[str, FakeLLM]

    @property
    def table(self) -> Any:
        return self.router.table

    def http(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, trust_env=False,
                                 timeout=httpx.Timeout(10.0), **kwargs)


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def provider_doc(name: str, url: str, priority: int, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "router.zoeyos.io/v1alpha1", "kind": "LLMProvider",
            "metadata": {"name": name},
            "spec": {"baseURL": url, "capabilities": ["chat"], "priority": priority,
                     "healthCheck": {"enabled": False},
                     "credentialsSecretRef": {"name": f"{name}-key", "key": "apiKey"},
                     **spec}}


@contextlib.asynccontextmanager
async def proxy_env(tmp_path: Path, *providers: tuple[FakeLLM | str, dict[str, Any]],
                    policy: dict[str, Any] | None = None,
                    options: ProxyOptions = FAST) -> AsyncIterator[ProxyEnv]:
    """``providers``: ``(fake or base URL, extra spec)``; a URL names a provider that is not
    a fake (a closed port)."""
    fakes = [p for p, _ in providers if isinstance(p, FakeLLM)]
    async with fake_providers(*fakes):
        docs: list[dict[str, Any]] = []
        keys: dict[str, str] = {}
        named: dict[str, FakeLLM] = {}
        for index, (provider, spec) in enumerate(providers):
            name = provider.name if isinstance(provider, FakeLLM) else f"down{index}"
            url = provider.url if isinstance(provider, FakeLLM) else provider
            if isinstance(provider, FakeLLM):
                named[name] = provider
            keys[name] = f"sk-{name}-" + secrets.token_hex(12)
            docs.append(provider_doc(name, url, 100 - index, **spec))
            docs.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"{name}-key"},
                         "stringData": {"apiKey": keys[name]}})
        docs.append({"apiVersion": "router.zoeyos.io/v1alpha1", "kind": "RoutingPolicy",
                     "metadata": {"name": "main"},
                     "spec": {"default": True, "strategy": "Priority",
                              "failover": {"maxFallbacks": 3, "cooldownSeconds": 30},
                              **(policy or {})}})
        folder = tmp_path / "manifests"
        folder.mkdir(exist_ok=True)
        (folder / "all.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
        router = Standalone(folder, port=0, watch=False, probe_initial_delay=0.0,
                            proxy=options)
        await router.start()
        try:
            yield ProxyEnv(router, router.url, keys, named)
        finally:
            await router.stop()
