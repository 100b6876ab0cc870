"""Show that the test control plane behaves like a real API server.

Why: the operator's CRDs will rely on server-side behaviour -- OpenAPI
validation, defaulting, the status subresource, printer columns, RBAC with
service-account tokens, namespace cleanup -- that only a real kube-apiserver
(plus controller-manager) implements. These tests pin that behaviour down with
a small CRD defined inline (`Widget` in `test.zoeyos.io`) until the project's
own CRDs exist in crds/.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

pytestmark = pytest.mark.integration

GROUP = "test.zoeyos.io"
VERSION = "v1alpha1"
PLURAL = "widgets"
CRD_NAME = f"{PLURAL}.{GROUP}"

WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": CRD_NAME},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {
            "plural": PLURAL,
            "singular": "widget",
            "kind": "Widget",
            "listKind": "WidgetList",
        },
        "versions": [
            {
                "name": VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Endpoint", "type": "string", "jsonPath": ".spec.url"},
                    {"name": "Weight", "type": "integer", "jsonPath": ".spec.weight"},
                ],
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "required": ["spec"],
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["url"],
                                "properties": {
                                    "url": {"type": "string", "pattern": "^https?://"},
                                    "weight": {"type": "integer", "minimum": 0, "default": 1},
                                    "strategy": {
                                        "type": "string",
                                        "enum": ["RoundRobin", "Weighted", "Failover"],
                                    },
                                },
                            },
                            "status": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            },
                        },
                    }
                },
            }
        ],
    },
}


class K8sHandle(Protocol):
    """The parts of the `k8s` fixture (tests/conftest.py) these tests use."""

    @property
    def api_client(self) -> ApiClient: ...

    def kubectl(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]: ...

    def token_for(
        self, namespace: str, service_account: str, expiration_seconds: int = 3600
    ) -> str: ...

    def kubeconfig_for_token(self, token: str) -> Path: ...

    def api_client_for_token(self, token: str) -> ApiClient: ...


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.25) -> bool:
    """Poll predicate until it is true or timeout passes; returns the last result."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def crd_conditions(api_client: ApiClient) -> dict[str, str]:
    from kubernetes import client

    crd = client.ApiextensionsV1Api(api_client).read_custom_resource_definition(CRD_NAME)
    conditions = crd.status.conditions if crd.status and crd.status.conditions else []
    return {c.type: c.status for c in conditions}


def widget(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": spec,
    }


@pytest.fixture(scope="module")
def widget_crd(k8s: K8sHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Apply the Widget CRD with kubectl and wait until it is Established."""
    manifest = tmp_path_factory.mktemp("crd") / "widget-crd.json"
    manifest.write_text(json.dumps(WIDGET_CRD))
    result = k8s.kubectl("apply", "-f", str(manifest))
    assert result.returncode == 0, result.stderr
    established = wait_for(lambda: crd_conditions(k8s.api_client).get("Established") == "True", 30)
    assert established, f"CRD not Established: {crd_conditions(k8s.api_client)}"
    yield CRD_NAME
    k8s.kubectl("delete", "crd", CRD_NAME, "--wait=false")


@pytest.fixture
def widgets(k8s: K8sHandle, widget_crd: str) -> Any:
    """CustomObjectsApi bound to the admin client (the CRD is applied first)."""
    from kubernetes import client

    return client.CustomObjectsApi(k8s.api_client)


def create_widget(api: Any, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    created: dict[str, Any] = api.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, body
    )
    return created


def get_widget(api: Any, namespace: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = api.get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name
    )
    return found


def test_crd_is_established(k8s: K8sHandle, widget_crd: str) -> None:
    conditions = crd_conditions(k8s.api_client)
    assert conditions.get("Established") == "True"
    assert conditions.get("NamesAccepted") == "True"


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        pytest.param({"url": "ftp://example.invalid"}, "spec.url", id="bad-url"),
        pytest.param(
            {"url": "https://example.invalid", "weight": -1}, "spec.weight", id="negative-weight"
        ),
        pytest.param(
            {"url": "https://example.invalid", "strategy": "Random"}, "spec.strategy", id="bad-enum"
        ),
        pytest.param({"weight": 2}, "spec.url", id="missing-url"),
    ],
)
def test_invalid_widget_is_rejected(
    widgets: Any, namespace: str, spec: dict[str, Any], field: str
) -> None:
    from kubernetes.client.exceptions import ApiException

    with pytest.raises(ApiException) as caught:
        create_widget(widgets, namespace, widget("bad", **spec))
    assert caught.value.status == 422
    message = json.loads(caught.value.body or "{}").get("message", "")
    assert field in message, message


def test_defaults_are_filled_in_by_the_server(widgets: Any, namespace: str) -> None:
    create_widget(widgets, namespace, widget("defaulted", url="https://example.invalid"))
    stored = get_widget(widgets, namespace, "defaulted")
    assert stored["spec"] == {"url": "https://example.invalid", "weight": 1}


def test_status_patch_survives_read_back(widgets: Any, namespace: str) -> None:
    create_widget(
        widgets, namespace, widget("with-status", url="https://example.invalid", weight=3)
    )
    status: dict[str, Any] = {
        "phase": "Ready",
        "observedGeneration": 1,
        "endpoints": [{"url": "https://a.example.invalid", "healthy": True, "latencyMs": 12}],
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "Probed", "extra": {"nested": [1, 2]}}
        ],
    }
    widgets.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        "with-status",
        {"status": status},
        _content_type="application/merge-patch+json",
    )
    stored = get_widget(widgets, namespace, "with-status")
    assert stored["status"] == status
    assert stored["spec"]["weight"] == 3


def test_status_is_ignored_on_the_main_resource(widgets: Any, namespace: str) -> None:
    body = widget("no-status", url="https://example.invalid")
    body["status"] = {"phase": "Ignored"}
    create_widget(widgets, namespace, body)
    assert "status" not in get_widget(widgets, namespace, "no-status")


def test_kubectl_shows_printer_columns(k8s: K8sHandle, widgets: Any, namespace: str) -> None:
    create_widget(
        widgets, namespace, widget("printed", url="https://printed.example.invalid", weight=7)
    )
    result = k8s.kubectl("get", "widgets", "-n", namespace)
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split()[:3] == ["NAME", "ENDPOINT", "WEIGHT"], result.stdout
    assert rows, result.stdout
    assert rows[0].split()[:3] == ["printed", "https://printed.example.invalid", "7"], result.stdout


def _token_client(k8s: K8sHandle, namespace: str, service_account: str) -> tuple[Path, ApiClient]:
    """(kubeconfig, client) acting as the service account via a TokenRequest token."""
    token = k8s.token_for(namespace, service_account)
    return k8s.kubeconfig_for_token(token), k8s.api_client_for_token(token)


def test_service_account_without_rbac_is_forbidden(
    k8s: K8sHandle, widgets: Any, namespace: str
) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    kubeconfig, sa_client = _token_client(k8s, namespace, "no-rbac")
    with sa_client, pytest.raises(ApiException) as caught:
        client.CustomObjectsApi(sa_client).list_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL
        )
    assert caught.value.status == 403
    # The token authenticated as the service account (not as anonymous).
    assert f"system:serviceaccount:{namespace}:no-rbac" in (caught.value.body or "")
    result = k8s.kubectl("get", "configmaps", "-n", namespace, f"--kubeconfig={kubeconfig}")
    assert result.returncode != 0
    assert "forbidden" in result.stderr.lower()


def test_service_account_with_role_is_allowed(k8s: K8sHandle, widgets: Any, namespace: str) -> None:
    """The positive counterpart: RBAC, not a blanket refusal, decides."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    rbac = client.RbacAuthorizationV1Api(k8s.api_client)
    rule = client.V1PolicyRule(api_groups=[GROUP], resources=[PLURAL], verbs=["get", "list"])
    rbac.create_namespaced_role(
        namespace, client.V1Role(metadata=client.V1ObjectMeta(name="reader"), rules=[rule])
    )
    binding = client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name="reader"),
        role_ref=client.V1RoleRef(
            api_group="rbac.authorization.k8s.io", kind="Role", name="reader"
        ),
        subjects=[client.RbacV1Subject(kind="ServiceAccount", name="reader", namespace=namespace)],
    )
    rbac.create_namespaced_role_binding(namespace, binding)
    _, sa_client = _token_client(k8s, namespace, "reader")

    def can_list() -> bool:
        try:
            client.CustomObjectsApi(sa_client).list_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL
            )
        except ApiException as err:
            if err.status != 403:
                raise
            return False
        return True

    with sa_client:
        assert wait_for(can_list, 10), "RoleBinding never took effect"


def test_namespace_deletion_completes(k8s: K8sHandle, widgets: Any, namespace: str) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    core = client.CoreV1Api(k8s.api_client)
    create_widget(widgets, namespace, widget("doomed", url="https://example.invalid"))
    core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="doomed"), data={"a": "b"})
    )
    core.delete_namespace(namespace)

    def gone() -> bool:
        try:
            core.read_namespace(namespace)
        except ApiException as err:
            if err.status == 404:
                return True
            raise
        return False

    assert wait_for(gone, 30, interval=0.5), (
        "namespace still present after 30s (is the controller-manager running?)"
    )
