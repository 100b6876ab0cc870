"""Loading manifests: what users write in YAML must load exactly as the API server would take
it, and every mistake must point at file, document and field."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest

from provider_router.api import ApiFormat, Strategy
from provider_router.manifests import (
    ManifestError,
    load_manifests,
    manifest_files,
    parse_manifests,
)

REPO = Path(__file__).resolve().parents[2]

PROVIDER = """\
apiVersion: router.zoeyos.io/v1alpha1
kind: LLMProvider
metadata:
  name: {name}
  namespace: {namespace}
  labels: {{tier: {tier}}}
spec:
  baseURL: http://127.0.0.1:9/{name}
  capabilities: [chat]
  weight: {weight}
"""

POLICY = """\
apiVersion: router.zoeyos.io/v1alpha1
kind: RoutingPolicy
metadata: {name: main, namespace: team-a}
spec:
  strategy: Priority
  default: true
"""


def provider(name: str, namespace: str = "default", tier: str = "paid", weight: int = 1) -> str:
    return PROVIDER.format(name=name, namespace=namespace, tier=tier, weight=weight)


def test_multi_document_file(tmp_path: Path) -> None:
    path = tmp_path / "all.yaml"
    path.write_text("---\n" + provider("a") + "---\n" + provider("b", "team-a") + "---\n"
                    + POLICY + "---\n")
    loaded = load_manifests(path)
    assert list(loaded.providers) == [("default", "a"), ("team-a", "b")]
    assert loaded.providers[("team-a", "b")].metadata.labels == {"tier": "paid"}
    assert loaded.policies[("team-a", "main")].spec.strategy is Strategy.PRIORITY
    assert loaded.source_of("LLMProvider", "team-a", "b") is not None
    assert str(loaded.source_of("LLMProvider", "team-a", "b")) == f"{path} document 2"


def test_folder_is_read_recursively_sorted_and_skips_dot_entries(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "two.yml").write_text(provider("two"))
    (tmp_path / "a.yaml").write_text(provider("one"))
    (tmp_path / "notes.txt").write_text("not yaml: [")
    # A ConfigMap volume keeps a second copy of every file under ..data: never read it.
    (tmp_path / "..data").mkdir()
    (tmp_path / "..data" / "a.yaml").write_text(provider("one"))
    (tmp_path / ".hidden.yaml").write_text("{broken")
    assert [p.relative_to(tmp_path).as_posix() for p in manifest_files(tmp_path)] == [
        "a.yaml", "b/two.yml"]
    loaded = load_manifests(tmp_path)
    assert list(loaded.providers) == [("default", "one"), ("default", "two")]


def test_examples_are_valid() -> None:
    loaded = load_manifests(REPO / "examples" / "standalone")
    assert len(loaded.providers) >= 2
    assert any(p.spec.default for p in loaded.policies.values())
    formats = {p.spec.api_format for p in loaded.providers.values()}
    assert ApiFormat.OLLAMA in formats
    for prov in loaded.providers.values():
        ref = prov.spec.credentials_secret_ref
        if ref is not None:
            assert loaded.credential_for(prov.metadata.namespace, ref) == "demo-not-a-real-key"


def test_secret_data_and_string_data() -> None:
    encoded = base64.b64encode(b"from-data").decode()
    loaded = parse_manifests(f"""\
apiVersion: v1
kind: Secret
metadata: {{name: creds, namespace: ns}}
type: Opaque
data:
  a: {encoded}
  both: {base64.b64encode(b"loses").decode()}
stringData:
  b: plain text
  both: wins
""")
    secret = loaded.secrets[("ns", "creds")]
    assert dict(secret.data) == {"a": "from-data", "b": "plain text", "both": "wins"}
    # Logging or printing a Secret shows its keys, never its values.
    assert "from-data" not in repr(secret)
    assert "plain text" not in repr(loaded)


def test_credential_lookup_is_namespaced() -> None:
    loaded = parse_manifests("""\
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: ns}
stringData: {key: value}
---
apiVersion: router.zoeyos.io/v1alpha1
kind: LLMProvider
metadata: {name: p, namespace: ns}
spec:
  baseURL: http://127.0.0.1:9
  credentialsSecretRef: {name: creds, key: key}
""")
    ref = loaded.providers[("ns", "p")].spec.credentials_secret_ref
    assert ref is not None
    assert loaded.credential_for("ns", ref) == "value"
    assert loaded.credential_for("other", ref) is None


def test_error_names_file_document_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(provider("fine") + "---\n" + provider("openai", weight=-1))
    with pytest.raises(ManifestError) as caught:
        load_manifests(path)
    assert str(caught.value) == (
        f"{path}: document 2 (LLMProvider default/openai): spec.weight: "
        "Input should be greater than or equal to 0")
    (problem,) = caught.value.problems
    assert (problem.document, problem.field, problem.name) == (2, "spec.weight", "openai")


def test_relative_paths_stay_relative(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "bad.yaml").write_text(provider("x") + "---\n"
                                                    + provider("openai", weight=-1))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ManifestError, match=r"^examples/bad.yaml: document 2 \(LLMProvider "
                       r"default/openai\): spec.weight: "):
        load_manifests("examples")


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("""\
apiVersion: router.zoeyos.io/v1alpha1
kind: LLMProvider
metadata: {name: p}
spec:
  baseURL: ftp://nope
  bogus: 1
  healthCheck: {intervalSeconds: 1, timeoutSeconds: 5}
  capabilities: [chat, ""]
""")
    (tmp_path / "b.yaml").write_text("""\
apiVersion: router.zoeyos.io/v1alpha1
kind: RoutingPolicy
metadata: {name: p}
spec: {strategy: Fastest}
""")
    with pytest.raises(ManifestError) as caught:
        load_manifests(tmp_path)
    fields = {(Path(p.file).name, p.field) for p in caught.value.problems}
    assert fields == {("a.yaml", "spec.baseURL"), ("a.yaml", "spec.bogus"),
                      ("a.yaml", "spec.healthCheck"), ("a.yaml", "spec.capabilities[1]"),
                      ("b.yaml", "spec.strategy")}
    text = str(caught.value)
    assert "a.yaml: document 1 (LLMProvider default/p): spec.bogus: Extra inputs are not" in text
    assert "timeoutSeconds must not exceed intervalSeconds" in text


def test_yaml_syntax_error_names_document_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(provider("a") + "---\nkind: [unclosed\n")
    with pytest.raises(ManifestError) as caught:
        load_manifests(path)
    (problem,) = caught.value.problems
    assert problem.document == 2
    assert "invalid YAML at line" in problem.message


def test_duplicates_are_an_error_naming_both_places(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(provider("same"))
    (tmp_path / "b.yaml").write_text(provider("other") + "---\n" + provider("same"))
    with pytest.raises(ManifestError) as caught:
        load_manifests(tmp_path)
    (problem,) = caught.value.problems
    assert problem.file.endswith("b.yaml")
    assert problem.document == 2
    assert f"already defined in {tmp_path / 'a.yaml'} document 1" in problem.message


def test_same_name_in_other_namespace_or_kind_is_not_a_duplicate() -> None:
    loaded = parse_manifests(provider("x") + "---\n" + provider("x", "other") + """\
---
apiVersion: v1
kind: Secret
metadata: {name: x}
stringData: {k: v}
""")
    assert len(loaded.providers) == 2
    assert len(loaded.secrets) == 1


def test_other_kinds_are_skipped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        loaded = parse_manifests("""\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec: {}
---
""" + provider("p"), source="mixed.yaml")
    assert list(loaded.providers) == [("default", "p")]
    assert loaded.skipped == ("mixed.yaml: document 1 (Deployment default/web)",)
    assert "skipping apps/v1 Deployment" in caplog.text


def test_unknown_kind_in_our_group_is_an_error() -> None:
    with pytest.raises(ManifestError, match=r"document 1 \(LLMProvder default/p\): kind: "
                       r"unknown kind 'LLMProvder'"):
        parse_manifests(provider("p").replace("kind: LLMProvider", "kind: LLMProvder"))


def test_wrong_api_version_is_an_error() -> None:
    with pytest.raises(ManifestError, match=r"apiVersion: Input should be 'router\.zoeyos\.io"):
        parse_manifests(provider("p").replace("v1alpha1", "v1beta9"))


def test_documents_without_kind_or_not_mappings() -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifests("metadata: {name: x}\n---\n- a list\n", source="s.yaml")
    assert [str(p) for p in caught.value.problems] == [
        "s.yaml: document 1: kind: missing: every document needs apiVersion and kind",
        "s.yaml: document 2: expected a mapping with apiVersion, kind and metadata, got list"]


def test_bad_base64_names_the_key_but_not_the_value() -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifests("""\
apiVersion: v1
kind: Secret
metadata: {name: s}
data: {token: "s3cr3t-v@lue!"}
""")
    text = str(caught.value)
    assert "document 1 (Secret default/s): data.token: not valid base64" in text
    assert "s3cr3t" not in text


def test_unresolved_credentials_are_an_error() -> None:
    source = provider("p").replace("  weight: 1\n", "  credentialsSecretRef: "
                                   "{name: creds, key: api-key}\n")
    with pytest.raises(ManifestError, match=r"document 1 \(LLMProvider default/p\): "
                       r"spec.credentialsSecretRef: Secret default/creds not found"):
        parse_manifests(source)
    with pytest.raises(ManifestError, match="Secret default/creds has no key 'api-key'"):
        parse_manifests(source + "---\napiVersion: v1\nkind: Secret\nmetadata: {name: creds}\n"
                        "stringData: {other: x}\n")


def test_list_documents_are_expanded() -> None:
    items = "\n".join("  - " + line if i == 0 else "    " + line
                      for doc in (provider("a"), provider("b", weight=-2))
                      for i, line in enumerate(doc.splitlines()))
    with pytest.raises(ManifestError) as caught:
        parse_manifests("apiVersion: v1\nkind: List\nitems:\n" + items + "\n")
    (problem,) = caught.value.problems
    assert problem.field == "items[1].spec.weight"


def test_missing_path() -> None:
    with pytest.raises(ManifestError, match="no such file or directory"):
        load_manifests("/nonexistent/manifests")


def test_empty_folder_is_an_empty_set(tmp_path: Path) -> None:
    assert len(load_manifests(tmp_path)) == 0


def test_default_namespace() -> None:
    loaded = parse_manifests(provider("p").replace("  namespace: default\n", ""),
                             default_namespace="team-b")
    assert list(loaded.providers) == [("team-b", "p")]
