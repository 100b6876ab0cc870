"""Resources applied with kubectl reach the routing table and status, against a real API
server: Ready conditions, every strategy through /v1/route, and bad references."""

from __future__ import annotations

import pytest

from support.operator_harness import eventually, policy_doc, provider_doc

pytestmark = pytest.mark.integration

STRATEGY_PICKS = {
    # providers: cheap (cost 0.1, priority 1, weight 0, latency 900),
    #            fast  (cost 1.0, priority 9, weight 1, latency 50)
    # Latency: probes measure both locally, and a measurement overrides the prior, so only
    # consistency is checked.
    "Cost": {"cheap"}, "Priority": {"fast"}, "Latency": None, "Weighted": {"fast"},
    "Capability": {"cheap"}, "RoundRobin": {"cheap", "fast"}, "LeastLoaded": {"cheap", "fast"},
}


def test_providers_and_policy_become_ready_and_route_by_every_strategy(
        kube, operator, mock_providers) -> None:
    cheap, fast = mock_providers(), mock_providers()
    kube.apply(
        provider_doc("cheap", cheap.url, {"tier": "a"}, costPer1kTokens=0.1, priority=1,
                     weight=0, avgLatencyMs=900),
        provider_doc("fast", fast.url, {"tier": "a"}, costPer1kTokens=1.0, priority=9,
                     weight=1, avgLatencyMs=50),
        policy_doc("main", strategy="RoundRobin", default=True,
                   providerSelector={"matchLabels": {"tier": "a"}}))
    kube.run("wait", "--for=condition=Ready", "llmp/cheap", "llmp/fast", "--timeout=30s")
    kube.run("wait", "--for=condition=Ready", "rpol/main", "--timeout=30s")
    policy = kube.get("rpol", "main")
    assert policy["status"]["providers"] == {"selected": 2, "healthy": 2, "available": 2}
    assert policy["status"]["observedGeneration"] == policy["metadata"]["generation"]
    columns = kube.run("get", "llmp", "-o", "wide")
    assert "READY" in columns
    assert "True" in columns
    assert "Closed" in columns
    for strategy, expected in STRATEGY_PICKS.items():
        kube.apply(policy_doc("main", strategy=strategy, default=True,
                              providerSelector={"matchLabels": {"tier": "a"}}))

        def answered(strategy: str = strategy) -> bool:
            response = operator.route(namespace=kube.namespace, lease="false")
            return response.status_code == 200 and response.json()["strategy"] == strategy

        eventually(answered)
        seen = set()
        for _ in range(6):
            response = operator.route(namespace=kube.namespace, lease="false")
            seen.add(response.json()["provider"]["name"])
        if expected is None:
            assert len(seen) == 1, strategy
        else:
            assert seen == expected, strategy


def test_bad_references_are_reported_and_recover(kube, operator, mock_providers) -> None:
    server = mock_providers()
    kube.apply(
        provider_doc("keyed", server.url, {"tier": "a"},
                     credentialsSecretRef={"name": "creds", "key": "apiKey"}),
        policy_doc("lonely", providerSelector={"matchLabels": {"tier": "nobody"}}))

    def accepted() -> dict:
        return kube.condition("llmp", "keyed", "Accepted")

    condition = eventually(lambda: accepted().get("status") == "False" and accepted())
    assert condition["reason"] == "SecretNotFound"
    ready = eventually(lambda: kube.condition("rpol", "lonely", "Ready"))
    assert (ready["status"], ready["reason"]) == ("False", "DanglingSelector")
    response = operator.route(namespace=kube.namespace, policy="lonely")
    assert response.status_code == 503
    kube.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
                "stringData": {"apiKey": "sk-test-recovers"}})
    eventually(lambda: accepted().get("status") == "True", timeout=15)
    kube.run("wait", "--for=condition=Ready", "llmp/keyed", "--timeout=30s")
    assert "Bearer sk-test-recovers" in server.authorizations()
    kube.apply(policy_doc("lonely", providerSelector={"matchLabels": {"tier": "a"}}))
    kube.run("wait", "--for=condition=Ready", "rpol/lonely", "--timeout=30s")
    response = operator.route(namespace=kube.namespace, policy="lonely")
    assert response.json()["provider"]["name"] == "keyed"


def test_invalid_spec_the_schema_cannot_catch_is_not_accepted(kube, operator) -> None:
    # Label keys in matchLabels are not checked by the CRD schema; the models check them.
    kube.apply(policy_doc("odd", providerSelector={"matchLabels": {"-bad-": "x"}}))
    condition = eventually(lambda: kube.condition("rpol", "odd", "Accepted"))
    assert (condition["status"], condition["reason"]) == ("False", "InvalidSpec")
    assert "providerSelector" in condition["message"]
