"""Proxy mode in the operator: the key comes from a Secret in a real API server, reaches the
provider, and follows the Secret when it is rotated."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from provider_router.proxy import ProxyOptions
from support.fake_llm import FakeLLM
from support.operator_harness import (
    REPO,
    BackgroundLoop,
    Kube,
    eventually,
    policy_doc,
    provider_doc,
    start_operator,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def kube(k8s: Any, namespace: str) -> Kube:
    result = k8s.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    assert result.returncode == 0, result.stderr
    result = k8s.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    assert result.returncode == 0, result.stderr
    return Kube(k8s, namespace)


@pytest.fixture
def background() -> Iterator[BackgroundLoop]:
    loop = BackgroundLoop()
    yield loop
    loop.close()


def secret(value: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
            "stringData": {"apiKey": value}}


def test_the_operator_proxies_with_the_key_of_the_secret(kube: Kube, k8s: Any,
                                                         background: BackgroundLoop) -> None:
    fake = FakeLLM("keyed")
    background.run(fake.start())
    running = None
    try:
        first, second = f"sk-{uuid.uuid4().hex}", f"sk-{uuid.uuid4().hex}"
        kube.apply(secret(first), provider_doc(
            "keyed", fake.url, credentialsSecretRef={"name": "creds", "key": "apiKey"}),
                   policy_doc("main", default=True))
        # With the proxy on, the operator checks callers unless told otherwise
        # (tests/integration/test_access.py proxies with real tokens); this test is about
        # the provider's key, so callers are not checked.
        running = start_operator(background, str(k8s.kubeconfig), kube.namespace,
                                 proxy=ProxyOptions(namespace=kube.namespace), auth="none")
        kube.run("wait", "--for=condition=Ready", "llmp/keyed", "--timeout=30s")
        # The probe finds what the fake lists, and a provider serves what it was found to.
        chat = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}

        def proxied_with(key: str) -> bool:
            response = running.http.post("/v1/chat/completions", json=chat,
                                         headers={"authorization": "Bearer caller"})
            assert response.status_code == 200, response.text
            calls = fake.calls("/v1/chat/completions")
            return calls[-1].headers.get("Authorization") == f"Bearer {key}"

        assert proxied_with(first)
        prefixed = running.http.post(f"/proxy/{kube.namespace}/main/v1/chat/completions",
                                     json=chat)
        assert prefixed.headers["x-router-provider"] == f"{kube.namespace}/keyed"
        kube.apply(secret(second))
        eventually(lambda: proxied_with(second), timeout=30, interval=0.2)
        assert not any("Bearer caller" in repr(c.headers) for c in fake.seen)
        metrics = running.http.get("/metrics").text
        assert first not in metrics
        assert second not in metrics
        assert "provider_router_proxy_requests_total" in metrics
    finally:
        if running is not None:
            running.stop()
        background.run(fake.stop())
