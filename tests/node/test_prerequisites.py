"""`make node` without root says so in one line and starts nothing (no half-started node).

Run as an unprivileged user: directly when the suite is not root, through setpriv (util-linux)
when it is, so the refusal path is proven on every machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
NOBODY = 65534


@pytest.fixture(scope="module")
def scripts() -> Iterator[Path]:
    """The node scripts (and the starter and support.scripts they load), copied where the
    unprivileged user can read them: a checkout may sit under a folder only its owner can
    enter (``mktemp -d``)."""
    root = Path(tempfile.mkdtemp(prefix="zoey-node-scripts-"))
    try:
        for folder in ("node", "testenv"):
            shutil.copytree(TESTS / folder, root / "tests" / folder,
                            ignore=shutil.ignore_patterns("__pycache__"))
        (root / "tests" / "support").mkdir()
        for name in ("__init__.py", "scripts.py"):
            shutil.copy(TESTS / "support" / name, root / "tests" / "support" / name)
        for path in (root, *root.rglob("*")):
            path.chmod(0o755 if path.is_dir() else 0o644)
        yield root / "tests" / "node"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _as_unprivileged(*cmd: str) -> subprocess.CompletedProcess[str]:
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root and setpriv (util-linux) is not installed")
        prefix = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    # The system python: a per-user interpreter under /root is not readable by nobody.
    python = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else "python3"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent",
           "ZOEY_NODE_RECORD": "/nonexistent/node.json"}
    return subprocess.run([*prefix, python, *cmd], capture_output=True, text=True,
                          timeout=60, check=False, env=env, stdin=subprocess.DEVNULL)


def test_start_without_root_refuses_in_one_line(scripts: Path) -> None:
    result = _as_unprivileged(str(scripts / "node.py"), "start")
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "needs root" in lines[0]
    assert result.stdout == ""


def test_status_without_a_node_says_not_running(scripts: Path) -> None:
    result = _as_unprivileged(str(scripts / "node.py"), "status")
    assert result.returncode == 1
    assert result.stdout.strip() == "not running"


def test_preflight_without_root_is_one_line(scripts: Path) -> None:
    result = _as_unprivileged(str(scripts / "node.py"), "preflight")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "needs root" in result.stderr


def test_image_build_without_root_is_one_line(scripts: Path) -> None:
    result = _as_unprivileged(str(scripts / "image.py"), "build")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "needs root" in result.stderr
