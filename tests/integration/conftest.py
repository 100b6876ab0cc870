"""Integration-test wiring: everything under tests/integration talks to a real
API server, so it is marked `integration` automatically (a test cannot forget
the marker and slip into a unit-only run by accident).

The cluster itself comes from the `k8s` and `namespace` fixtures in
tests/conftest.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.integration)
