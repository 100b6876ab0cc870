"""The API models refuse bad input with an error that names the field, and keep good input intact.

Why: the operator reports these errors on the objects' status and in events; a location such as
``spec.weight`` is what tells a user which line of their YAML to fix.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from provider_router.api import (
    HealthCheck,
    KubeModel,
    LabelSelector,
    LabelSelectorRequirement,
    LLMProvider,
    LLMProviderSpec,
    RoutingPolicy,
    RoutingPolicySpec,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
BASE = "https://api.example.com/v1"


def error_locs(model: type[KubeModel], data: dict[str, Any]) -> list[tuple[str | int, ...]]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return [tuple(error["loc"]) for error in caught.value.errors()]


# --- bad input names the field --------------------------------------------------------------


@pytest.mark.parametrize("weight", [-1, 1000001])
def test_weight_out_of_range(weight: int) -> None:
    assert error_locs(LLMProviderSpec, {"baseURL": BASE, "weight": weight}) == [("weight",)]


def test_unknown_strategy() -> None:
    assert error_locs(RoutingPolicySpec, {"strategy": "Random"}) == [("strategy",)]


@pytest.mark.parametrize(
    "url", ["ftp://x", "http://", "not a url", "http://exa mple.com", "https://u@host", ""])
def test_malformed_base_url(url: str) -> None:
    assert error_locs(LLMProviderSpec, {"baseURL": url}) == [("baseURL",)]


def test_missing_base_url() -> None:
    assert error_locs(LLMProviderSpec, {}) == [("baseURL",)]


@pytest.mark.parametrize(
    "url", ["http://localhost", "https://api.openai.com/v1", "http://10.0.0.7:11434",
            "http://ollama.llm.svc.cluster.local:11434/api"])
def test_good_base_urls(url: str) -> None:
    assert LLMProviderSpec.model_validate({"baseURL": url}).base_url == url


@pytest.mark.parametrize(
    ("requirement", "loc"),
    [
        ({"key": "tier", "operator": "In"}, ("providerSelector", "matchExpressions", 0)),
        ({"key": "tier", "operator": "NotIn", "values": []},
         ("providerSelector", "matchExpressions", 0)),
        ({"key": "tier", "operator": "Exists", "values": ["gold"]},
         ("providerSelector", "matchExpressions", 0)),
        ({"key": "tier", "operator": "DoesNotExist", "values": ["gold"]},
         ("providerSelector", "matchExpressions", 0)),
        ({"key": "-bad-", "operator": "Exists"},
         ("providerSelector", "matchExpressions", 0, "key")),
        ({"key": "tier", "operator": "Like", "values": ["gold"]},
         ("providerSelector", "matchExpressions", 0, "operator")),
        ({"key": "tier", "operator": "In", "values": ["not ok"]},
         ("providerSelector", "matchExpressions", 0, "values", 0)),
    ],
)
def test_bad_selector_requirement(requirement: dict[str, Any], loc: tuple[str | int, ...]) -> None:
    spec = {"providerSelector": {"matchExpressions": [requirement]}}
    assert error_locs(RoutingPolicySpec, spec) == [loc]


def test_bad_match_labels_key() -> None:
    spec = {"providerSelector": {"matchLabels": {"-bad-": "x"}}}
    (loc,) = error_locs(RoutingPolicySpec, spec)
    assert loc[:2] == ("providerSelector", "matchLabels")


def test_timeout_longer_than_interval() -> None:
    spec = {"baseURL": BASE, "healthCheck": {"intervalSeconds": 3, "timeoutSeconds": 5}}
    assert error_locs(LLMProviderSpec, spec) == [("healthCheck",)]


@pytest.mark.parametrize(("interval", "timeout"), [(1, 1), (2, 2), (5, 5), (6, 5), (30, 5)])
def test_an_unset_timeout_follows_a_short_interval(interval: int, timeout: int) -> None:
    check = LLMProviderSpec.model_validate(
        {"baseURL": BASE, "healthCheck": {"intervalSeconds": interval}}).health_check
    assert (check.interval_seconds, check.timeout_seconds) == (interval, timeout)
    assert HealthCheck().timeout_seconds == 5
    # What a status write or a reload round-trips stays the same.
    assert HealthCheck.model_validate(check.model_dump(by_alias=True)) == check


def test_timeout_equal_to_interval_is_fine() -> None:
    check = HealthCheck.model_validate({"intervalSeconds": 5, "timeoutSeconds": 5})
    assert check.timeout_seconds == check.interval_seconds == 5


@pytest.mark.parametrize("field", ["capabilities", "models"])
def test_duplicate_entries(field: str) -> None:
    locs = error_locs(LLMProviderSpec, {"baseURL": BASE, field: ["a", "b", "a"]})
    assert locs == [(field,)]


def test_unknown_field_is_refused() -> None:
    assert error_locs(LLMProviderSpec, {"baseURL": BASE, "wieght": 2}) == [("wieght",)]


def test_errors_are_located_from_the_object_root() -> None:
    data = {"metadata": {"name": "p"}, "spec": {"baseURL": BASE, "weight": -5}}
    assert error_locs(LLMProvider, data) == [("spec", "weight")]


def test_budget_limit_must_be_positive() -> None:
    assert error_locs(RoutingPolicySpec, {"budget": {"limitUSD": 0}}) == [
        ("budget", "limitUSD")]


# --- good input round-trips -----------------------------------------------------------------


def provider_wire() -> dict[str, Any]:
    return {
        "apiVersion": "router.zoeyos.io/v1alpha1",
        "kind": "LLMProvider",
        "metadata": {"name": "ollama", "namespace": "llm", "labels": {"tier": "local"},
                     "uid": "0b3e", "generation": 4},
        "spec": {
            "baseURL": "http://ollama:11434", "apiFormat": "ollama",
            "capabilities": ["chat", "embeddings"], "models": ["llama3"], "priority": -5,
            "weight": 0, "costPer1kTokens": 0.0, "pricing": {"output": 0.001},
            "maxConcurrent": 2, "rateLimitRPM": 60,
            "healthCheck": {"enabled": False, "path": "/api/tags", "intervalSeconds": 60,
                            "timeoutSeconds": 10, "failureThreshold": 5, "successThreshold": 2},
            "credentialsSecretRef": {"name": "ollama-creds", "key": "token"},
            "disabled": True,
        },
        "status": {
            "observedGeneration": 4,
            "conditions": [
                {"type": "Ready", "status": "False", "reason": "CircuitOpen",
                 "message": "3 probes failed", "lastTransitionTime": NOW, "observedGeneration": 4},
            ],
            "health": {"lastProbeTime": NOW, "consecutiveFailures": 3, "lastError": "timeout",
                       "circuit": "Open", "retryAt": NOW},
        },
    }


def policy_wire() -> dict[str, Any]:
    return {
        "metadata": {"name": "default-policy"},
        "spec": {
            "strategy": "Weighted",
            "providerSelector": {
                "matchLabels": {"app.kubernetes.io/part-of": "zoey"},
                "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["dev"]},
                                     {"key": "gpu", "operator": "Exists"}],
            },
            "requirements": {"capabilities": ["chat"]},
            "failover": {"enabled": False, "failureThreshold": 1, "cooldownSeconds": 0,
                         "maxFallbacks": 0},
            "healthCheckIntervalSeconds": 15,
            "budget": {"limitUSD": 5.5, "window": "1h", "throttleRatio": 1},
            "default": True,
        },
    }


@pytest.mark.parametrize(
    ("model", "wire"), [(LLMProvider, provider_wire), (RoutingPolicy, policy_wire)])
def test_round_trip(model: type[KubeModel], wire: Any) -> None:
    obj = model.model_validate(wire())
    again = model.model_validate(obj.to_wire())
    assert again == obj
    assert again.to_wire() == obj.to_wire()


def test_round_trip_by_python_names() -> None:
    spec = LLMProviderSpec(base_url=BASE, rate_limit_tpm=1000, cost_per1k_tokens=0.2)
    assert spec.to_wire()["rateLimitTPM"] == 1000
    assert LLMProviderSpec.model_validate(spec.to_wire()) == spec


def test_to_wire_leaves_out_unset_optionals() -> None:
    wire = LLMProviderSpec(base_url=BASE).to_wire()
    assert "pricing" not in wire
    assert "avgLatencyMs" not in wire
    assert wire["healthCheck"]["intervalSeconds"] == 30


# --- label selector semantics ---------------------------------------------------------------


def requirement(operator: str, *values: str, key: str = "tier") -> LabelSelectorRequirement:
    return LabelSelectorRequirement.model_validate(
        {"key": key, "operator": operator, "values": list(values)})


@pytest.mark.parametrize(
    ("req", "labels", "expected"),
    [
        (requirement("In", "gold", "silver"), {"tier": "gold"}, True),
        (requirement("In", "gold", "silver"), {"tier": "bronze"}, False),
        (requirement("In", "gold"), {}, False),
        (requirement("NotIn", "gold"), {"tier": "silver"}, True),
        (requirement("NotIn", "gold"), {"tier": "gold"}, False),
        (requirement("NotIn", "gold"), {}, True),
        (requirement("Exists"), {"tier": ""}, True),
        (requirement("Exists"), {"other": "x"}, False),
        (requirement("DoesNotExist"), {}, True),
        (requirement("DoesNotExist"), {"tier": "gold"}, False),
    ],
)
def test_requirement_matches(
    req: LabelSelectorRequirement, labels: dict[str, str], expected: bool
) -> None:
    assert req.matches(labels) is expected
    assert LabelSelector(match_expressions=[req]).matches(labels) is expected


def test_match_labels_must_all_match() -> None:
    selector = LabelSelector.model_validate({"matchLabels": {"tier": "gold", "region": "eu"}})
    assert selector.matches({"tier": "gold", "region": "eu", "extra": "x"})
    assert not selector.matches({"tier": "gold"})
    assert not selector.matches({"tier": "gold", "region": "us"})


def test_labels_and_expressions_are_anded() -> None:
    selector = LabelSelector.model_validate({
        "matchLabels": {"tier": "gold"},
        "matchExpressions": [{"key": "region", "operator": "In", "values": ["eu"]},
                             {"key": "deprecated", "operator": "DoesNotExist"}],
    })
    assert selector.matches({"tier": "gold", "region": "eu"})
    assert not selector.matches({"tier": "gold", "region": "eu", "deprecated": "true"})
    assert not selector.matches({"tier": "silver", "region": "eu"})


@pytest.mark.parametrize("labels", [{}, {"tier": "gold"}, {"a": "b", "c": "d"}])
def test_empty_selector_matches_everything(labels: dict[str, str]) -> None:
    assert LabelSelector().matches(labels)
    assert RoutingPolicySpec().provider_selector.matches(labels)


SEED_NAMES = {"RoundRobin": "ROUND_ROBIN", "LeastLoaded": "LEAST_LOADED",
              "Capability": "CAPABILITY", "Cost": "COST", "Latency": "LATENCY",
              "Priority": "PRIORITY", "Weighted": "WEIGHTED"}


def test_camel_case_strategy_names_are_the_same_members() -> None:
    from provider_router import RoutingStrategy
    from provider_router.api import RoutingPolicySpec, Strategy, all_crds

    for seed, upper in SEED_NAMES.items():
        assert getattr(RoutingStrategy, seed) is getattr(Strategy, upper)
        spec = RoutingPolicySpec(strategy=getattr(Strategy, seed))
        assert spec.strategy is Strategy[upper]
    # Still seven members, each listed once wherever the values are enumerated.
    assert len(list(Strategy)) == len(Strategy.__members__) == 7
    (policy_crd,) = [c for c in all_crds() if c["spec"]["names"]["kind"] == "RoutingPolicy"]
    schema = policy_crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    listed = schema["properties"]["spec"]["properties"]["strategy"]["enum"]
    assert sorted(listed) == sorted(SEED_NAMES)
