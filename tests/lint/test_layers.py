"""The import contracts in pyproject.toml hold for the package, and each one really fails when
broken: lint-imports runs on a copy of the package with one bad import injected."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

LAYERS = "Layers: each layer imports only from the layers below it"
PURE = "The engine and the API models are pure: no network, no event loop, no cluster"
CLIENT = "The client library stands alone: it imports no server-side code"


def _lint(project: Path) -> tuple[int, str]:
    """Run lint-imports with ``project``'s pyproject.toml over ``project/src``'s package."""
    env = {**os.environ, "PYTHONPATH": str(project / "src")}
    done = subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo",
                           str(project / "pyproject.toml")], cwd=project, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    return done.returncode, done.stdout + done.stderr


def _copy(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(ROOT / "src" / "provider_router", tmp_path / "src" / "provider_router",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_the_package_keeps_every_contract() -> None:
    code, out = _lint(ROOT)
    assert code == 0, out
    for name in (LAYERS, PURE, CLIENT):
        assert f"{name} KEPT" in out


@pytest.mark.parametrize(("module", "line", "broken"), [
    # An upward import: the engine reaching into the route service.
    ("engine/_circuit.py", "import provider_router.service", LAYERS),
    # Siblings of one layer: the prober reaching into the route service.
    ("health/_probe.py", "from provider_router import service", LAYERS),
    # I/O in the pure core, even from the standard library's event loop.
    ("api/_meta.py", "import asyncio", PURE),
    ("engine/_state.py", "import httpx", PURE),
    # The client library pulling in the server's models.
    ("client/_types.py", "from provider_router.api import Strategy", CLIENT),
])
def test_an_injected_import_breaks_its_contract(tmp_path: Path, module: str, line: str,
                                                broken: str) -> None:
    project = _copy(tmp_path)
    target = project / "src" / "provider_router" / module
    target.write_text(f"{target.read_text()}\n{line}  # injected by the test\n")
    code, out = _lint(project)
    assert code != 0, out
    assert f"{broken} BROKEN" in out
