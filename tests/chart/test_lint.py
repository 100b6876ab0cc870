"""``helm lint`` passes, plain and ``--strict``, for the default values and every variant.

Why: lint catches what a render does not (Chart.yaml fields, values.schema.json problems, and
with --strict any template reading a value that values.yaml does not define).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import yaml

from chart._helm import CHART_DIR, NAMESPACE, RELEASE, VARIANTS, Rendered, lint, render, run_helm


@pytest.mark.parametrize("strict", [False, True], ids=["plain", "strict"])
def test_lint_default_values(helm: Path, strict: bool) -> None:
    result = lint(helm, None, *(["--strict"] if strict else []))
    assert result.returncode == 0, result.output
    assert "1 chart(s) linted, 0 chart(s) failed" in result.output
    assert "[ERROR]" not in result.output, result.output
    assert "[WARNING]" not in result.output, result.output


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_lint_strict_variant(helm: Path, variant: str) -> None:
    result = lint(helm, VARIANTS[variant], "--strict")
    assert result.returncode == 0, result.output
    assert "[ERROR]" not in result.output, result.output
    assert "[WARNING]" not in result.output, result.output


def test_packaged_chart_renders_like_the_directory(helm: Path, tmp_path: Path) -> None:
    """`helm package` keeps crds/ and what templates/crds.yaml reads (.helmignore drops none)."""
    result = run_helm(helm, "package", str(CHART_DIR), "--destination", str(tmp_path))
    assert result.returncode == 0, result.output
    (archive,) = tmp_path.glob("provider-router-*.tgz")
    values = {"crds": {"templated": True}}
    with tempfile.TemporaryDirectory() as tmp:
        values_file = Path(tmp) / "values.yaml"
        values_file.write_text(yaml.safe_dump(values))
        packaged = run_helm(helm, "template", RELEASE, str(archive), "--namespace", NAMESPACE,
                            "-f", str(values_file))
    assert packaged.returncode == 0, packaged.output
    assert Rendered(packaged.stdout).objects == render(helm, values).objects
    crds = run_helm(helm, "show", "crds", str(archive))
    assert crds.stdout.count("kind: CustomResourceDefinition") == 2
