"""Load scraping reaches status only as flips: ``Saturated`` with hysteresis, ``status.models``
once, and no writes at all while the load is steady. Against the real API server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from support.llm_servers import MODEL, FakeVllm
from support.operator_harness import (
    BackgroundLoop,
    eventually,
    policy_doc,
    provider_doc,
    start_operator,
)

pytestmark = pytest.mark.integration

INTERVAL = 1


@pytest.fixture
def vllm(background: BackgroundLoop) -> Iterator[tuple[FakeVllm, str]]:
    server = FakeVllm(running=2, waiting=0, kv=0.30)
    url = background.run(server.start())
    yield server, url
    background.run(server.stop())


def vllm_doc(name: str, url: str, **spec: Any) -> dict[str, Any]:
    return provider_doc(name, url, apiFormat="vllm",
                        loadMetrics={"enabled": True, "intervalSeconds": INTERVAL}, **spec)


def test_saturated_flips_with_hysteresis_and_steady_load_writes_nothing(
        kube, operator, vllm) -> None:
    server, url = vllm
    kube.apply(vllm_doc("gpu", url), policy_doc("main", default=True))
    kube.run("wait", "--for=condition=Ready", "llmp/gpu", "--timeout=30s")
    eventually(lambda: kube.condition("llmp", "gpu", "Saturated").get("status") == "False",
               timeout=10)
    eventually(lambda: (kube.get("llmp", "gpu")["status"].get("models") == [MODEL]),
               timeout=10)
    assert kube.condition("llmp", "gpu", "Saturated")["reason"] == "HasRoom"

    # Steady load, with figures that move a little on every scrape: no write at all.
    steady = kube.get("llmp", "gpu")["metadata"]["resourceVersion"]
    for step in range(5 * 4):
        server.running = 2 + step % 3
        server.kv = 0.30 + 0.01 * (step % 4)
        time.sleep(INTERVAL / 4)
    after = kube.get("llmp", "gpu")
    assert after["metadata"]["resourceVersion"] == steady, after["status"]
    assert server.scrapes >= 5

    # Past 95% for three samples: one flip to True.
    server.kv = 0.97
    flipped = eventually(lambda: kube.condition("llmp", "gpu", "Saturated")
                         if kube.condition("llmp", "gpu", "Saturated").get("status") == "True"
                         else None, timeout=3 * INTERVAL + 8)
    assert flipped["reason"] == "KVCacheFull"
    # Back to 90%: under the way in, above the way out: still saturated, nothing written.
    server.kv = 0.90
    held = kube.get("llmp", "gpu")["metadata"]["resourceVersion"]
    time.sleep(4 * INTERVAL)
    assert kube.get("llmp", "gpu")["metadata"]["resourceVersion"] == held
    # Under 85%: it flips back.
    server.kv = 0.50
    eventually(lambda: kube.condition("llmp", "gpu", "Saturated").get("status") == "False",
               timeout=3 * INTERVAL + 8)
    # Routing saw the full cache meanwhile through the same figures; the status shows only the
    # summary, and the printer column reads it.
    wide = kube.run("get", "llmp", "gpu", "-o", "wide")
    assert "SATURATED" in wide.splitlines()[0]


def test_models_are_written_once_and_restored_after_a_restart(
        k8s, kube, namespace, background, vllm) -> None:
    server, url = vllm
    server.models = ("llama-a", "llama-b")
    first = start_operator(background, str(k8s.kubeconfig), namespace)
    try:
        kube.apply(vllm_doc("gpu", url), policy_doc("main", default=True))
        eventually(lambda: kube.get("llmp", "gpu").get("status", {}).get("models")
                   == ["llama-a", "llama-b"], timeout=15)
        # The first writes settle (Ready, then Saturated once a sample is in); after that, the
        # same listing probe after probe writes nothing.
        kube.run("wait", "--for=condition=Ready", "llmp/gpu", "--timeout=30s")
        eventually(lambda: kube.condition("llmp", "gpu", "Saturated").get("status") == "False",
                   timeout=10)
        written = kube.get("llmp", "gpu")["metadata"]["resourceVersion"]
        time.sleep(3 * INTERVAL)  # three more probes listing the same models
        assert kube.get("llmp", "gpu")["metadata"]["resourceVersion"] == written
    finally:
        first.stop()
    # With probes off, the restarted operator can only know the models from status.
    kube.apply(vllm_doc("gpu", url, healthCheck={"enabled": False}))
    second = start_operator(background, str(k8s.kubeconfig), namespace)
    try:
        def discovered() -> list[str] | None:
            listed = second.http.get("/v1/providers", params={"namespace": namespace}).json()
            return next((p["discoveredModels"] for p in listed["providers"]
                         if p["name"] == "gpu"), None)

        assert eventually(discovered, timeout=15) == ["llama-a", "llama-b"]
        response = second.route(namespace=namespace, model="llama-b", lease="false")
        assert response.status_code == 200, response.text
        assert second.route(namespace=namespace, model="other",
                            lease="false").status_code == 503
    finally:
        second.stop()
