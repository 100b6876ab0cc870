"""The chart works the same under Helm 4, and its NOTES render.

Why: the chart targets Helm 3 (apiVersion v2), but Helm 4 is the current major version and
changed the JSON-Schema validator and parts of rendering. Each variant must render the same
objects under both, and the schema must still refuse bad values. NOTES.txt is checked here
because Helm 4's ``install --dry-run=client`` renders it without a cluster, while Helm 3.18's
does not.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chart._helm import CHART_DIR, NAMESPACE, VARIANTS, lint, render, run_helm, template


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_helm4_renders_what_helm3_renders(helm: Path, helm4: Path, variant: str) -> None:
    assert render(helm4, VARIANTS[variant]).objects == render(helm, VARIANTS[variant]).objects


def test_helm4_lint_strict(helm4: Path) -> None:
    result = lint(helm4, VARIANTS["leader-election-namespaced"], "--strict")
    assert result.returncode == 0, result.output


@pytest.mark.parametrize(("values", "field"), [
    ({"replicas": "two"}, "/replicas"),
    ({"replicas": -1}, "/replicas"),
    ({"defaultPolicy": {"strategy": "Fastest"}}, "/defaultPolicy/strategy"),
    ({"replicaCount": 2}, "replicaCount"),
])
def test_helm4_schema_refuses_bad_values(helm4: Path, values: dict[str, object],
                                         field: str) -> None:
    result = template(helm4, values)
    assert result.returncode != 0
    assert field in result.stderr, result.stderr


def _notes(helm4: Path, *flags: str) -> str:
    result = run_helm(helm4, "install", "r", str(CHART_DIR), "--namespace", NAMESPACE,
                      "--dry-run=client", *flags)
    assert result.returncode == 0, result.output
    assert "NOTES:" in result.stdout
    return result.stdout.split("NOTES:", 1)[1]


def test_notes_give_the_route_url_and_a_first_curl(helm4: Path) -> None:
    notes = _notes(helm4)
    url = f"http://r-provider-router.{NAMESPACE}.svc:8080"
    assert url in notes
    assert "--image=curlimages/curl" in notes
    assert f'curl -s "{url}/v1/route?policy=cost-optimized&namespace={NAMESPACE}' in notes
    assert "kubectl apply --server-side -f crds/" in notes
    assert "every namespace" in notes


def test_notes_follow_the_variant(helm4: Path) -> None:
    notes = _notes(helm4, "--set", "watchNamespaces={team-a}", "--set", "replicas=2",
                   "--set", "networkPolicy.enabled=true", "--set", "crds.templated=true")
    assert "the namespaces team-a" in notes
    assert "namespace=team-a" in notes
    assert "kubectl label namespace team-a router.zoeyos.io/client=true" in notes
    assert "one elected leader" in notes
    assert "managed by this release" in notes


def test_notes_warn_when_the_default_policy_is_not_watched(helm4: Path) -> None:
    unwatched = _notes(helm4, "--set", "watchNamespaces={team-a}",
                       "--set", "defaultPolicy.enabled=true")
    assert f"the operator does\nnot watch {NAMESPACE}" in unwatched
    watched = _notes(helm4, "--set", f"watchNamespaces={{team-a,{NAMESPACE}}}",
                     "--set", "defaultPolicy.enabled=true")
    assert "WARNING" not in watched
