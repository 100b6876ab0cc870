"""The operator with ``--auth kubernetes``: its route API checks callers with the API server it
already talks to (the operator's own connection settings), against ordinary RBAC."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from kubernetes import client

from provider_router.mock_provider import MockProvider
from support.operator_harness import (
    BackgroundLoop,
    Kube,
    policy_doc,
    provider_doc,
    start_operator,
)


def account_token(k8s: Any, namespace: str, name: str) -> str:
    core = client.CoreV1Api(k8s.api_client)
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name)))
    answer = core.create_namespaced_service_account_token(
        name, namespace, client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(
            audiences=["provider-router"], expiration_seconds=3600)))
    return str(answer.status.token)


def test_the_operator_checks_tokens_and_rbac(k8s: Any, namespace: str, kube: Kube,
                                             background: BackgroundLoop,
                                             mock_providers: Callable[[], MockProvider]) -> None:
    server = mock_providers()
    kube.apply(provider_doc("p", server.url), policy_doc("main", default=True))
    rbac = client.RbacAuthorizationV1Api(k8s.api_client)
    rbac.create_namespaced_role(namespace, client.V1Role(
        metadata=client.V1ObjectMeta(name="use-policies"),
        rules=[client.V1PolicyRule(api_groups=["router.zoeyos.io"],
                                   resources=["routingpolicies"], verbs=["use"])]))
    rbac.create_namespaced_role_binding(namespace, client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name="worker-uses-policies"),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role",
                                  name="use-policies"),
        subjects=[client.RbacV1Subject(kind="ServiceAccount", name="worker",
                                       namespace=namespace)]))
    worker = account_token(k8s, namespace, "worker")
    stranger = account_token(k8s, namespace, "stranger")
    operator = start_operator(background, str(k8s.kubeconfig), namespace, auth="kubernetes")
    try:
        kube.run("wait", "--for=condition=Ready", "llmp/p", "--timeout=30s")

        def route(token: str | None) -> httpx.Response:
            headers = {"authorization": f"Bearer {token}"} if token else {}
            return operator.http.get("/v1/route", params={"namespace": namespace},
                                     headers=headers, timeout=20)

        allowed = route(worker)
        assert allowed.status_code == 200, allowed.text
        assert allowed.json()["provider"]["name"] == "p"
        assert route(None).status_code == 401
        refused = route(stranger)
        assert refused.status_code == 403, refused.text
        assert f"{namespace}/main" in refused.json()["error"]["message"]
        assert operator.http.get("/v1/providers").status_code == 200
        metrics = operator.http.get("/metrics").text
        assert 'provider_router_authz_results_total{mode="kubernetes",outcome="denied"} 1.0' \
            in metrics
    finally:
        operator.stop()
