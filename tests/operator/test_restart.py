"""The operator can go away at any time: deletions still complete, and a restarted operator
rebuilds the table from the API and writes nothing when nothing changed."""

from __future__ import annotations

import time

import pytest

from support.operator_harness import eventually, policy_doc, provider_doc, start_operator

pytestmark = pytest.mark.integration


def versions(kube) -> dict[str, str]:
    out = {}
    for kind in ("llmp", "rpol"):
        listing = kube.run("get", kind, "-o",
                           "jsonpath={range .items[*]}{.metadata.name}={.metadata."
                           "resourceVersion} {end}")
        out.update(pair.split("=") for pair in listing.split())
    return out


def test_delete_while_down_and_restart_without_spurious_writes(
        k8s, kube, namespace, background, mock_providers) -> None:
    a, b = mock_providers(), mock_providers()
    first = start_operator(background, str(k8s.kubeconfig), namespace)
    # Several failed probes in a row before a provider counts as down: on a loaded machine one
    # slow probe is likely, and it would be a real status change, not a spurious write.
    steady = {"intervalSeconds": 1, "timeoutSeconds": 1, "failureThreshold": 5}
    kube.apply(provider_doc("a", a.url, healthCheck=steady),
               provider_doc("b", b.url, healthCheck=steady),
               provider_doc("gone", a.url, healthCheck=steady),
               policy_doc("main", default=True))
    kube.run("wait", "--for=condition=Ready", "llmp/a", "llmp/b", "llmp/gone", "rpol/main",
             "--timeout=30s")
    assert "finalizers" not in kube.get("llmp", "gone")["metadata"]
    first.stop()

    # With no operator running, a deletion completes at once: nothing holds it.
    kube.run("delete", "llmp", "gone", "--wait=true", "--timeout=10s")
    before = versions(kube)
    statuses = {n: kube.get("llmp", n)["status"] for n in ("a", "b")}

    second = start_operator(background, str(k8s.kubeconfig), namespace)
    try:
        names = {second.routed_to(namespace) for _ in range(4)}
        assert names == {"a", "b"}
        eventually(lambda: kube.get("rpol", "main")["status"]["providers"]["selected"] == 2,
                   timeout=10)
        time.sleep(3)  # several probe intervals and status ticks
        writer = second.operator.writer
        after = versions(kube)
        # Only the policy's counts changed (a provider was deleted while we were away).
        changed = {k: v for k, v in after.items() if before.get(k) != v}
        assert changed == {"main": after["main"]}, {
            n: (statuses[n], kube.get("llmp", n)["status"]) for n in changed if n in statuses}
        assert writer.writes == 1
    finally:
        second.stop()
