"""Helpers for the operator's tests: kubectl with YAML, and the operator running in the
test's event loop (providers are ``provider_router.mock_provider.MockProvider``s)."""

from __future__ import annotations

import asyncio
import dataclasses
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml

from provider_router.operator import Operator, OperatorOptions
from provider_router.runtime import RuntimeSettings

REPO = Path(__file__).resolve().parents[2]

T = TypeVar("T")


class Kube:
    """kubectl with YAML in, YAML out, bound to one namespace."""

    def __init__(self, k8s: Any, namespace: str) -> None:
        self.k8s, self.namespace = k8s, namespace
        self._dir = Path(tempfile.mkdtemp(prefix="operator-test-"))

    def run(self, *args: str, check: bool = True) -> str:
        result = self.k8s.kubectl("-n", self.namespace, *args)
        if check:
            assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
        return str(result.stdout)

    def apply(self, *documents: dict[str, Any]) -> None:
        path = self._dir / "objects.yaml"
        path.write_text(yaml.safe_dump_all(documents))
        self.run("apply", "-f", str(path))

    def server_side_apply(self, document: dict[str, Any]) -> None:
        """Apply one custom object straight through the API (no kubectl start-up), so timings
        measure the operator rather than a process launch."""
        from kubernetes import client

        plural = {"LLMProvider": "llmproviders", "RoutingPolicy": "routingpolicies"}
        api = client.CustomObjectsApi(self.k8s.api_client)
        api.patch_namespaced_custom_object(
            "router.zoeyos.io", "v1alpha1", self.namespace, plural[document["kind"]],
            document["metadata"]["name"], document, field_manager="operator-tests",
            force=True, _content_type="application/apply-patch+yaml")

    def get(self, kind: str, name: str) -> dict[str, Any]:
        return dict(yaml.safe_load(self.run("get", kind, name, "-o", "yaml")))

    def condition(self, kind: str, name: str, kind_of: str) -> dict[str, Any]:
        status = self.get(kind, name).get("status") or {}
        for condition in status.get("conditions") or ():
            if condition["type"] == kind_of:
                return dict(condition)
        return {}

    def events(self, name: str) -> list[dict[str, Any]]:
        listing = yaml.safe_load(self.run(
            "get", "events", "--field-selector", f"involvedObject.name={name}", "-o", "yaml"))
        return list(listing.get("items") or [])


def provider_doc(name: str, url: str, labels: dict[str, str] | None = None,
                 **spec: Any) -> dict[str, Any]:
    spec.setdefault("healthCheck", {"intervalSeconds": 1, "timeoutSeconds": 1,
                                    "failureThreshold": 1})
    return {"apiVersion": "router.zoeyos.io/v1alpha1", "kind": "LLMProvider",
            "metadata": {"name": name, "labels": labels or {}},
            "spec": {"baseURL": url, **spec}}


def policy_doc(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "router.zoeyos.io/v1alpha1", "kind": "RoutingPolicy",
            "metadata": {"name": name}, "spec": spec}


class BackgroundLoop:
    """An event loop in its own thread, so servers keep serving while a test blocks on kubectl."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True,
                                        name="test-servers")
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)


class RunningOperator:
    """The operator on a background loop, and a client for its route API."""

    def __init__(self, background: BackgroundLoop, operator: Operator,
                 task: asyncio.Task[None]) -> None:
        self.background, self.operator, self.task = background, operator, task
        self.http = httpx.Client(base_url=operator.server.url, timeout=5)

    def route(self, **params: Any) -> httpx.Response:
        return self.http.get("/v1/route", params=params)

    def routed_to(self, namespace: str) -> str | None:
        response = self.route(namespace=namespace, lease="false")
        return str(response.json()["provider"]["name"]) if response.status_code == 200 else None

    def stop(self) -> None:
        # Kopf cancels every task it finds running when it exits, so the wait happens here,
        # outside the loop, rather than in a coroutine that Kopf would cancel.
        self.background.loop.call_soon_threadsafe(self.operator.stop)
        eventually(self.task.done, timeout=30)
        self.http.close()


def start_operator(background: BackgroundLoop, kubeconfig: str, namespace: str,
                   **options: Any) -> RunningOperator:
    """An operator on a free loopback port; ``options`` are OperatorOptions fields, or
    RuntimeSettings fields (``state_url``, ``lease_ttl``, ...) for the runtime it shares with
    standalone mode."""
    options.setdefault("status_hold_seconds", 1.0)
    options.setdefault("status_interval_seconds", 0.2)
    runtime_fields = {f.name for f in dataclasses.fields(RuntimeSettings)}
    runtime = RuntimeSettings(host="127.0.0.1", port=0, **{
        k: options.pop(k) for k in list(options) if k in runtime_fields})

    async def start() -> tuple[Operator, asyncio.Task[None]]:
        operator = Operator(OperatorOptions(
            namespaces=[namespace], runtime=runtime, liveness_port=None,
            kubeconfig=kubeconfig, **options))
        task = asyncio.get_running_loop().create_task(operator.run())
        while not operator.server.running and not task.done():
            await asyncio.sleep(0.01)
        if task.done():
            task.result()
        return operator, task

    operator, task = background.run(start())
    running = RunningOperator(background, operator, task)
    eventually(lambda: running.http.get("/readyz").status_code == 200, timeout=30)
    return running


def eventually(check: Callable[[], T], timeout: float = 10.0, interval: float = 0.05) -> T:
    """Poll ``check`` until it returns a truthy value; that value."""
    deadline = time.monotonic() + timeout
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")
        time.sleep(interval)
