"""The generated CRDs are what the API server accepts and what the operator expects.

Why: kube-apiserver rejects non-structural schemas (refs, unions, untyped nodes,
``additionalProperties: false``), and its defaulting must agree with the models' defaults, or
objects read back from the cluster would differ from what the operator built.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

from provider_router.api import (
    Failover,
    HealthCheck,
    KindInfo,
    KubeModel,
    LLMProvider,
    LLMProviderSpec,
    LLMProviderStatus,
    ObjectMeta,
    ProviderCounts,
    ProviderHealth,
    RoutingPolicy,
    RoutingPolicySpec,
    RoutingPolicyStatus,
    Strategy,
    UnsupportedSchemaError,
    all_crds,
    crd_for,
)

Schema = dict[str, Any]

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def crd_of(kind: type[KubeModel]) -> Schema:
    return crd_for(kind)


def version_of(kind: type[KubeModel]) -> Schema:
    versions: list[Schema] = crd_of(kind)["spec"]["versions"]
    assert len(versions) == 1
    return versions[0]


def root_schema(kind: type[KubeModel]) -> Schema:
    schema: Schema = version_of(kind)["schema"]["openAPIV3Schema"]
    return schema


def at(kind: type[KubeModel], *names: str) -> Schema:
    """The schema node for ``names`` (property names; ``[]`` steps into array items)."""
    node = root_schema(kind)
    for name in names:
        node = node["items"] if name == "[]" else node["properties"][name]
    return node


def walk(node: Schema, path: str = "") -> Iterator[tuple[str, Schema]]:
    yield path, node
    for name, sub in node.get("properties", {}).items():
        yield from walk(sub, f"{path}.{name}")
    if "items" in node:
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}{{}}")


def all_nodes() -> Iterator[tuple[str, Schema]]:
    for crd in all_crds():
        kind = crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            yield from walk(version["schema"]["openAPIV3Schema"], kind)


def apply_defaults(obj: Any, schema: Schema) -> Any:
    """kube-apiserver's structural defaulting: fill missing defaulted fields, then recurse."""
    if isinstance(obj, dict):
        properties: Schema = schema.get("properties", {})
        for name, prop in properties.items():
            if name not in obj and "default" in prop:
                obj[name] = copy.deepcopy(prop["default"])
        for name, value in obj.items():
            sub = properties.get(name, schema.get("additionalProperties"))
            if isinstance(sub, dict):
                apply_defaults(value, sub)
    elif isinstance(obj, list) and "items" in schema:
        for item in obj:
            apply_defaults(item, schema["items"])
    return obj


# --- structural ----------------------------------------------------------------------------


def test_every_node_is_structural() -> None:
    forbidden = {"$ref", "$defs", "anyOf", "oneOf", "allOf", "not", "title", "const",
                 "patternProperties", "propertyNames", "uniqueItems"}
    for path, node in all_nodes():
        assert not forbidden & node.keys(), f"{path}: {sorted(forbidden & node.keys())}"
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), path
        assert node.get("additionalProperties") is not False, path
        assert not ("properties" in node and "additionalProperties" in node), path
        if "properties" in node or "additionalProperties" in node:
            assert node["type"] == "object", path
        if "items" in node:
            assert node["type"] == "array", path
        if "exclusiveMinimum" in node:
            assert node["exclusiveMinimum"] is True, path
            assert "minimum" in node, path
        if "default" in node:
            assert node["default"] is not None, path


def test_top_level_is_type_meta_opaque_metadata_spec_status() -> None:
    for kind in (LLMProvider, RoutingPolicy):
        root = root_schema(kind)
        assert root["type"] == "object"
        assert list(root["properties"]) == ["apiVersion", "kind", "metadata", "spec", "status"]
        assert root["properties"]["apiVersion"]["type"] == "string"
        assert root["properties"]["kind"]["type"] == "string"
        assert root["properties"]["metadata"] == {"type": "object"}
        spec = root["properties"]["spec"]
        assert "apiVersion" not in spec["properties"]
        assert "kind" not in spec["properties"]


def test_required_fields() -> None:
    assert root_schema(LLMProvider)["required"] == ["spec"]
    assert at(LLMProvider, "spec")["required"] == ["baseURL"]
    assert "required" not in root_schema(RoutingPolicy)
    assert at(RoutingPolicy, "spec")["default"] == {}


def test_status_subresource_and_status_keeps_unknown_fields() -> None:
    for kind in (LLMProvider, RoutingPolicy):
        assert version_of(kind)["subresources"] == {"status": {}}
        status = at(kind, "status")
        assert status["x-kubernetes-preserve-unknown-fields"] is True
        assert status["type"] == "object"
        assert "conditions" in status["properties"]


def test_names_and_scope() -> None:
    llmp, rpol = crd_of(LLMProvider), crd_of(RoutingPolicy)
    assert llmp["metadata"]["name"] == "llmproviders.router.zoeyos.io"
    assert rpol["metadata"]["name"] == "routingpolicies.router.zoeyos.io"
    assert llmp["spec"]["names"] == {
        "kind": "LLMProvider", "listKind": "LLMProviderList", "plural": "llmproviders",
        "singular": "llmprovider", "shortNames": ["llmp"], "categories": ["llm", "zoey"],
    }
    assert rpol["spec"]["names"]["shortNames"] == ["rpol"]
    assert rpol["spec"]["names"]["singular"] == "routingpolicy"
    for crd in (llmp, rpol):
        assert crd["spec"]["group"] == "router.zoeyos.io"
        assert crd["spec"]["scope"] == "Namespaced"
        (version,) = crd["spec"]["versions"]
        assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)


# --- defaults, enums, bounds ----------------------------------------------------------------


def test_scalar_defaults() -> None:
    assert at(LLMProvider, "spec", "weight")["default"] == 1
    assert at(LLMProvider, "spec", "apiFormat")["default"] == "openai"
    assert at(LLMProvider, "spec", "disabled")["default"] is False
    assert at(RoutingPolicy, "spec", "strategy")["default"] == "RoundRobin"


def test_nested_objects_default_to_empty_and_carry_their_own_defaults() -> None:
    health_check = at(LLMProvider, "spec", "healthCheck")
    assert health_check["default"] == {}
    assert {k: v.get("default") for k, v in health_check["properties"].items()} == {
        # No timeoutSeconds default: the model derives it from the interval (min(5, it)), and
        # a schema default of 5 would make `intervalSeconds: 2` alone fail the interval rule.
        "enabled": True, "path": None, "intervalSeconds": 30, "timeoutSeconds": None,
        "failureThreshold": 3, "successThreshold": 1,
    }
    failover = at(RoutingPolicy, "spec", "failover")
    assert failover["default"] == {}
    assert {k: v["default"] for k, v in failover["properties"].items()} == {
        "enabled": True, "failureThreshold": 3, "cooldownSeconds": 30, "maxFallbacks": 2,
    }
    assert at(RoutingPolicy, "spec", "providerSelector")["default"] == {}
    assert at(RoutingPolicy, "spec", "providerSelector", "matchExpressions", "[]", "values")[
        "default"] == []


@pytest.mark.parametrize(
    ("kind", "path", "model"),
    [
        (LLMProvider, ("spec", "healthCheck"), HealthCheck),
        (LLMProvider, ("status",), LLMProviderStatus),
        (LLMProvider, ("status", "health"), ProviderHealth),
        (RoutingPolicy, ("spec",), RoutingPolicySpec),
        (RoutingPolicy, ("spec", "failover"), Failover),
        (RoutingPolicy, ("status",), RoutingPolicyStatus),
        (RoutingPolicy, ("status", "providers"), ProviderCounts),
    ],
)
def test_server_side_defaults_equal_model_defaults(
    kind: type[KubeModel], path: tuple[str, ...], model: type[KubeModel]
) -> None:
    # A default the model derives from other fields (healthCheck.timeoutSeconds) has none in
    # the schema; the model fills it in when it reads the object.
    derived = {f.alias or n for n, f in model.model_fields.items()
               if f.default_factory_takes_validated_data}
    served = apply_defaults({}, at(kind, *path))
    wire = model().to_wire()
    assert served == {k: v for k, v in wire.items() if k not in derived}
    assert model.model_validate(served).to_wire() == wire


def test_server_side_defaults_fill_a_minimal_provider_like_the_model() -> None:
    spec = {"baseURL": "https://api.example.com/v1", "healthCheck": {"intervalSeconds": 60}}
    expected = LLMProviderSpec.model_validate(spec).to_wire()
    served = apply_defaults(copy.deepcopy(spec), at(LLMProvider, "spec"))
    assert LLMProviderSpec.model_validate(served).to_wire() == expected
    del expected["healthCheck"]["timeoutSeconds"]  # derived from the interval by the model
    assert served == expected


def test_enums() -> None:
    strategy = at(RoutingPolicy, "spec", "strategy")
    assert strategy["type"] == "string"
    assert strategy["enum"] == [s.value for s in Strategy]
    assert len(strategy["enum"]) == 7
    assert at(LLMProvider, "spec", "apiFormat")["enum"] == [
        "openai", "anthropic", "ollama", "vllm", "generic"]
    assert at(LLMProvider, "status", "conditions", "[]", "status")["enum"] == [
        "True", "False", "Unknown"]


def test_bounds_in_openapi_v3_0_form() -> None:
    assert at(RoutingPolicy, "spec", "budget", "limitUSD") == {
        "type": "number", "minimum": 0, "exclusiveMinimum": True}
    ratio = at(RoutingPolicy, "spec", "budget", "throttleRatio")
    assert (ratio["minimum"], ratio["exclusiveMinimum"], ratio["maximum"]) == (0, True, 1)
    weight = at(LLMProvider, "spec", "weight")
    assert (weight["minimum"], weight["maximum"]) == (0, 1000000)
    base_url = at(LLMProvider, "spec", "baseURL")
    assert base_url["maxLength"] == 2048
    assert base_url["pattern"].startswith("^https?://")


def test_optional_fields_are_not_nullable_but_simply_not_required() -> None:
    spec = at(LLMProvider, "spec")
    assert spec["properties"]["pricing"]["type"] == "object"
    assert "nullable" not in spec["properties"]["pricing"]
    assert "pricing" not in spec["required"]
    assert not [path for path, node in all_nodes() if node.get("nullable")]


def test_string_maps() -> None:
    match_labels = at(RoutingPolicy, "spec", "providerSelector", "matchLabels")
    assert match_labels["type"] == "object"
    assert match_labels["additionalProperties"]["type"] == "string"


# --- list types and CEL rules ---------------------------------------------------------------


def test_conditions_are_map_lists_keyed_by_type() -> None:
    for kind in (LLMProvider, RoutingPolicy):
        conditions = at(kind, "status", "conditions")
        assert conditions["x-kubernetes-list-type"] == "map"
        assert conditions["x-kubernetes-list-map-keys"] == ["type"]
        assert "type" in conditions["items"]["required"]


def test_capabilities_and_models_are_sets() -> None:
    for name in ("capabilities", "models"):
        node = at(LLMProvider, "spec", name)
        assert node["x-kubernetes-list-type"] == "set"
        assert node["items"]["type"] == "string"


def test_cel_rules_are_carried_through() -> None:
    (health_rule,) = at(LLMProvider, "spec", "healthCheck")["x-kubernetes-validations"]
    assert "self.timeoutSeconds <= self.intervalSeconds" in health_rule["rule"]
    (selector_rule,) = at(RoutingPolicy, "spec", "providerSelector", "matchExpressions", "[]")[
        "x-kubernetes-validations"]
    assert "self.operator in ['In', 'NotIn']" in selector_rule["rule"]
    assert selector_rule["message"]


# --- printer columns ------------------------------------------------------------------------


def columns(kind: type[KubeModel]) -> dict[str, Schema]:
    return {c["name"]: c for c in version_of(kind)["additionalPrinterColumns"]}


def test_llmprovider_printer_columns() -> None:
    cols = columns(LLMProvider)
    assert cols["Ready"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].status'
    assert cols["Healthy"]["jsonPath"] == '.status.conditions[?(@.type=="Healthy")].status'
    assert (cols["Latency-ms"]["jsonPath"], cols["Latency-ms"]["type"]) == (
        ".status.health.latencyMs", "number")
    assert cols["Circuit"]["jsonPath"] == ".status.health.circuit"
    assert (cols["Age"]["jsonPath"], cols["Age"]["type"]) == (".metadata.creationTimestamp", "date")
    assert (cols["Base-URL"]["jsonPath"], cols["Base-URL"]["priority"]) == (".spec.baseURL", 1)


def test_routingpolicy_printer_columns() -> None:
    cols = columns(RoutingPolicy)
    assert cols["Strategy"]["jsonPath"] == ".spec.strategy"
    assert (cols["Providers"]["jsonPath"], cols["Providers"]["type"]) == (
        ".status.providers.selected", "integer")
    assert cols["Available"]["jsonPath"] == ".status.providers.available"
    assert cols["Ready"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].status'
    assert cols["Age"]["type"] == "date"


# --- the schema accepts what the models accept ----------------------------------------------


def full_provider() -> LLMProvider:
    return LLMProvider.model_validate({
        "metadata": {"name": "openai-main", "namespace": "llm", "labels": {"tier": "gold"}},
        "spec": {
            "baseURL": "https://api.openai.com/v1", "apiFormat": "openai",
            "capabilities": ["chat", "vision"], "models": ["gpt-4o"], "priority": 10,
            "weight": 3, "costPer1kTokens": 0.01, "pricing": {"input": 0.005, "output": 0.015},
            "avgLatencyMs": 250, "maxConcurrent": 8, "rateLimitRPM": 600, "rateLimitTPM": 90000,
            "healthCheck": {"path": "/v1/models", "intervalSeconds": 10, "timeoutSeconds": 2},
            "credentialsSecretRef": {"name": "openai", "key": "api-key"},
        },
        "status": {
            "observedGeneration": 2,
            "conditions": [{"type": "Ready", "status": "True", "reason": "ProbeSucceeded",
                            "lastTransitionTime": NOW}],
            "health": {"lastProbeTime": NOW, "latencyMs": 120.5, "circuit": "Closed"},
        },
    })


def full_policy() -> RoutingPolicy:
    return RoutingPolicy.model_validate({
        "metadata": {"name": "cheap"},
        "spec": {
            "strategy": "Cost",
            "providerSelector": {
                "matchLabels": {"tier": "gold"},
                "matchExpressions": [{"key": "region", "operator": "In", "values": ["eu"]},
                                     {"key": "example.com/beta", "operator": "DoesNotExist"}],
            },
            "requirements": {"capabilities": ["chat"], "model": "gpt-4o"},
            "budget": {"limitUSD": 100, "window": "30d", "throttleRatio": 0.5},
            "stickySessions": {"enabled": True, "ttlSeconds": 600},
            "default": True,
        },
        "status": {"conditions": [], "providers": {"selected": 3, "healthy": 2, "available": 2},
                   "spendUSD": 12.5},
    })


def validator_for(kind: type[KubeModel]) -> Any:
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    # OpenAPI v3.0 bounds are draft-4 bounds (boolean exclusiveMinimum); we emit no nullable.
    return jsonschema_rs.Draft4Validator(root_schema(kind))


@pytest.mark.parametrize(
    ("kind", "build"),
    [(LLMProvider, full_provider), (RoutingPolicy, full_policy),
     (RoutingPolicy, lambda: RoutingPolicy(metadata=ObjectMeta(name="empty")))],
)
def test_model_valid_objects_pass_the_schema(kind: type[KubeModel], build: Any) -> None:
    wire = build().to_wire()
    errors = [e.message for e in validator_for(kind).iter_errors(wire)]
    assert not errors


def patched(obj: BaseModel, path: tuple[str | int, ...], value: Any) -> Schema:
    wire: Schema = obj.model_dump(mode="json", by_alias=True, exclude_none=True)
    node: Any = wire
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return wire


@pytest.mark.parametrize(
    ("kind", "build", "path", "value"),
    [
        (LLMProvider, full_provider, ("spec", "weight"), -1),
        (LLMProvider, full_provider, ("spec", "baseURL"), "ftp://x"),
        (LLMProvider, full_provider, ("spec", "baseURL"), "http://exa mple.com"),
        (LLMProvider, full_provider, ("spec", "apiFormat"), "grpc"),
        (LLMProvider, full_provider, ("spec", "capabilities"), [""]),
        (LLMProvider, full_provider, ("spec", "healthCheck", "intervalSeconds"), 0),
        (RoutingPolicy, full_policy, ("spec", "strategy"), "Random"),
        (RoutingPolicy, full_policy, ("spec", "budget", "limitUSD"), 0),
        (RoutingPolicy, full_policy, ("spec", "budget", "throttleRatio"), 1.5),
        (RoutingPolicy, full_policy, ("spec", "providerSelector", "matchExpressions", 0, "key"),
         "-bad-"),
    ],
)
def test_model_invalid_objects_fail_the_schema_too(
    kind: type[KubeModel], build: Any, path: tuple[str | int, ...], value: Any
) -> None:
    assert not validator_for(kind).is_valid(patched(build(), path, value))


# --- the converter refuses what a CRD cannot express ----------------------------------------


class _UnionSpec(KubeModel):
    value: int | str = 0


class _UnionKind(KubeModel):
    api_version: Literal["test.zoeyos.io/v1"] = "test.zoeyos.io/v1"
    kind: Literal["UnionKind"] = "UnionKind"
    metadata: ObjectMeta
    spec: _UnionSpec


class _Node(KubeModel):
    children: list[_Node] = Field(default_factory=list)


class _TreeKind(KubeModel):
    api_version: Literal["test.zoeyos.io/v1"] = "test.zoeyos.io/v1"
    kind: Literal["TreeKind"] = "TreeKind"
    metadata: ObjectMeta
    spec: _Node


class _AnySpec(KubeModel):
    blob: Any = None


class _AnyKind(KubeModel):
    api_version: Literal["test.zoeyos.io/v1"] = "test.zoeyos.io/v1"
    kind: Literal["AnyKind"] = "AnyKind"
    metadata: ObjectMeta
    spec: _AnySpec


@pytest.mark.parametrize("kind", [_UnionKind, _TreeKind, _AnyKind])
def test_unexpressible_models_are_refused(kind: type[KubeModel]) -> None:
    with pytest.raises(UnsupportedSchemaError):
        crd_for(kind, KindInfo(plural="things"))


def test_unregistered_kind_needs_kind_info() -> None:
    with pytest.raises(KeyError, match="KindInfo"):
        crd_for(_UnionKind)
