"""The pinned tools install, report the pinned versions, and a second call is free.

Why: every chart test, and the cluster tests that will use ``kubectl_path()``, stand on these
binaries; a wrong version (a package that started shipping another Helm) or a slow second call
(re-downloading each session) should show up here, named, rather than as odd failures elsewhere.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from support import tools


def _version(*cmd: str) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=True).stdout


def test_helm_is_v3(helm: Path) -> None:
    assert f'Version:"v{tools.HELM_VERSION}"' in _version(str(helm), "version")


def test_helm4_is_v4(helm4: Path) -> None:
    assert f'Version:"v{tools.HELM4_VERSION}"' in _version(str(helm4), "version")


def test_kubectl_is_pinned() -> None:
    try:
        kubectl = tools.kubectl_path()
    except tools.ToolUnavailable as err:
        if tools.in_ci():
            pytest.fail(str(err), pytrace=False)
        pytest.skip(str(err))
    assert f"Client Version: v{tools.KUBECTL_VERSION}" in _version(str(kubectl), "version",
                                                                    "--client")


def test_installed_tools_live_outside_the_repository(helm: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    assert repo not in helm.resolve().parents


def test_second_call_is_a_cache_hit(helm: Path) -> None:
    started = time.monotonic()
    assert tools.helm_path() == helm
    assert time.monotonic() - started < 0.5


def test_override_must_be_an_executable(monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    monkeypatch.setenv("ZOEY_HELM", str(tmp_path / "missing"))
    with pytest.raises(tools.ToolUnavailable, match="ZOEY_HELM"):
        tools.helm_path()


def test_cli_lists_paths(helm: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert tools.main(["helm"]) == 0
    assert capsys.readouterr().out == f"helm {helm}\n"
    assert tools.main(["nonsense"]) == 2
