"""What the real-node e2e tests share: the cluster handle, workload Pods, waits, figures.

Imported as ``e2e._cluster`` by conftest.py and the tests alike (one module, one FIGURES).
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from support.scripts import load_script

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CHART = REPO / "charts" / "provider-router"
RELEASE = "e2e"
RELEASE_NAMESPACE = "router-system"
CLIENT_NAMESPACE = "e2e-client"
KEYED_NAMESPACE = "e2e-keyed"
"""Where the proxy-mode test's provider needs a key that only the router holds."""
DEPLOYMENT = f"{RELEASE}-provider-router"
MOCK_PORT = 9000

FIGURES: dict[str, str] = {}


def figure(name: str, value: str) -> None:
    """Record a measured figure (printed live and again in the terminal summary)."""
    FIGURES[name] = value
    print(f"[e2e] {name}: {value}", file=sys.stderr, flush=True)


def node_module() -> ModuleType:
    return load_script("zoey_node", REPO / "tests" / "node" / "node.py")


def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 1.0) -> Any:
    """Poll check() until it returns something truthy; fail with the last value seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; last seen: {last!r}"[:3000])


@dataclass
class Cluster:
    """The node's cluster as the tests use it: kubectl, helm, and a few waits."""

    node: Any
    helm: Path
    images: dict[str, str] = field(default_factory=dict)

    def kubectl(self, *args: str, timeout: float = 60, stdin: str | None = None) -> str:
        result = self.node.kubectl(*args, timeout=timeout, stdin=stdin)
        assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr[-2000:]}"
        return str(result.stdout)

    def try_kubectl(self, *args: str, timeout: float = 60) -> Any:
        return self.node.kubectl(*args, timeout=timeout)

    def get(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json"))

    def apply(self, manifest: dict[str, Any] | list[dict[str, Any]]) -> None:
        items = manifest if isinstance(manifest, list) else [manifest]
        self.kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List",
                                                          "items": items}))

    def helm_run(self, *args: str, timeout: float = 300) -> str:
        import subprocess

        cmd = [str(self.helm), *args, "--kubeconfig", str(self.node.kubeconfig)]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                check=False, stdin=subprocess.DEVNULL)
        assert result.returncode == 0, f"helm {' '.join(args)}: {result.stderr[-2000:]}"
        return result.stdout

    def deployment_available(self, name: str, namespace: str, replicas: int) -> bool:
        deployment = self.get("deployment", name, "-n", namespace)
        status = deployment.get("status") or {}
        conditions = {c["type"]: c["status"] for c in status.get("conditions", [])}
        return bool(conditions.get("Available") == "True"
                    and status.get("observedGeneration") == deployment["metadata"]["generation"]
                    and status.get("updatedReplicas") == replicas
                    and status.get("readyReplicas") == replicas
                    and status.get("replicas") == replicas)

    def wait_available(self, replicas: int = 1, timeout: float = 180) -> None:
        wait_for(f"deployment {DEPLOYMENT} Available with {replicas} ready",
                 lambda: self.deployment_available(DEPLOYMENT, RELEASE_NAMESPACE, replicas),
                 timeout)

    def operator_pods(self) -> list[dict[str, Any]]:
        listing = self.get("pods", "-n", RELEASE_NAMESPACE, "-l",
                           "app.kubernetes.io/instance=" + RELEASE)
        return [p for p in listing["items"] if not p["metadata"].get("deletionTimestamp")]

    def service_url(self, name: str, namespace: str, port_name: str | None = None) -> str:
        service = self.get("service", name, "-n", namespace)
        ports = service["spec"]["ports"]
        port = next((p for p in ports if port_name in (None, p.get("name"))), ports[0])
        return f"http://{service['spec']['clusterIP']}:{port['port']}"

    def router_url(self) -> str:
        return self.service_url(DEPLOYMENT, RELEASE_NAMESPACE, "http")


WORKLOAD_ACCOUNT = "workload"
"""The ServiceAccount workload Pods run as, bound to ``provider-router-user`` in their
namespace: the chart checks callers by default, as its README tells users to set up."""
AUDIENCE = "provider-router"
TOKEN_DIR = "/var/run/secrets/provider-router"


def python_pod(name: str, namespace: str, script: Path, env: dict[str, str],
               restart: str = "Never", labels: dict[str, str] | None = None,
               identity: bool = False) -> dict[str, Any]:
    """A Pod running one of this folder's scripts with the product image, locked down.

    ``identity``: run as the workload ServiceAccount with a projected token for the router's
    audience at ``TOKEN_DIR/token`` (what the chart README's workload Deployment does)."""
    pod = _python_pod(name, namespace, script, env, restart, labels)
    if identity:
        spec = pod["spec"]
        spec["serviceAccountName"] = WORKLOAD_ACCOUNT
        spec["volumes"] = [{"name": "router-token", "projected": {"sources": [
            {"serviceAccountToken": {"audience": AUDIENCE, "expirationSeconds": 3600,
                                     "path": "token"}}]}}]
        spec["containers"][0]["volumeMounts"] = [
            {"name": "router-token", "mountPath": TOKEN_DIR, "readOnly": True}]
    return pod


def workload_identity(namespace: str) -> list[dict[str, Any]]:
    """The ServiceAccount and RoleBinding that let workload Pods use the namespace's
    policies."""
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": WORKLOAD_ACCOUNT, "namespace": namespace}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "workload-uses-policies", "namespace": namespace},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": "provider-router-user"},
         "subjects": [{"kind": "ServiceAccount", "name": WORKLOAD_ACCOUNT,
                       "namespace": namespace}]},
    ]


def _python_pod(name: str, namespace: str, script: Path, env: dict[str, str],
                restart: str, labels: dict[str, str] | None) -> dict[str, Any]:
    image = node_module().image_module().IMAGE
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {"app": name}},
        "spec": {
            "restartPolicy": restart,
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 2,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65532,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "main",
                "image": image,
                "imagePullPolicy": "Never",
                "command": ["python", "-c", script.read_text()],
                "env": [{"name": k, "value": v} for k, v in env.items()],
                "securityContext": {"allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]}},
            }],
        },
    }


def _pod_ready(cluster: Cluster, name: str, namespace: str) -> bool:
    pod = cluster.get("pod", name, "-n", namespace)
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in (pod.get("status") or {}).get("conditions", []))


def condition(cluster: Cluster, kind: str, name: str, namespace: str, kind_: str) -> str | None:
    obj = cluster.get(kind, name, "-n", namespace)
    for c in (obj.get("status") or {}).get("conditions", []):
        if c["type"] == kind_:
            return str(c["status"])
    return None


@dataclass
class WorkloadRun:
    """The JSON lines a workload Pod printed, and the times that matter."""

    lines: list[dict[str, Any]]
    created: float

    @property
    def attempts(self) -> list[dict[str, Any]]:
        return [line for line in self.lines if "ok" in line]

    @property
    def failures(self) -> list[dict[str, Any]]:
        return [line for line in self.attempts if not line["ok"]]

    def downtime(self) -> float:
        """Longest stretch from a failed attempt to the next successful one, in seconds."""
        worst, first_fail = 0.0, None
        for line in self.attempts:
            if not line["ok"] and first_fail is None:
                first_fail = line["t"]
            elif line["ok"] and first_fail is not None:
                worst, first_fail = max(worst, line["t"] - first_fail), None
        if first_fail is not None:
            worst = max(worst, self.attempts[-1]["t"] - first_fail)
        return worst


def start_workload(cluster: Cluster, namespace: str, duration: float,
                   interval: float = 0.2, policy: str = "mock-policy",
                   mode: str = "route") -> tuple[str, float]:
    name = f"workload-{uuid.uuid4().hex[:6]}"
    env = {"ROUTER": cluster.router_url(), "POLICY": policy, "NAMESPACE": namespace,
           "DURATION": str(duration), "INTERVAL": str(interval), "TIMEOUT": "2", "MODE": mode}
    created = time.time()
    cluster.apply(python_pod(name, namespace, HERE / "workload.py", env,
                             labels={"app": "workload"}, identity=True))
    return name, created


def finish_workload(cluster: Cluster, namespace: str, name: str, created: float,
                    timeout: float) -> WorkloadRun:
    def phase() -> str | None:
        status = cluster.get("pod", name, "-n", namespace).get("status") or {}
        value = status.get("phase")
        return value if value in ("Succeeded", "Failed") else None

    wait_for(f"workload Pod {name} to finish", phase, timeout)
    logs = cluster.kubectl("logs", name, "-n", namespace)
    cluster.try_kubectl("delete", "pod", name, "-n", namespace, "--wait=false")
    lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    assert lines, f"workload {name} printed nothing:\n{logs}"
    assert lines[-1].get("done"), f"workload {name} did not finish cleanly:\n{logs}"
    return WorkloadRun(lines, created)


def run_workload(cluster: Cluster, namespace: str, duration: float = 0,
                 timeout: float = 180, during: Callable[[], None] | None = None,
                 policy: str = "mock-policy", mode: str = "route") -> WorkloadRun:
    """Run a workload Pod (one successful attempt, or a loop of `duration` seconds while
    `during` runs a drill) and return what it printed. ``mode="proxy"``: it calls through the
    router's proxy path instead of routing and calling the provider itself."""
    name, created = start_workload(cluster, namespace, duration, policy=policy, mode=mode)
    if during is not None:
        wait_for(f"workload Pod {name} Running",
                 lambda: (cluster.get("pod", name, "-n", namespace).get("status") or {})
                 .get("phase") in ("Running", "Succeeded", "Failed"), 120)
        during()
    return finish_workload(cluster, namespace, name, created, timeout + duration)
