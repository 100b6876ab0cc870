"""Fixtures for the chart tests: the pinned ``helm`` binaries, installed on first use.

Why: the tests must run on a fresh machine with nothing but package registries, so the tools
are installed by the project itself (tests/support/tools.py). If that is impossible here, the
tests skip with the reason; under CI (CI=true) they fail instead, so that a broken installer
cannot turn the chart suite into a silent no-op.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from support.tools import ToolUnavailable, helm4_path, helm_path, in_ci


def _tool(getter: Callable[[], Path], what: str) -> Path:
    try:
        return getter()
    except ToolUnavailable as err:
        message = f"{what} unavailable: {err}"
        if in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


@pytest.fixture(scope="session")
def helm() -> Path:
    """Helm v3 (pinned), the chart's primary target."""
    return _tool(helm_path, "helm v3")


@pytest.fixture(scope="session")
def helm4() -> Path:
    """Helm v4 (pinned), to check the chart also works with the current major version."""
    return _tool(helm4_path, "helm v4")
