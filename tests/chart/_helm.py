"""Running Helm against the chart and reading what it renders, for the tests in tests/chart.

Why: every chart test asks the same questions (render these values, find that object, did it
fail and with what message), and the answers must come from a real ``helm template``, not from
reading the templates. Renders are cached per (helm, values, namespace), since the same variant
is inspected by many tests and each ``helm`` call costs a process start.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "charts" / "provider-router"
RELEASE = "r"
NAMESPACE = "router"
FULLNAME = "r-provider-router"
CLUSTER_NAME = f"{NAMESPACE}-{FULLNAME}"

Obj = dict[str, Any]

# The documented variants (README, values.yaml), by name. Each is rendered, linted and checked.
VARIANTS: dict[str, Obj] = {
    "default": {},
    "cluster-wide": {"watchNamespaces": []},
    "namespaced": {"watchNamespaces": ["a", "b"]},
    "leader-election": {"replicas": 2},
    "leader-election-namespaced": {"replicas": 3, "watchNamespaces": ["a", "b"]},
    "monitoring": {"serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}}},
    "pdb": {"podDisruptionBudget": {"enabled": True}},
    "network-policy": {"networkPolicy": {"enabled": True}},
    "crds-templated": {"crds": {"templated": True}},
    "default-policy": {"defaultPolicy": {"enabled": True, "strategy": "Cost"}},
    "auth-none": {"auth": {"mode": "none"}},
}


@dataclass(frozen=True)
class HelmResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return f"{self.stdout}\n{self.stderr}"


def run_helm(helm: Path, *args: str, timeout: float = 120.0) -> HelmResult:
    """Run helm with an empty, private config (no repos, no kube context); never raises."""
    with tempfile.TemporaryDirectory(prefix="helm-home-") as home:
        env = {
            "HOME": home,
            "PATH": "/usr/bin:/bin",
            "HELM_CACHE_HOME": f"{home}/cache",
            "HELM_CONFIG_HOME": f"{home}/config",
            "HELM_DATA_HOME": f"{home}/data",
            "KUBECONFIG": f"{home}/no-kubeconfig",
        }
        proc = subprocess.run([str(helm), *args], capture_output=True, text=True,
                              timeout=timeout, env=env, check=False)
    return HelmResult(proc.returncode, proc.stdout, proc.stderr)


def _values_args(values: Mapping[str, Any] | None, tmp: Path) -> list[str]:
    if not values:
        return []
    path = tmp / "values.yaml"
    path.write_text(yaml.safe_dump(dict(values), sort_keys=False))
    return ["-f", str(path)]


def template(helm: Path, values: Mapping[str, Any] | None = None, *extra: str,
             namespace: str = NAMESPACE) -> HelmResult:
    """``helm template r charts/provider-router -n NS [-f values] [extra...]``."""
    with tempfile.TemporaryDirectory(prefix="values-") as tmp:
        return run_helm(helm, "template", RELEASE, str(CHART_DIR), "--namespace", namespace,
                        *_values_args(values, Path(tmp)), *extra)


def lint(helm: Path, values: Mapping[str, Any] | None = None, *extra: str) -> HelmResult:
    with tempfile.TemporaryDirectory(prefix="values-") as tmp:
        return run_helm(helm, "lint", str(CHART_DIR), "--namespace", NAMESPACE,
                        *_values_args(values, Path(tmp)), *extra)


class Rendered:
    """The objects of one successful render, with lookups by kind and name."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.objects: list[Obj] = [d for d in yaml.safe_load_all(text) if d]

    def __iter__(self) -> Iterator[Obj]:
        return iter(self.objects)

    def kinds(self) -> set[str]:
        return {o["kind"] for o in self.objects}

    def all(self, kind: str) -> list[Obj]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str, name: str | None = None, namespace: str | None = None) -> Obj:
        found = [o for o in self.all(kind)
                 if (name is None or o["metadata"]["name"] == name)
                 and (namespace is None or o["metadata"].get("namespace") == namespace)]
        assert len(found) == 1, (
            f"expected one {kind} (name={name}, namespace={namespace}), found {len(found)}: "
            f"{[(o['metadata'].get('namespace'), o['metadata']['name']) for o in found]}")
        return found[0]

    @property
    def deployment(self) -> Obj:
        return self.one("Deployment", FULLNAME)

    @property
    def container(self) -> Obj:
        containers: list[Obj] = self.deployment["spec"]["template"]["spec"]["containers"]
        assert [c["name"] for c in containers] == ["operator"]
        return containers[0]

    @property
    def args(self) -> list[str]:
        return [str(a) for a in self.container["args"]]


@cache
def _render_cached(helm: str, values_json: str, namespace: str, extra: tuple[str, ...]) -> str:
    result = template(Path(helm), json.loads(values_json), *extra, namespace=namespace)
    if result.returncode != 0:
        raise AssertionError(f"helm template failed ({result.returncode}):\n{result.stderr}")
    return result.stdout


def render(helm: Path, values: Mapping[str, Any] | None = None, *extra: str,
           namespace: str = NAMESPACE) -> Rendered:
    """Render and parse; an assertion error with Helm's message if rendering fails."""
    key = json.dumps(dict(values or {}), sort_keys=True)
    return Rendered(_render_cached(str(helm), key, namespace, tuple(extra)))


def load_yaml_documents(path: Path) -> list[Obj]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def merged(base: Mapping[str, Any], *overlays: Mapping[str, Any]) -> Obj:
    """Deep merge of values dicts (overlays win), as Helm merges -f files."""
    out: Obj = json.loads(json.dumps(dict(base)))
    for overlay in overlays:
        for key, value in overlay.items():
            if isinstance(value, Mapping) and isinstance(out.get(key), dict):
                out[key] = merged(out[key], value)
            else:
                out[key] = value
    return out


def set_flags(pairs: Sequence[str]) -> list[str]:
    """``["a=1", "b=2"]`` as ``--set a=1 --set b=2``."""
    flags: list[str] = []
    for pair in pairs:
        flags += ["--set", pair]
    return flags
