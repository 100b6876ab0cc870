"""The manifests in examples/kubernetes are valid and say what their names promise.

Why: examples are what newcomers copy. Each document is validated twice: by the pydantic models
(what the operator accepts) and by the generated CRD's openAPIV3Schema (what the API server
accepts), so an example cannot drift from the API on either side.
"""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest

from chart._helm import REPO_ROOT, load_yaml_documents
from provider_router.api import ApiFormat, LLMProvider, RoutingPolicy, Strategy

EXAMPLES = REPO_ROOT / "examples" / "kubernetes"
FILES = sorted(EXAMPLES.glob("*.yaml"))
CRD_FILES = {
    "LLMProvider": REPO_ROOT / "crds" / "router.zoeyos.io_llmproviders.yaml",
    "RoutingPolicy": REPO_ROOT / "crds" / "router.zoeyos.io_routingpolicies.yaml",
}
MODELS: dict[str, type[LLMProvider] | type[RoutingPolicy]] = {
    "LLMProvider": LLMProvider,
    "RoutingPolicy": RoutingPolicy,
}


def _documents() -> list[tuple[str, dict[str, Any]]]:
    return [(f"{path.name}#{i}", doc) for path in FILES
            for i, doc in enumerate(load_yaml_documents(path))]


def _by_name(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for _, doc in _documents() if doc["kind"] == kind}


def _crd_validator(kind: str) -> jsonschema_rs.Draft4Validator:
    # OpenAPI v3.0 schemas use draft-4 style (boolean exclusiveMinimum); the x-kubernetes-*
    # keywords are unknown to a JSON Schema validator and ignored, CEL rules included.
    (crd,) = load_yaml_documents(CRD_FILES[kind])
    (version,) = crd["spec"]["versions"]
    return jsonschema_rs.Draft4Validator(version["schema"]["openAPIV3Schema"])


def test_the_promised_examples_exist() -> None:
    assert {p.name for p in FILES} >= {"ollama-provider.yaml", "openai-provider.yaml",
                                       "cost-policy.yaml", "ab-weighted.yaml"}


@pytest.mark.parametrize(("where", "doc"), _documents(), ids=[w for w, _ in _documents()])
def test_document_is_valid(where: str, doc: dict[str, Any]) -> None:
    kind = doc["kind"]
    assert kind in {"LLMProvider", "RoutingPolicy", "Secret"}, where
    # Namespace-less, so that `kubectl -n TEAM apply -f` puts them where the user wants.
    assert "namespace" not in doc["metadata"], where
    if kind == "Secret":
        assert doc["apiVersion"] == "v1"
        return
    assert doc["apiVersion"] == "router.zoeyos.io/v1alpha1"
    MODELS[kind].model_validate(doc)
    errors = [f"{list(e.instance_path)}: {e.message}"
              for e in _crd_validator(kind).iter_errors(doc)]
    assert errors == [], where


def test_ollama_in_cluster() -> None:
    provider = LLMProvider.model_validate(_by_name("LLMProvider")["ollama"])
    assert provider.spec.base_url == "http://ollama.ollama.svc:11434"
    assert provider.spec.api_format is ApiFormat.OLLAMA
    assert provider.spec.credentials_secret_ref is None
    assert provider.spec.probe_path == "/api/tags"


def test_openai_key_comes_from_the_secret_placeholder() -> None:
    provider = LLMProvider.model_validate(_by_name("LLMProvider")["openai"])
    ref = provider.spec.credentials_secret_ref
    assert ref is not None
    secret = _by_name("Secret")[ref.name]
    assert secret["stringData"] == {ref.key: "sk-REPLACE-ME"}
    assert "data" not in secret
    assert provider.spec.api_format is ApiFormat.OPENAI


def test_cost_policy() -> None:
    (policy_doc,) = [d for _, d in _documents() if d["kind"] == "RoutingPolicy"
                     and d["spec"]["strategy"] == "Cost"]
    policy = RoutingPolicy.model_validate(policy_doc)
    assert policy.spec.strategy is Strategy.COST


def test_ab_weighted_policy_splits_two_providers_90_10() -> None:
    (policy_doc,) = [d for _, d in _documents() if d["kind"] == "RoutingPolicy"
                     and d["spec"]["strategy"] == "Weighted"]
    policy = RoutingPolicy.model_validate(policy_doc)
    providers = [LLMProvider.model_validate(d) for d in _by_name("LLMProvider").values()]
    selected = [p for p in providers
                if policy.spec.provider_selector.matches(p.metadata.labels)]
    assert sorted(p.spec.weight for p in selected) == [10, 90]
    assert {p.metadata.labels["variant"] for p in selected} == {"a", "b"}
    assert policy.spec.sticky_sessions.enabled


def test_at_most_one_default_policy() -> None:
    defaults = [d for d in _by_name("RoutingPolicy").values() if d["spec"].get("default")]
    assert len(defaults) <= 1


def test_examples_readme_lists_every_file() -> None:
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    for path in FILES:
        assert f"`{path.name}`" in readme, path.name


def test_paths_in_chart_notes_exist() -> None:
    notes = (REPO_ROOT / "charts" / "provider-router" / "templates" / "NOTES.txt").read_text()
    for name in ("ollama-provider.yaml", "cost-policy.yaml"):
        assert f"examples/kubernetes/{name}" in notes
        assert (EXAMPLES / name).is_file()
    assert "policy=cost-optimized" in notes
    assert "cost-optimized" in _by_name("RoutingPolicy")
