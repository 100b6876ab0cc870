"""Two operator replicas against the real API server share a budget through a real
redis-server: $1 reports sent to the replicas alternately never admit more than the budget
plus the documented bound (the case that admitted $16 of a $10 budget before)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from sharedstate.redis_harness import SYNC_MS, RedisServer
from support.operator_harness import (
    REPO,
    BackgroundLoop,
    Kube,
    RunningOperator,
    eventually,
    policy_doc,
    provider_doc,
    start_operator,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


@pytest.fixture
def crds(k8s: Any) -> None:
    result = k8s.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    assert result.returncode == 0, result.stderr
    result = k8s.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    assert result.returncode == 0, result.stderr


@pytest.fixture
def background() -> Iterator[BackgroundLoop]:
    loop = BackgroundLoop()
    yield loop
    loop.close()


@pytest.fixture
def operators(k8s: Any, namespace: str, crds: None, background: BackgroundLoop,
              redis_server: RedisServer) -> Iterator[list[RunningOperator]]:
    started: list[RunningOperator] = []
    try:
        for _ in range(2):
            started.append(start_operator(background, str(k8s.kubeconfig), namespace,
                                          state_url=redis_server.url, state_sync_ms=SYNC_MS))
        yield started
    finally:
        for running in started:
            if not running.task.done():
                running.stop()


def test_a_budget_holds_across_two_operator_replicas(
        k8s: Any, namespace: str, operators: list[RunningOperator]) -> None:
    kube = Kube(k8s, namespace)
    kube.apply(provider_doc("paid", "http://127.0.0.1:9", costPer1kTokens=1.0,
                            healthCheck={"enabled": False}),
               policy_doc("main", default=True, budget={"limitUSD": 10, "window": "1h"}))

    def both_ready() -> bool:
        for running in operators:
            details = running.http.get("/readyz").json().get("details", {})
            if details.get("sharedState") != "connected" or details.get("replicas") != 2:
                return False
            if running.routed_to(namespace) != "paid":
                return False
        return True

    eventually(both_ready, timeout=60)
    admitted = 0
    for step in range(30):
        routing, reporting = operators[step % 2], operators[(step + 1) % 2]
        response = routing.route(namespace=namespace, lease="true")
        if response.status_code == 503:
            continue
        assert response.status_code == 200, response.text
        admitted += 1
        report = reporting.http.post("/v1/report", json={
            "leaseId": response.json()["leaseId"], "provider": "paid", "policy": "main",
            "namespace": namespace, "outcome": "success", "inputTokens": 500,
            "outputTokens": 500})
        assert report.status_code == 200, report.text
        time.sleep(SYNC_MS / 1000 / 2)
    # $10 plus the documented overshoot: at most two intervals' admissions per replica when
    # their sync intervals are out of phase (one each per interval at this pace). One
    # interval each held in most runs; a loaded machine put the replicas out of phase.
    assert 10 <= admitted <= 10 + 2 * 2, admitted
    for running in operators:
        assert running.route(namespace=namespace, lease="false").status_code == 503


def _endpoint_slice(service: str, ready: list[bool]) -> dict[str, Any]:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{service}-abc",
                         "labels": {"kubernetes.io/service-name": service,
                                    "endpointslice.kubernetes.io/managed-by": "tests"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [f"10.0.0.{i + 1}"], "conditions": {"ready": r},
                           "targetRef": {"kind": "Pod", "name": f"router-{i}"}}
                          for i, r in enumerate(ready)]}


def test_without_a_store_each_replica_enforces_its_share(
        k8s: Any, namespace: str, crds: None, background: BackgroundLoop) -> None:
    kube = Kube(k8s, namespace)
    # Two ready replicas behind the route Service (and one that is not ready).
    kube.apply(_endpoint_slice("router", [True, True, False]),
               provider_doc("paid", "http://127.0.0.1:9", costPer1kTokens=1.0,
                            healthCheck={"enabled": False}),
               policy_doc("main", default=True, budget={"limitUSD": 10, "window": "1h"}))
    running = start_operator(background, str(k8s.kubeconfig), namespace,
                             leader_namespace=namespace, replicas_service="router",
                             replicas_check_seconds=0.2)
    try:
        def divided() -> bool:
            details = running.http.get("/readyz").json().get("details", {})
            return bool(details.get("sharedState") == "perReplica"
                        and details.get("replicas") == 2
                        and running.routed_to(namespace) == "paid")

        eventually(divided, timeout=60)
        admitted = 0
        for _ in range(12):
            response = running.route(namespace=namespace, lease="true")
            if response.status_code == 503:
                continue
            admitted += 1
            running.http.post("/v1/report", json={"leaseId": response.json()["leaseId"],
                                                  "outcome": "success", "inputTokens": 500,
                                                  "outputTokens": 500})
        assert admitted == 5  # half of the $10 budget: never the whole budget per replica
    finally:
        running.stop()
