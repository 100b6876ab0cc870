"""The chart against a real API server: ``helm install`` succeeds (every object passes
server-side validation), the operator does its whole job with the chart's ServiceAccount and
nothing more, and the RBAC grants no more than that job needs."""

from __future__ import annotations

import logging
import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from provider_router.mock_provider import MockProvider
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


def helm_install(helm: Path, k8s: Any, release: str, namespace: str,
                 *values: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(helm), "install", release, str(REPO / "charts" / "provider-router"),
         "--namespace", namespace, "--kubeconfig", str(k8s.kubeconfig), *values],
        capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def installed(helm: Path, k8s: Any, namespace: str) -> str:
    """A namespaced release watching ``namespace``; returns its ServiceAccount's name."""
    release = f"r{uuid.uuid4().hex[:6]}"
    result = helm_install(helm, k8s, release, namespace,
                          "--set", f"watchNamespaces={{{namespace}}}")
    assert result.returncode == 0, result.stderr
    yield f"{release}-provider-router"
    subprocess.run([str(helm), "uninstall", release, "--namespace", namespace,
                    "--kubeconfig", str(k8s.kubeconfig)], capture_output=True, check=False)


def can_i(k8s: Any, account: str, *args: str) -> bool:
    result = k8s.kubectl("auth", "can-i", f"--as={account}", *args)
    return result.stdout.strip() == "yes"


def test_install_creates_every_object(helm: Path, k8s: Any, namespace: str,
                                      installed: str) -> None:
    core = client.CoreV1Api(k8s.api_client)
    assert core.read_namespaced_service_account(installed, namespace)
    assert core.read_namespaced_service(installed, namespace)
    apps = client.AppsV1Api(k8s.api_client)
    deployment = apps.read_namespaced_deployment(installed, namespace)
    container = deployment.spec.template.spec.containers[0]
    assert container.security_context.read_only_root_filesystem
    assert container.args[:1] == ["operator"]


def test_rbac_grants_the_job_and_nothing_more(k8s: Any, namespace: str,
                                              installed: str) -> None:
    other = f"other-{uuid.uuid4().hex[:6]}"
    client.CoreV1Api(k8s.api_client).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=other)))
    account = f"system:serviceaccount:{namespace}:{installed}"
    for verb, what in [("list", "llmproviders.router.zoeyos.io"),
                       ("watch", "routingpolicies.router.zoeyos.io"),
                       ("get", "secrets"), ("create", "events")]:
        assert can_i(k8s, account, verb, what, "-n", namespace), (verb, what)
    for plural in ("llmproviders", "routingpolicies"):
        assert can_i(k8s, account, "patch", f"{plural}.router.zoeyos.io", "--subresource=status",
                     "-n", namespace)
    for verb, what, where in [
            ("get", "secrets", other), ("list", "secrets", other),
            ("delete", "llmproviders.router.zoeyos.io", namespace),
            ("delete", "routingpolicies.router.zoeyos.io", namespace),
            ("patch", "llmproviders.router.zoeyos.io", namespace),
            ("create", "llmproviders.router.zoeyos.io", namespace),
            ("get", "pods", namespace), ("create", "pods", namespace),
            ("list", "llmproviders.router.zoeyos.io", other)]:
        assert not can_i(k8s, account, verb, what, "-n", where), (verb, what, where)


def test_operator_does_its_whole_job_as_the_chart_service_account(
        k8s: Any, namespace: str, installed: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    token = k8s.token_for(namespace, installed)
    kubeconfig = k8s.kubeconfig_for_token(token)
    background = BackgroundLoop()
    server = MockProvider("mock")
    background.run(server.start())
    kube = Kube(k8s, namespace)  # admin, to create the resources
    kube.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
                "stringData": {"apiKey": "sk-rbac-test"}},
               provider_doc("p", server.url,
                            credentialsSecretRef={"name": "creds", "key": "apiKey"}),
               policy_doc("main", default=True))
    operator = start_operator(background, str(kubeconfig), namespace)
    try:
        kube.run("wait", "--for=condition=Ready", "llmp/p", "rpol/main", "--timeout=30s")
        assert operator.routed_to(namespace) == "p"
        server.fail(503)
        eventually(lambda: kube.condition("llmp", "p", "Healthy").get("status") == "False")
        eventually(lambda: any(e["reason"] == "BecameUnhealthy" for e in kube.events("p")))
    finally:
        operator.stop()
        background.run(server.stop())
        background.close()
    # A 403 status, not any "403" inside a port number such as 127.0.0.1:44039.
    status_403 = re.compile(r"(?<![\d:.])403(?!\d)")
    forbidden = [r.getMessage() for r in caplog.records
                 if status_403.search(r.getMessage()) or "forbidden" in r.getMessage().lower()]
    assert forbidden == []
