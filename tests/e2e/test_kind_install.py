"""End to end on kind (``pytest --k8s=kind -m e2e``; needs Docker, so never runs on machines
without an engine): build the image, load it into the cluster, install the chart, and check
that the operator comes up Ready and reconciles the example resources into status."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from support.tools import helm_path

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
IMAGE = "provider-router:e2e"


def run(*cmd: str, timeout: float = 600) -> str:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"{' '.join(cmd)}: {result.stderr}"
    return result.stdout


def test_chart_on_kind_reconciles_examples(k8s: Any) -> None:
    if shutil.which("docker") is None or shutil.which("kind") is None:
        pytest.skip("needs docker and kind on PATH")
    run("docker", "build", "-t", IMAGE, str(REPO))
    run("kind", "load", "docker-image", IMAGE, "--name", "zoey-provider-router")
    namespace = f"router-{uuid.uuid4().hex[:6]}"
    kubeconfig = str(k8s.kubeconfig)
    run(str(helm_path()), "install", "e2e", str(REPO / "charts" / "provider-router"),
        "--namespace", namespace, "--create-namespace", "--kubeconfig", kubeconfig,
        "--set", "image.repository=provider-router", "--set", "image.tag=e2e",
        "--set", "image.pullPolicy=Never", "--wait", "--timeout", "5m")
    result = k8s.kubectl("apply", "-n", namespace, "-f", str(REPO / "examples" / "kubernetes"))
    assert result.returncode == 0, result.stderr
    deadline = time.monotonic() + 120
    while True:
        listing = json.loads(k8s.kubectl("get", "llmp", "-n", namespace, "-o", "json").stdout)
        accepted = [c for item in listing["items"]
                    for c in (item.get("status") or {}).get("conditions", [])
                    if c["type"] == "Accepted"]
        if listing["items"] and len(accepted) == len(listing["items"]):
            break
        assert time.monotonic() < deadline, listing
        time.sleep(2)
    rollout = k8s.kubectl("rollout", "status", "-n", namespace,
                          "deployment/e2e-provider-router", "--timeout=60s")
    assert rollout.returncode == 0, rollout.stderr
