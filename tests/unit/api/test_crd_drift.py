"""The committed CRDs under crds/ must be exactly what the API models generate.

Why: the models are the single source of truth; a model change without regenerated CRDs would
ship an API server schema that disagrees with the operator.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from provider_router.api import all_crds, render_yaml, write_crds
from provider_router.api._crd import HEADER, crd_filename

REPO_ROOT = Path(__file__).resolve().parents[3]
CRD_DIR = REPO_ROOT / "crds"
REGENERATE = (
    "run `make crds` (or: .venv/bin/python -c \"from pathlib import Path; "
    "from provider_router.api import write_crds; write_crds(Path('crds'))\") and commit the result"
)


def test_committed_crds_match_the_models() -> None:
    stale = []
    for crd in all_crds():
        path = CRD_DIR / crd_filename(crd)
        committed = path.read_text(encoding="utf-8") if path.exists() else None
        if committed != render_yaml(crd):
            stale.append(path.relative_to(REPO_ROOT).as_posix())
    assert not stale, f"CRDs out of date with provider_router.api: {stale}; {REGENERATE}"


def test_no_leftover_crd_files() -> None:
    generated = {crd_filename(crd) for crd in all_crds()}
    group = all_crds()[0]["spec"]["group"]
    on_disk = {p.name for p in CRD_DIR.glob(f"{group}_*.yaml")}
    assert on_disk == generated, f"unexpected CRD files {sorted(on_disk - generated)}; {REGENERATE}"


def test_generation_is_deterministic_and_lossless() -> None:
    first, second = all_crds(), all_crds()
    assert first == second
    for crd, again in zip(first, second, strict=True):
        text = render_yaml(crd)
        assert text == render_yaml(again)
        assert text.startswith(HEADER)
        assert yaml.safe_load(text) == crd


def test_write_crds_writes_one_file_per_kind(tmp_path: Path) -> None:
    paths = write_crds(tmp_path / "out")
    assert [p.name for p in paths] == [
        "router.zoeyos.io_llmproviders.yaml",
        "router.zoeyos.io_routingpolicies.yaml",
    ]
    for path, crd in zip(paths, all_crds(), strict=True):
        assert path.read_text(encoding="utf-8") == render_yaml(crd)
