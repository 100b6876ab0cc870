"""Project-wide pytest wiring for tests that need a Kubernetes API server.

Why: the operator's behaviour depends on a real API server (CRD validation,
defaulting, RBAC, namespace lifecycle), which fakes get wrong. This file gives
tests a session-wide `k8s` handle and a per-test `namespace`, with the cluster
chosen by `--k8s`:

* ``testenv`` (default): our own etcd + kube-apiserver + controller-manager,
  built from source by tests/testenv/starter.py (no Docker needed);
* ``existing``: whatever the current KUBECONFIG points at;
* ``kind``: a kind cluster through pytest-kind (machines with Docker only).

Everything is lazy: nothing starts unless a test asks for `k8s`, so unit tests
(tests/unit) never pay for a control plane. If the control plane cannot be
started, the run FAILS under CI (CI=true) and skips with the reason elsewhere.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from support.scripts import load_script

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

K8S_MODES = ("testenv", "existing", "kind")
STARTER_PATH = Path(__file__).resolve().parent / "testenv" / "starter.py"
KIND_CLUSTER_NAME = "zoey-provider-router"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--k8s",
        choices=K8S_MODES,
        default="testenv",
        help="API server for integration tests: testenv (built from source, default), "
        "existing (current KUBECONFIG) or kind (pytest-kind, needs Docker)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "integration: needs a real Kubernetes API server (see --k8s)"
    )
    config.addinivalue_line(
        "markers", "e2e: needs a full cluster with nodes; runs only with --k8s=kind"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """e2e tests need real nodes, which only kind provides."""
    if config.getoption("--k8s") == "kind":
        return
    skip = pytest.mark.skip(reason="e2e tests need --k8s=kind (a cluster with nodes)")
    for item in items:
        if item.get_closest_marker("e2e") is not None:
            item.add_marker(skip)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build the test control plane before the first test that needs it, if it is not cached.

    A cold build takes many minutes; inside the ``k8s`` fixture it would count against that
    test's timeout (pytest-timeout, see pyproject.toml) and fail it. A failure here is left to
    the fixture, which skips or fails with its own message."""
    if session.config.getoption("--k8s") != "testenv" or session.config.option.collectonly:
        return
    if not any("k8s" in getattr(item, "fixturenames", ()) for item in session.items):
        return
    with contextlib.suppress(Exception):
        load_starter().build(log=_terminal_writer(session.config))


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def load_starter() -> ModuleType:
    """tests/testenv/starter.py, under the name tests/node/node.py loads it by too."""
    return load_script("zoey_testenv_starter", STARTER_PATH)


class _Stoppable(Protocol):
    def stop(self) -> None: ...


@dataclass
class K8s:
    """What an integration test gets: a kubeconfig, a client, kubectl, tokens."""

    kubeconfig: Path
    kubectl_binary: list[str]
    _api_client: ApiClient | None = field(default=None, repr=False)
    _tmp: Path = field(
        default_factory=lambda: Path(tempfile.mkdtemp(prefix="k8s-tokens-")), repr=False
    )

    @property
    def api_client(self) -> ApiClient:
        """Admin client (shared for the session)."""
        if self._api_client is None:
            self._api_client = api_client_for(self.kubeconfig)
        return self._api_client

    def kubectl(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this cluster; never raises on a non-zero exit."""
        cmd = [*self.kubectl_binary, f"--kubeconfig={self.kubeconfig}", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)

    def token_for(
        self, namespace: str, service_account: str, expiration_seconds: int = 3600
    ) -> str:
        """Mint a token for the service account (created if missing) via TokenRequest."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        core = client.CoreV1Api(self.api_client)
        body = client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=service_account))
        try:
            core.create_namespaced_service_account(namespace, body)
        except ApiException as err:
            if err.status != 409:
                raise
        request = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=expiration_seconds)
        )
        response = core.create_namespaced_service_account_token(service_account, namespace, request)
        token = response.status.token if response.status else None
        if not token:
            raise RuntimeError(f"TokenRequest for {namespace}/{service_account} returned no token")
        return str(token)

    def api_client_for_token(self, token: str) -> ApiClient:
        """A new client (caller closes it) authenticating with `token`."""
        return api_client_for(self.kubeconfig_for_token(token))

    def kubeconfig_for_token(self, token: str) -> Path:
        """A kubeconfig for the same cluster (server, CA) that authenticates with `token`."""
        path = self._tmp / f"token-{uuid.uuid4().hex[:8]}.kubeconfig"
        path.write_text(_token_kubeconfig(_current_cluster(self.kubeconfig), token))
        path.chmod(0o600)
        return path

    def close(self) -> None:
        if self._api_client is not None:
            self._api_client.close()  # type: ignore[no-untyped-call]
        shutil.rmtree(self._tmp, ignore_errors=True)


def api_client_for(kubeconfig: Path) -> ApiClient:
    """A kubernetes ApiClient configured from the given kubeconfig file.

    Tests use it with `kubeconfig_for_token` to act as a service account.
    """
    from kubernetes import config

    api_client: ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(kubeconfig)
    )
    return api_client


def _current_cluster(kubeconfig: Path) -> dict[str, Any]:
    """The `cluster` stanza (server, CA) of the kubeconfig's current context."""
    import yaml  # a dependency of the kubernetes client

    config: dict[str, Any] = yaml.safe_load(kubeconfig.read_text())
    contexts = {c["name"]: c["context"] for c in config.get("contexts", [])}
    clusters = {c["name"]: c["cluster"] for c in config.get("clusters", [])}
    cluster: dict[str, Any] = dict(clusters[contexts[config["current-context"]]["cluster"]])
    ca_path = cluster.get("certificate-authority")
    if ca_path and not Path(ca_path).is_absolute():  # relative to the original file
        cluster["certificate-authority"] = str(kubeconfig.parent / ca_path)
    return cluster


def _token_kubeconfig(cluster: dict[str, Any], token: str) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "cluster", "cluster": cluster}],
            "users": [{"name": "token", "user": {"token": token}}],
            "contexts": [{"name": "token", "context": {"cluster": "cluster", "user": "token"}}],
            "current-context": "token",
        }
    )


def _start_testenv(write: Callable[[str], None]) -> tuple[K8s, _Stoppable]:
    starter = load_starter()
    plane = starter.start(log=write)
    kubectl = [str(plane.binary), "kubectl"]
    return K8s(kubeconfig=plane.kubeconfig, kubectl_binary=kubectl), plane


def _existing_kubectl() -> list[str]:
    """kubectl for non-testenv modes: one on PATH, else our own binary."""
    on_path = shutil.which("kubectl")
    if on_path:
        return [on_path]
    return [str(load_starter().build()), "kubectl"]


def _use_existing() -> tuple[K8s, _Stoppable | None]:
    from kubernetes.config import kube_config

    path = Path(
        os.path.expanduser(os.environ.get("KUBECONFIG", kube_config.KUBE_CONFIG_DEFAULT_LOCATION))
    )
    path = Path(str(path).split(os.pathsep)[0])
    if not path.exists():
        raise RuntimeError(f"--k8s=existing but kubeconfig {path} does not exist")
    return K8s(kubeconfig=path, kubectl_binary=_existing_kubectl()), None


def _start_kind() -> tuple[K8s, _Stoppable]:
    from pytest_kind import KindCluster  # optional dependency, only for --k8s=kind

    cluster = KindCluster(KIND_CLUSTER_NAME)
    cluster.create()
    kubectl = [str(cluster.kubectl_path)]
    return K8s(kubeconfig=Path(cluster.kubeconfig_path), kubectl_binary=kubectl), _KindStopper(
        cluster
    )


@dataclass
class _KindStopper:
    cluster: Any

    def stop(self) -> None:
        self.cluster.delete()


def _terminal_writer(config: pytest.Config) -> Callable[[str], None]:
    """Progress lines (build/start timing) shown live, past output capturing."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capman = config.pluginmanager.get_plugin("capturemanager")

    def write(message: str) -> None:
        disabled = capman.global_and_fixture_disabled() if capman else contextlib.nullcontext()
        with disabled:
            if reporter is not None:
                reporter.write_line(f"[testenv] {message}")
            else:
                print(f"[testenv] {message}", file=sys.stderr)

    return write


def _connect(mode: str, config: pytest.Config) -> tuple[K8s, _Stoppable | None]:
    if mode == "testenv":
        return _start_testenv(_terminal_writer(config))
    if mode == "existing":
        return _use_existing()
    return _start_kind()


@pytest.fixture(scope="session")
def k8s(request: pytest.FixtureRequest) -> Iterator[K8s]:
    """A Kubernetes API server for the whole session (started on first use)."""
    mode: str = request.config.getoption("--k8s")
    try:
        handle, stopper = _connect(mode, request.config)
    except Exception as err:
        message = f"Kubernetes control plane ({mode}) unavailable: {type(err).__name__}: {err}"
        if in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    try:
        yield handle
    finally:
        handle.close()
        if stopper is not None:
            stopper.stop()


@pytest.fixture
def namespace(k8s: K8s, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards without waiting."""
    from support.namespaces import temporary_namespace

    prefix = request.node.name.lower().replace("_", "-")[:40].strip("-")
    name = f"t-{prefix}-{uuid.uuid4().hex[:6]}".replace("[", "-").replace("]", "")
    name = "".join(c if c.isalnum() or c == "-" else "-" for c in name)[:63].strip("-")
    with temporary_namespace(k8s.api_client, name):
        yield name
