"""`make node` without root says so in one line and starts nothing (no half-started node).

Run as an unprivileged user: directly when the suite is not root, through setpriv (util-linux)
when it is, so the refusal path is proven on every machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

NODE_PY = Path(__file__).resolve().parent / "node.py"
NOBODY = 65534


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


def test_start_without_root_refuses_in_one_line() -> None:
    result = _as_unprivileged(str(NODE_PY), "start")
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "needs root" in lines[0]
    assert result.stdout == ""


def test_status_without_a_node_says_not_running() -> None:
    result = _as_unprivileged(str(NODE_PY), "status")
    assert result.returncode == 1
    assert result.stdout.strip() == "not running"


def test_preflight_without_root_is_one_line() -> None:
    result = _as_unprivileged(str(NODE_PY), "preflight")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "needs root" in result.stderr


def test_image_build_without_root_is_one_line() -> None:
    result = _as_unprivileged(str(NODE_PY.with_name("image.py")), "build")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "needs root" in result.stderr
