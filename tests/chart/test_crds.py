"""The chart's CRDs: identical to the generated ones, and the same whether Helm installs them from
crds/ or renders them from templates (crds.templated).

Why: the chart ships copies of crds/ (Helm cannot read files outside the chart), and a copy
that drifts from the models would make the API server accept or refuse objects differently from
the operator. The templated variant must not differ from the crds/ variant either, or switching
between the two would change the API.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chart._helm import CHART_DIR, REPO_ROOT, load_yaml_documents, render

REPO_CRDS = REPO_ROOT / "crds"
CHART_CRDS = CHART_DIR / "crds"
ROUTER_GLOB = "router.zoeyos.io_*.yaml"
SYNC_HINT = "run tests/tools/sync-chart-crds.sh (after `make crds`) to copy crds/ into the chart"


def _names(directory: Path) -> set[str]:
    return {p.name for p in directory.glob(ROUTER_GLOB)}


def test_chart_has_every_generated_crd_and_no_other() -> None:
    assert _names(REPO_CRDS), "the repository's crds/ is empty"
    assert _names(CHART_CRDS) == _names(REPO_CRDS), SYNC_HINT
    # Nothing else: the operator runs Kopf standalone, so Kopf's peering CRDs are not needed.
    assert {p.name for p in CHART_CRDS.iterdir()} == _names(REPO_CRDS)


@pytest.mark.parametrize("name", sorted(_names(REPO_CRDS)))
def test_chart_crd_is_a_byte_identical_copy(name: str) -> None:
    chart_copy = (CHART_CRDS / name).read_bytes()
    assert chart_copy == (REPO_CRDS / name).read_bytes(), f"{name} drifted: {SYNC_HINT}"


def test_default_render_has_no_crd_in_templates(helm: Path) -> None:
    assert "CustomResourceDefinition" not in render(helm).kinds()


def _file_crds() -> dict[str, dict[str, object]]:
    crds = {}
    for path in sorted(CHART_CRDS.glob(ROUTER_GLOB)):
        (crd,) = load_yaml_documents(path)
        crds[crd["metadata"]["name"]] = crd
    return crds


def test_templated_crds_equal_the_crds_directory(helm: Path) -> None:
    rendered = render(helm, {"crds": {"templated": True, "keep": False}})
    templated = {c["metadata"]["name"]: c for c in rendered.all("CustomResourceDefinition")}
    assert templated == _file_crds()


def test_templated_crds_are_verbatim_copies(helm: Path) -> None:
    """Not only equal after parsing: the very bytes of each file (no re-serialisation)."""
    text = render(helm, {"crds": {"templated": True, "keep": False}}).text
    for path in sorted(CHART_CRDS.glob(ROUTER_GLOB)):
        assert path.read_text(encoding="utf-8").strip() in text, path.name


def test_templated_crds_are_kept_on_uninstall_by_default(helm: Path) -> None:
    rendered = render(helm, {"crds": {"templated": True}})
    templated = {c["metadata"]["name"]: c for c in rendered.all("CustomResourceDefinition")}
    files = _file_crds()
    assert set(templated) == set(files)
    for name, crd in templated.items():
        annotations = crd["metadata"].pop("annotations")
        assert annotations == {"helm.sh/resource-policy": "keep"}, name
        assert crd == files[name], f"{name}: only the keep annotation may differ"
