"""Probes reach status: a failing provider turns Healthy=False within one probe interval plus
two seconds, routing avoids it, and one Event is posted each way."""

from __future__ import annotations

import time

import pytest

from support.operator_harness import eventually, policy_doc, provider_doc

pytestmark = pytest.mark.integration


def test_failure_and_recovery_flip_status_route_and_post_one_event_each(
        kube, operator, mock_providers) -> None:
    primary, backup = mock_providers(), mock_providers()
    kube.apply(provider_doc("primary", primary.url, priority=10),
               provider_doc("backup", backup.url, priority=1),
               policy_doc("main", strategy="Priority", default=True))
    kube.run("wait", "--for=condition=Ready", "llmp/primary", "llmp/backup", "--timeout=30s")

    def routed_to() -> str | None:
        return operator.routed_to(kube.namespace)

    assert routed_to() == "primary"
    primary.fail(503)
    failed_at = time.monotonic()
    eventually(lambda: kube.condition("llmp", "primary", "Healthy").get("status")
                     == "False", timeout=1 + 2)
    assert time.monotonic() - failed_at <= 3.0
    assert kube.condition("llmp", "primary", "Healthy")["reason"] == "ServerError"
    assert routed_to() == "backup"
    primary.recover()
    eventually(lambda: kube.condition("llmp", "primary", "Healthy").get("status")
                     == "True", timeout=10)
    eventually(lambda: routed_to() == "primary", timeout=5)
    reasons = [e["reason"] for e in kube.events("primary")]
    assert reasons.count("BecameUnhealthy") == 1
    assert reasons.count("Recovered") == 1


def test_a_dead_provider_settles_and_stops_writing_status(
        kube, operator, mock_providers) -> None:
    dead = mock_providers()
    kube.apply(provider_doc("dead", dead.url),
               policy_doc("main", default=True,
                          failover={"failureThreshold": 1, "cooldownSeconds": 1}))
    kube.run("wait", "--for=condition=Ready", "llmp/dead", "--timeout=30s")
    dead.fail(503)
    eventually(lambda: kube.condition("llmp", "dead", "Healthy").get("status") == "False",
               timeout=5)
    eventually(lambda: kube.get("llmp", "dead")["status"]["health"]["circuit"] == "HalfOpen",
               timeout=5)
    settled = kube.get("llmp", "dead")["metadata"]["resourceVersion"]
    time.sleep(5)  # five more probe intervals and circuit cooldowns
    after = kube.get("llmp", "dead")
    assert after["metadata"]["resourceVersion"] == settled, after["status"]
    assert kube.condition("llmp", "dead", "Healthy")["status"] == "False"
