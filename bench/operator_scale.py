"""Operator at scale: time to Ready and memory with 200 providers across 5 policies.

Starts the test control plane (tests/testenv), one local HTTP server that answers every
provider's probe, creates the resources, then starts the operator as its own process and
measures the time until every LLMProvider and RoutingPolicy reports Ready=True, the status
writes that took, and the operator's resident memory (VmRSS now, VmHWM peak).

    python bench/operator_scale.py [--providers 200] [--policies 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from kubernetes import client

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "testenv"))

import starter  # noqa: E402


def mock_server() -> int:
    """Answers 200 on any path, in a thread; returns its port."""
    ready = threading.Event()
    port: list[int] = []

    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"data": []})

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/{tail:.*}", ok)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port.append(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        ready.set()
        await asyncio.Event().wait()

    threading.Thread(target=lambda: asyncio.run(main()), daemon=True).start()
    ready.wait(10)
    return port[0]


def memory_kib(pid: int) -> tuple[int, int]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text()
                  .splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def all_ready(api: client.CustomObjectsApi, namespace: str) -> tuple[int, int]:
    ready = total = 0
    for plural in ("llmproviders", "routingpolicies"):
        for item in api.list_namespaced_custom_object("router.zoeyos.io", "v1alpha1",
                                                      namespace, plural)["items"]:
            total += 1
            conditions = (item.get("status") or {}).get("conditions") or []
            if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
                ready += 1
    return ready, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--providers", type=int, default=200)
    parser.add_argument("--policies", type=int, default=5)
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="bench-testenv-"))
    plane = starter.start(state_dir=state, reuse=False)
    try:
        run(plane.kubeconfig, args.providers, args.policies)
    finally:
        plane.stop()


def run(kubeconfig: Path, providers: int, policies: int) -> None:
    binary = starter.build()
    kubectl = [str(binary), "kubectl", f"--kubeconfig={kubeconfig}"]
    subprocess.run([*kubectl, "apply", "--server-side", "-f", str(REPO / "crds")], check=True,
                   capture_output=True)
    subprocess.run([*kubectl, "wait", "--for=condition=Established", "crd", "--all"],
                   check=True, capture_output=True)
    namespace = f"bench-{uuid.uuid4().hex[:6]}"
    subprocess.run([*kubectl, "create", "namespace", namespace], check=True,
                   capture_output=True)
    port = mock_server()
    documents: list[dict[str, Any]] = [
        {"apiVersion": "router.zoeyos.io/v1alpha1", "kind": "LLMProvider",
         "metadata": {"name": f"p{i:03d}", "labels": {"pool": f"g{i % policies}"}},
         "spec": {"baseURL": f"http://127.0.0.1:{port}/p{i}", "costPer1kTokens": i / 1000,
                  "healthCheck": {"intervalSeconds": 10}}}
        for i in range(providers)]
    documents += [
        {"apiVersion": "router.zoeyos.io/v1alpha1", "kind": "RoutingPolicy",
         "metadata": {"name": f"policy-{g}"},
         "spec": {"strategy": "Cost", "providerSelector": {"matchLabels": {"pool": f"g{g}"}}}}
        for g in range(policies)]
    path = Path(tempfile.mkdtemp()) / "objects.yaml"
    path.write_text(yaml.safe_dump_all(documents))
    subprocess.run([*kubectl, "-n", namespace, "apply", "-f", str(path)], check=True,
                   capture_output=True)

    configuration = client.Configuration()
    from kubernetes import config

    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    api = client.CustomObjectsApi(client.ApiClient(configuration))
    code = ("from provider_router.operator import run; "
            f"run(namespaces=[{namespace!r}], route_port=0, kubeconfig={str(kubeconfig)!r}, "
            "liveness_port=None)")
    started = time.monotonic()
    operator = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env={**os.environ})
    try:
        total = providers + policies
        ready = 0
        while ready < total:
            if time.monotonic() - started > 300:
                raise SystemExit(f"only {ready}/{total} Ready after 300 s")
            time.sleep(0.25)
            ready, total = all_ready(api, namespace)
        elapsed = time.monotonic() - started
        rss, peak = memory_kib(operator.pid)
        time.sleep(5)
        rss_later, peak_later = memory_kib(operator.pid)
        print(f"{providers} providers, {policies} policies")
        print(f"time to all Ready (operator start included): {elapsed:.2f} s")
        print(f"operator memory at Ready: RSS {rss / 1024:.1f} MiB (peak {peak / 1024:.1f} MiB)")
        print(f"operator memory 5 s later: RSS {rss_later / 1024:.1f} MiB "
              f"(peak {peak_later / 1024:.1f} MiB)")
    finally:
        operator.terminate()
        operator.wait(20)


if __name__ == "__main__":
    main()
