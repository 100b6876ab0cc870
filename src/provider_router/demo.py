"""``provider-router demo``: routing, failover and metrics on one machine, in a minute.

A newcomer has no LLM back-ends at hand, so the demo brings its own: small OpenAI-compatible
mock servers on free loopback ports (``GET /v1/models``, ``POST /v1/chat/completions`` with a
``usage`` block, Ollama's ``GET /api/tags``), one per LLMProvider of ``examples/standalone``.
The example manifests are copied to a temporary folder with their ``baseURL``s pointed at the
mocks and faster health checks, and the standalone router serves them. The demo then prints
``curl`` lines to paste, and (unless ``--no-traffic``) sends a request through the router every
few seconds, so that ``POST /admin/fail`` on a mock shows failover happening live.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shlex
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import httpx
import yaml

from provider_router._defaults import DEFAULT_PORT
from provider_router.client import AsyncRouterClient, RouterError
from provider_router.manifests import manifest_files
from provider_router.mock_provider import MockProvider
from provider_router.proxy import ProxyOptions
from provider_router.standalone import Standalone, run_loop

log = logging.getLogger("provider_router.demo")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "standalone"
DEMO_INTERVAL_SECONDS = 2
"""Health-check interval of the demo's providers, so failover shows within seconds."""

_BUILTIN_MANIFESTS = """\
apiVersion: router.zoeyos.io/v1alpha1
kind: LLMProvider
metadata: {name: local-llama, labels: {tier: local}}
spec:
  baseURL: http://127.0.0.1:11434
  apiFormat: ollama
  capabilities: [chat, embeddings]
  models: [llama3.2:3b]
  priority: 10
  costPer1kTokens: 0
---
apiVersion: router.zoeyos.io/v1alpha1
kind: LLMProvider
metadata: {name: openai-compatible, labels: {tier: paid}}
spec:
  baseURL: https://api.openai.com
  capabilities: [chat, embeddings, vision]
  models: [gpt-4o-mini]
  priority: 5
  costPer1kTokens: 0.002
  credentialsSecretRef: {name: openai-compatible-key, key: api-key}
---
apiVersion: v1
kind: Secret
metadata: {name: openai-compatible-key}
stringData: {api-key: demo-not-a-real-key}
---
apiVersion: router.zoeyos.io/v1alpha1
kind: RoutingPolicy
metadata: {name: default}
spec: {default: true, strategy: Cost, requirements: {capabilities: [chat]}}
"""


# -- manifests for the demo --------------------------------------------------------------------


def _source_documents(source: Path | None) -> list[tuple[str, list[Any]]]:
    """``(file name, documents)`` of the manifests the demo starts from."""
    if source is None and EXAMPLES.is_dir():
        source = EXAMPLES
    if source is None:
        return [("demo.yaml", list(yaml.safe_load_all(_BUILTIN_MANIFESTS)))]
    files = manifest_files(source)
    root = source if source.is_dir() else source.parent
    return [(str(f.relative_to(root)), list(yaml.safe_load_all(f.read_text(encoding="utf-8"))))
            for f in files]


async def prepare(directory: Path, source: Path | None = None
                  ) -> tuple[list[MockProvider], Path]:
    """Start one mock per LLMProvider and write the manifests, pointed at the mocks, into
    ``directory``. Returns the (started) mocks."""
    mocks: list[MockProvider] = []
    try:
        for name, docs in _source_documents(source):
            for doc in docs:
                if not isinstance(doc, dict) or doc.get("kind") != "LLMProvider":
                    continue
                spec = doc.setdefault("spec", {})
                mock = MockProvider(str(doc["metadata"]["name"]),
                                    list(spec.get("models") or ["mock-model"]))
                url = await mock.start()
                mocks.append(mock)
                suffix = "/v1" if str(spec.get("baseURL", "")).rstrip("/").endswith("/v1") else ""
                spec["baseURL"] = url + suffix
                check = spec.setdefault("healthCheck", {})
                check.update(intervalSeconds=DEMO_INTERVAL_SECONDS, timeoutSeconds=1)
            target = directory / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")
    except BaseException:
        for mock in mocks:
            await mock.stop()
        raise
    return mocks, directory


# -- the banner --------------------------------------------------------------------------------


def banner(router_url: str, mocks: list[MockProvider], manifests: Path) -> str:
    first = mocks[0] if mocks else None
    width = max((len(m.name) for m in mocks), default=8)
    report = json.dumps({"provider": first.name if first else "local-llama",
                         "namespace": "default", "outcome": "success", "latencyMs": 120,
                         "inputTokens": 50, "outputTokens": 20})
    lines = [
        "",
        "provider-router demo",
        f"  router      {router_url}",
        f"  manifests   {manifests}   (edit them: the router reloads)",
    ]
    lines += [f"  mock        {m.name:<{width}}  {m.url}" for m in mocks]
    lines += [
        "",
        "Route a chat request (the answer names the provider, its apiBase and the fallbacks):",
        f"  curl -s '{router_url}/v1/route?capability=chat'",
        "Why that one? Every candidate with its reasons (lease=false: just looking):",
        f"  curl -s '{router_url}/v1/route?capability=chat&explain=true&lease=false'",
        "Report how a call went (workloads send the route's leaseId instead of a provider):",
        f"  curl -s -X POST {router_url}/v1/report -H 'content-type: application/json'"
        f" -d {shlex.quote(report)}",
        "The live table (health, circuit, load, spend), the policies, and the metrics:",
        f"  curl -s {router_url}/v1/providers",
        f"  curl -s {router_url}/v1/policies",
        f"  curl -s {router_url}/metrics | grep ^provider_router_",
    ]
    if first is not None:
        chat = json.dumps({"model": first.models[0],
                           "messages": [{"role": "user", "content": "Hello!"}]})
        lines += [
            "Call a provider the way an OpenAI SDK would (base_url = the route's apiBase):",
            f"  curl -s {first.url}/v1/chat/completions -H 'content-type: application/json'"
            f" -d {shlex.quote(chat)}",
            "Or let the router make the call (proxy mode: it holds the keys, fails over and "
            "reports):",
            f"  curl -s {router_url}/v1/chat/completions -H 'content-type: application/json'"
            f" -d {shlex.quote(chat)}",
            f"  (Python: OpenAI(base_url='{router_url}/v1', api_key='unused')"
            ".chat.completions.create(...))",
            "",
            f"Failover: make {first.name} fail, watch traffic move, then bring it back:",
            f"  curl -s -X POST {first.url}/admin/fail",
            f"  curl -s '{router_url}/v1/route?capability=chat&explain=true&lease=false'",
            f"  curl -s -X POST {first.url}/admin/recover",
            f"  (a 429 instead: curl -s -X POST '{first.url}/admin/fail?status=429&retryAfter=20')",
        ]
    lines += ["", "Press Ctrl-C to stop.", ""]
    return "\n".join(lines)


# -- traffic -----------------------------------------------------------------------------------


async def traffic(router_url: str, out: TextIO, interval: float = 2.0) -> None:
    """One chat request every ``interval`` seconds, one line printed per request: in turn
    routed by the route API and reported with the client's context manager, and proxied by
    the router (which reports by itself)."""
    async with AsyncRouterClient(router_url) as router, httpx.AsyncClient(
            timeout=5.0, trust_env=False) as http:
        proxied = False
        while True:
            await asyncio.sleep(interval)
            line = await (_one_proxied(router_url, http) if proxied
                          else _one_request(router, http))
            proxied = not proxied
            print(f"[traffic] {line}", file=out, flush=True)


async def _one_proxied(router_url: str, http: httpx.AsyncClient) -> str:
    try:
        response = await http.post(f"{router_url}/v1/chat/completions", json={
            "messages": [{"role": "user", "content": "Say hello."}]})
    except httpx.HTTPError as error:
        return f"proxy: {type(error).__name__}"
    provider = response.headers.get("x-router-provider", "no provider").split("/")[-1]
    return f"proxy -> {provider}: HTTP {response.status_code}"


async def _one_request(router: AsyncRouterClient, http: httpx.AsyncClient) -> str:
    call = router.call(capabilities=["chat"])
    try:
        async with call:
            response = await http.post(
                call.provider.api_base + "/chat/completions",
                json={"model": call.provider.model or "mock-model",
                      "messages": [{"role": "user", "content": "Say hello."}]})
            response.raise_for_status()
            usage = response.json().get("usage", {})
            call.tokens(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0))
    except RouterError as error:
        return f"no route: {error.message}"
    except httpx.HTTPError as error:
        what = (f"HTTP {error.response.status_code}"
                if isinstance(error, httpx.HTTPStatusError) else type(error).__name__)
        outcome = call.outcome.value if call.outcome else "?"
        return f"{call.provider.name}: {what}, reported as {outcome}"
    return f"{call.provider.name}: HTTP 200 in {call.elapsed_ms or 0:.0f} ms, reported as success"


# -- running -----------------------------------------------------------------------------------


async def run_demo(host: str = "127.0.0.1", port: int = DEFAULT_PORT, *,
                   duration: float | None = None, send_traffic: bool = True,
                   manifests: Path | None = None, out: TextIO | None = None,
                   stop: asyncio.Event | None = None,
                   on_ready: Callable[[Standalone, list[MockProvider]], None] | None = None,
                   ) -> int:
    """Run the demo until ``duration`` elapses, ``stop`` is set, or SIGINT/SIGTERM."""
    out = out or sys.stdout
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    with tempfile.TemporaryDirectory(prefix="provider-router-demo-") as temp:
        mocks, folder = await prepare(Path(temp), manifests)
        router: Standalone | None = None
        background: list[asyncio.Task[Any]] = []
        try:
            router = Standalone(folder, host=host, port=port, probe_initial_delay=0.0,
                                proxy=ProxyOptions())
            try:
                await router.start()
            except OSError as error:
                if port == 0:
                    raise
                print(f"port {port} is busy ({error.strerror}); using a free port instead",
                      file=out, flush=True)
                await router.prober.stop()
                router = Standalone(folder, host=host, port=0, probe_initial_delay=0.0,
                                    proxy=ProxyOptions())
                await router.start()
            print(banner(router.url, mocks, folder), file=out, flush=True)
            if on_ready is not None:
                on_ready(router, mocks)
            if send_traffic:
                background.append(loop.create_task(traffic(router.url, out)))
            if duration is not None:
                background.append(loop.create_task(_stop_after(stop, duration)))
            await router.run_until(stop)
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            if router is not None:
                await router.stop()
            for mock in mocks:
                await mock.stop()
            for sig in installed:
                loop.remove_signal_handler(sig)
    print("demo stopped", file=out, flush=True)
    return 0


async def _stop_after(stop: asyncio.Event, seconds: float) -> None:
    await asyncio.sleep(seconds)
    stop.set()


def demo(host: str = "127.0.0.1", port: int = DEFAULT_PORT, *, duration: float | None = None,
         send_traffic: bool = True, manifests: Path | None = None) -> int:
    """``provider-router demo``: blocking; returns the exit code."""
    return run_loop(run_demo(host, port, duration=duration, send_traffic=send_traffic,
                             manifests=manifests))
