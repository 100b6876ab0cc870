"""Fixtures for end-to-end tests on a real node (tests/node/node.py): the chart as it ships.

Why: only a kubelet running the image shows what the API-server tests cannot (read-only root,
non-root user, PID 1 signals, the in-cluster config, probes, the Service selector). Everything
here is session-scoped and bounded: the node starts once (or a `make node` one is reused), the
chart is installed once, and every wait has a deadline that fails with what was seen. Teardown
always runs (fixture finalizers; the node also has an atexit hook).

Without root the node cannot run: the tests skip with that one line, and fail under CI=true.
Figures (image size, install to Available, first route, drill downtimes) are printed in the
terminal summary.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e._cluster import (
    CHART,
    CLIENT_NAMESPACE,
    FIGURES,
    HERE,
    KEYED_NAMESPACE,
    MOCK_PORT,
    RELEASE,
    RELEASE_NAMESPACE,
    Cluster,
    _pod_ready,
    condition,
    figure,
    node_module,
    python_pod,
    wait_for,
    workload_identity,
)
from support.tools import helm_path, in_ci


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "node: needs a real kubelet node (tests/node, root)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Real-node tests run last: the session-scoped node then stops right after them, and its
    kubelet and containerd never load the machine during the rest of the suite."""
    node_tests = [item for item in items if item.get_closest_marker("node") is not None]
    if node_tests:
        others = [item for item in items if item.get_closest_marker("node") is None]
        items[:] = others + node_tests


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        terminalreporter.section("real-node figures")
        for name, value in FIGURES.items():
            terminalreporter.write_line(f"[e2e] {name}: {value}")


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """The node (started here, or the one `make node` left running) and helm."""
    module = node_module()
    started = time.monotonic()
    try:
        node = module.start()
    except module.NodeUnavailable as err:
        if in_ci():
            pytest.fail(f"real node unavailable under CI: {err}", pytrace=False)
        pytest.skip(f"real node unavailable: {err}")
    try:
        figure("node start (control plane + kubelet, image imported)",
               f"{time.monotonic() - started:.1f}s" + ("" if node.owned else " (reused)"))
        archive = Path(node.record.get("image_archive") or module.image_module().archive_path())
        if archive.exists():
            figure("image size", f"{archive.stat().st_size / 1e6:.0f} MB (docker-archive, "
                   "uncompressed layers)")
        yield Cluster(node=node, helm=helm_path())
    finally:
        node.stop()
        if node.owned:
            left = module.leftovers(node.record)
            assert not left, f"the node's teardown left {left}"


@pytest.fixture(scope="session")
def release(cluster: Cluster) -> Iterator[Cluster]:
    """The chart as it ships, only the image values set; installed once for the session."""
    image = node_module().image_module().IMAGE
    repository, tag = image.rsplit(":", 1)
    started = time.monotonic()
    cluster.helm_run("install", RELEASE, str(CHART), "--namespace", RELEASE_NAMESPACE,
                     "--create-namespace", "--set", f"image.repository={repository}",
                     "--set", f"image.tag={tag}", "--set", "image.pullPolicy=Never")
    cluster.wait_available(1, timeout=180)
    figure("helm install -> Deployment Available", f"{time.monotonic() - started:.1f}s")
    try:
        yield cluster
    finally:
        cluster.helm_run("uninstall", RELEASE, "--namespace", RELEASE_NAMESPACE, "--wait",
                         "--timeout", "60s", timeout=120)


def _client_namespace(release: Cluster, ns: str) -> None:
    """A namespace labelled for the chart's NetworkPolicy, with the workload identity."""
    release.apply({"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": ns, "labels": {"router.zoeyos.io/client": "true"}}})
    wait_for(f"ServiceAccount {ns}/default",
             lambda: release.try_kubectl("get", "sa", "default", "-n", ns).returncode == 0, 60)
    release.apply(workload_identity(ns))


def _mock_provider(release: Cluster, ns: str, env: dict[str, str]) -> str:
    """The mock provider Pod and its Service in ``ns``; its base URL once the Pod is Ready."""
    pod = python_pod("mock-provider", ns, HERE / "mock_provider.py",
                     {"NAME": "mock", "PORT": str(MOCK_PORT), **env}, restart="Always")
    pod["spec"]["containers"][0]["ports"] = [{"name": "http", "containerPort": MOCK_PORT}]
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "mock-provider", "namespace": ns},
               "spec": {"selector": {"app": "mock-provider"},
                        "ports": [{"name": "http", "port": MOCK_PORT,
                                   "targetPort": MOCK_PORT}]}}
    release.apply([pod, service])
    wait_for(f"mock provider Pod Ready in {ns}",
             lambda: _pod_ready(release, "mock-provider", ns), 120)
    return release.service_url("mock-provider", ns)


def _provider(ns: str, base_url: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "router.zoeyos.io/v1alpha1", "kind": "LLMProvider",
            "metadata": {"name": "mock", "namespace": ns},
            "spec": {"baseURL": base_url, "apiFormat": "openai", "capabilities": ["chat"],
                     "models": ["mock-model"],
                     "healthCheck": {"intervalSeconds": 5, "timeoutSeconds": 2}, **spec}}


@pytest.fixture(scope="session")
def client_namespace(release: Cluster) -> str:
    """A client namespace (labelled for the chart's NetworkPolicy) with a mock provider Pod,
    its Service, an LLMProvider at that Service and a RoutingPolicy selecting it."""
    ns = CLIENT_NAMESPACE
    _client_namespace(release, ns)
    base_url = _mock_provider(release, ns, {})
    release.apply([
        _provider(ns, base_url),
        {"apiVersion": "router.zoeyos.io/v1alpha1", "kind": "RoutingPolicy",
         "metadata": {"name": "mock-policy", "namespace": ns},
         "spec": {"strategy": "RoundRobin", "providerSelector": {}}},
    ])
    wait_for("LLMProvider mock Ready",
             lambda: condition(release, "llmprovider", "mock", ns, "Ready") == "True", 120)
    return ns


@pytest.fixture(scope="session")
def keyed_namespace(release: Cluster) -> tuple[str, str]:
    """A client namespace whose mock provider answers only with its key, which lives in a
    Secret there that the LLMProvider names: workloads in proxy mode never see it. Returns
    the namespace and the key."""
    ns = KEYED_NAMESPACE
    key = f"sk-e2e-{secrets.token_hex(12)}"
    _client_namespace(release, ns)
    release.apply({"apiVersion": "v1", "kind": "Secret",
                   "metadata": {"name": "mock-key", "namespace": ns},
                   "stringData": {"apiKey": key}})
    base_url = _mock_provider(release, ns, {"API_KEY": key})
    release.apply([
        _provider(ns, base_url, credentialsSecretRef={"name": "mock-key", "key": "apiKey"}),
        {"apiVersion": "router.zoeyos.io/v1alpha1", "kind": "RoutingPolicy",
         "metadata": {"name": "keyed", "namespace": ns},
         "spec": {"strategy": "Priority", "default": True, "providerSelector": {}}},
    ])
    # Ready means the probes, made with the key from the Secret, were let in.
    wait_for(f"LLMProvider {ns}/mock Ready",
             lambda: condition(release, "llmprovider", "mock", ns, "Ready") == "True", 120)
    return ns, key
