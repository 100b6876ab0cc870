"""When the API server goes away, routing goes on from the last known table, and /readyz and
a metric say the table is stale. Uses a control plane of its own, since it stops it."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.operator_harness import (
    REPO,
    BackgroundLoop,
    Kube,
    eventually,
    policy_doc,
    provider_doc,
    start_operator,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def own_plane(k8s: Any) -> Iterator[Any]:
    sys.path.insert(0, str(REPO / "tests" / "testenv"))
    import starter

    plane = starter.start(state_dir=Path(tempfile.mkdtemp(prefix="stale-")), reuse=False)
    try:
        yield plane
    finally:
        plane.stop()


def test_routes_from_the_last_table_and_says_it_is_stale(own_plane: Any, k8s: Any,
                                                          mock_providers) -> None:
    plane = type(k8s)(kubeconfig=own_plane.kubeconfig, kubectl_binary=k8s.kubectl_binary)
    assert plane.kubectl("apply", "--server-side", "-f", str(REPO / "crds")).returncode == 0
    assert plane.kubectl("wait", "--for=condition=Established", "crd", "--all").returncode == 0
    assert plane.kubectl("create", "namespace", "stale").returncode == 0
    kube = Kube(plane, "stale")
    server = mock_providers()
    kube.apply(provider_doc("p", server.url), policy_doc("main", default=True))
    background = BackgroundLoop()
    operator = start_operator(background, str(own_plane.kubeconfig), "stale",
                              staleness_check_seconds=0.5)
    try:
        kube.run("wait", "--for=condition=Ready", "llmp/p", "--timeout=30s")
        own_plane.stop()
        eventually(lambda: operator.http.get("/readyz").json()["details"]["stale"], timeout=15)
        ready = operator.http.get("/readyz")
        assert ready.status_code == 200  # still serving: stale is reported, not fatal
        assert ready.json()["details"]["staleSeconds"] >= 0
        assert operator.routed_to("stale") == "p"
        metrics = operator.http.get("/metrics").text
        assert "provider_router_table_stale 1.0" in metrics
    finally:
        operator.stop()
        background.close()
