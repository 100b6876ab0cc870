"""Our generated CRDs against the real API server: accepted, validating, defaulting, keeping
status through the subresource, and showing the printer columns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

REPO = Path(__file__).resolve().parents[2]
GROUP, VERSION = "router.zoeyos.io", "v1alpha1"


@pytest.fixture(scope="module")
def applied(k8s: Any) -> None:
    result = k8s.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    assert result.returncode == 0, result.stderr
    result = k8s.kubectl("wait", "--for=condition=Established", "crd/llmproviders.router.zoeyos.io",
                         "crd/routingpolicies.router.zoeyos.io", "--timeout=60s")
    assert result.returncode == 0, result.stderr


def create(k8s: Any, namespace: str, plural: str, kind: str, name: str,
           spec: dict[str, Any]) -> dict[str, Any]:
    api = client.CustomObjectsApi(k8s.api_client)
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": name},
            "spec": spec}
    return dict(api.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body))


@pytest.mark.parametrize(("plural", "kind", "spec", "field"), [
    ("llmproviders", "LLMProvider", {"baseURL": "ftp://nope"}, "spec.baseURL"),
    ("llmproviders", "LLMProvider", {"baseURL": "http://a", "weight": -1}, "spec.weight"),
    ("llmproviders", "LLMProvider", {"weight": 1}, "spec.baseURL"),
    ("llmproviders", "LLMProvider",
     {"baseURL": "http://a", "healthCheck": {"intervalSeconds": 5, "timeoutSeconds": 9}},
     "spec.healthCheck.timeoutSeconds"),
    ("routingpolicies", "RoutingPolicy", {"strategy": "Fastest"}, "spec.strategy"),
    ("routingpolicies", "RoutingPolicy",
     {"providerSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}},
     "spec.providerSelector.matchExpressions[0]"),
])
def test_invalid_objects_are_rejected_naming_the_field(
        k8s: Any, namespace: str, applied: None, plural: str, kind: str,
        spec: dict[str, Any], field: str) -> None:
    with pytest.raises(ApiException) as caught:
        create(k8s, namespace, plural, kind, "bad", spec)
    assert caught.value.status == 422
    assert field in caught.value.body


def test_defaults_are_filled_in_by_the_server(k8s: Any, namespace: str, applied: None) -> None:
    provider = create(k8s, namespace, "llmproviders", "LLMProvider", "p",
                      {"baseURL": "http://127.0.0.1:1"})
    spec = provider["spec"]
    assert spec["apiFormat"] == "openai"
    assert spec["weight"] == 1
    assert spec["healthCheck"]["intervalSeconds"] == 30
    policy = create(k8s, namespace, "routingpolicies", "RoutingPolicy", "r", {})
    assert policy["spec"]["strategy"] == "RoundRobin"
    assert policy["spec"]["failover"] == {"enabled": True, "failureThreshold": 3,
                                          "cooldownSeconds": 30, "maxFallbacks": 2}


def test_a_short_interval_alone_is_accepted_and_the_timeout_follows_it(
        k8s: Any, namespace: str, applied: None) -> None:
    from provider_router.api import LLMProviderSpec

    stored = create(k8s, namespace, "llmproviders", "LLMProvider", "quick",
                    {"baseURL": "http://127.0.0.1:1", "healthCheck": {"intervalSeconds": 2}})
    check = stored["spec"]["healthCheck"]
    assert check["intervalSeconds"] == 2
    assert "timeoutSeconds" not in check  # no schema default to trip the interval rule
    spec = LLMProviderSpec.model_validate(stored["spec"])
    assert (spec.health_check.interval_seconds, spec.health_check.timeout_seconds) == (2, 2)
    # With no healthCheck at all, the defaults hold: every 30 s, 5 s to answer.
    plain = create(k8s, namespace, "llmproviders", "LLMProvider", "plain",
                   {"baseURL": "http://127.0.0.1:1"})
    check = LLMProviderSpec.model_validate(plain["spec"]).health_check
    assert (check.interval_seconds, check.timeout_seconds) == (30, 5)
    # An explicit timeout longer than the interval is still refused.
    with pytest.raises(ApiException) as caught:
        create(k8s, namespace, "llmproviders", "LLMProvider", "slow",
               {"baseURL": "http://127.0.0.1:1",
                "healthCheck": {"intervalSeconds": 2, "timeoutSeconds": 3}})
    assert caught.value.status == 422
    assert "timeoutSeconds must not exceed intervalSeconds" in caught.value.body


def test_status_survives_the_subresource_and_shows_in_columns(
        k8s: Any, namespace: str, applied: None) -> None:
    create(k8s, namespace, "llmproviders", "LLMProvider", "p", {"baseURL": "http://a:1"})
    api = client.CustomObjectsApi(k8s.api_client)
    status = {"observedGeneration": 1,
              "conditions": [{"type": "Ready", "status": "True", "reason": "Ready",
                              "message": "ok", "lastTransitionTime": "2026-01-01T00:00:00Z",
                              "observedGeneration": 1},
                             {"type": "Healthy", "status": "True", "reason": "ProbeSucceeded",
                              "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
              "health": {"latencyMs": 42, "circuit": "Closed", "consecutiveFailures": 0,
                         "futureField": "kept"}}
    api.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, "llmproviders", "p",
                                              {"status": status})
    stored = api.get_namespaced_custom_object(GROUP, VERSION, namespace, "llmproviders", "p")
    assert stored["status"]["health"]["futureField"] == "kept"
    assert stored["status"]["conditions"][0]["reason"] == "Ready"
    table = k8s.kubectl("-n", namespace, "get", "llmp", "-o", "wide")
    assert table.returncode == 0, table.stderr
    header, row = table.stdout.splitlines()[:2]
    assert header.split()[:6] == ["NAME", "READY", "HEALTHY", "LATENCY-MS", "CIRCUIT", "AGE"]
    assert row.split()[:5] == ["p", "True", "True", "42", "Closed"]
    short = k8s.kubectl("-n", namespace, "get", "rpol")
    assert short.returncode == 0
    assert yaml.safe_load(k8s.kubectl("get", "crd", "routingpolicies.router.zoeyos.io",
                                      "-o", "yaml").stdout)["spec"]["names"]["shortNames"] == [
        "rpol"]
