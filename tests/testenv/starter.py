"""Start and stop a throwaway Kubernetes control plane for integration tests.

Why this exists: the project's machines have no Docker and cannot download
release binaries, so `kind` and envtest's downloaded assets are out. Instead we
compile the upstream components (see main.go in this directory) into one
multi-call binary, cache it outside the repo keyed on go.sum, and run etcd,
kube-apiserver and kube-controller-manager from it as separate processes on
loopback ports.

Used two ways:

* CLI, from `make testenv` / `make testenv-stop` / `make testenv-build`::

      python tests/testenv/starter.py start|stop|build|status

  `start` leaves the processes running in the background and prints the
  kubeconfig path; `stop` ends them by PID.

* Library, from the session-scoped `k8s` pytest fixture (tests/conftest.py):
  `start()` returns a `ControlPlane`; `ControlPlane.stop()` ends what it
  started. If a healthy control plane started by `make testenv` is already
  running, `start()` reuses it and `stop()` leaves it alone.

Only the standard library is needed for `build`, `stop` and `status`;
`start` also needs the `cryptography` package (for the CA and keys).
"""

from __future__ import annotations

import argparse
import atexit
import base64
import contextlib
import csv
import ctypes
import datetime
import hashlib
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TESTS_DIR = Path(__file__).resolve().parents[1]
if str(TESTS_DIR) not in sys.path:  # run as a script: find support.scripts beside us (appended,
    sys.path.append(str(TESTS_DIR))  # so that nothing in tests/ can shadow the standard library)
from support.scripts import cache_dir, file_lock  # noqa: E402

TESTENV_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTENV_DIR.parents[1]
STATE_DIR = REPO_ROOT / ".testenv"

# Components in start order; stop goes in reverse.
ETCD = "etcd"
APISERVER = "kube-apiserver"
CONTROLLER_MANAGER = "kube-controller-manager"
COMPONENTS = (ETCD, APISERVER, CONTROLLER_MANAGER)

# Only what the tests need: namespace deletion (namespace + garbage
# collector), service accounts and their tokens, aggregated cluster roles.
CONTROLLERS = (
    "namespace-controller",
    "garbage-collector-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "clusterrole-aggregation-controller",
)

# With a node (tests/node/node.py), the control plane also runs what Deployments, Services and
# a kubelet need: Pods stay Pending on the not-ready taint without the node-lifecycle controller,
# and Pods get their API server CA from the root-ca publisher.
NODE_CONTROLLERS = (
    "node-lifecycle-controller",
    "deployment-controller",
    "replicaset-controller",
    "endpointslice-controller",
    "pod-garbage-collector-controller",
    "root-ca-certificate-publisher-controller",
)

SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
ADMIN_USER = "testenv-admin"

Log = Callable[[str], None]


class TestenvError(RuntimeError):
    """The control plane could not be built or started."""


def _print(message: str) -> None:
    print(f"[testenv] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Building (or reusing) the multi-call binary
# --------------------------------------------------------------------------


def cache_root() -> Path:
    """~/.cache/zoey-provider-router/testenv (respecting XDG_CACHE_HOME)."""
    return cache_dir("testenv")


def go_sum_digest() -> str:
    return hashlib.sha256((TESTENV_DIR / "go.sum").read_bytes()).hexdigest()


def binary_path() -> Path:
    """Where the binary for the current go.sum lives (it may not exist yet)."""
    return cache_root() / go_sum_digest() / "testenv"


def find_go() -> str:
    found = shutil.which("go") or "/usr/local/go/bin/go"
    if not Path(found).exists():
        raise TestenvError("Go toolchain not found (need go >= 1.26 on PATH or in /usr/local/go)")
    return found


def go_env() -> dict[str, str]:
    """Environment for `go build`: static, no toolchain download, no go.mod edits."""
    env = dict(os.environ)
    env.update(CGO_ENABLED="0", GOTOOLCHAIN="local", GOFLAGS="-mod=readonly", GOWORK="off")
    return env


def build(force: bool = False, log: Log = _print) -> Path:
    """Return the cached binary, compiling it first if go.sum has changed."""
    target = binary_path()
    with file_lock(target.parent / ".lock"):
        if target.exists() and not force:
            log(f"reusing binary {target}")
            return target
        _compile(target, log)
    return target


def kubernetes_version() -> str:
    """The k8s.io/kubernetes version go.mod requires, e.g. "v1.36.3"."""
    for line in (TESTENV_DIR / "go.mod").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "k8s.io/kubernetes" and parts[1].startswith("v1."):
            return parts[1]
    raise TestenvError("k8s.io/kubernetes not found in tests/testenv/go.mod")


def version_ldflags(version: str) -> list[str]:
    """-X flags so /version and `kubectl version` report the real release.

    Upstream sets these in hack/lib/version.sh; a plain `go build` of the
    module would report v0.0.0-master.
    """
    major, minor = version.lstrip("v").split(".")[:2]
    flags = []
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        values = {
            "gitVersion": version,
            "gitMajor": major,
            "gitMinor": minor,
            "gitTreeState": "clean",
        }
        flags += [f"-X {pkg}.{key}={value}" for key, value in values.items()]
    return flags


def _dependency_count() -> int:
    """How many packages the binary is built from (0 if `go list` fails): the progress total."""
    result = subprocess.run(
        [find_go(), "list", "-deps", "."],
        cwd=TESTENV_DIR, env=go_env(), capture_output=True, text=True, timeout=600, check=False,
    )
    return len(result.stdout.splitlines()) if result.returncode == 0 else 0


def _compile(target: Path, log: Log, progress_every: float = 20.0) -> None:
    """`go build -v`, reporting every `progress_every` seconds how many packages are compiled.

    -v names each package as it is compiled (cached ones are not named), so a cold build shows
    steady progress out of the whole dependency graph instead of minutes of silence.
    """
    tmp = target.with_name(f".testenv.{os.getpid()}.tmp")
    ldflags = " ".join(["-s", "-w", *version_ldflags(kubernetes_version())])
    cmd = [find_go(), "build", "-v", "-trimpath", f"-ldflags={ldflags}", "-o", str(tmp), "."]
    total = _dependency_count()
    log(f"building {target} from {total or 'many'} packages (a cold build takes many minutes) ...")
    started = time.monotonic()
    proc = subprocess.Popen(
        cmd, cwd=TESTENV_DIR, env=go_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )
    assert proc.stdout is not None
    output: list[str] = []
    compiled = 0
    last = started
    try:
        for line in proc.stdout:
            output.append(line.rstrip())
            if line and not line.startswith((" ", "\t", "#")) and " " not in line.strip():
                compiled += 1  # a package path on its own line
            now = time.monotonic()
            if now - last >= progress_every:
                last = now
                log(f"  compiled {compiled}/{total or '?'} packages ({now - started:.0f}s; "
                    f"the rest are cached or still to come): {line.strip()[:80]}")
        code = proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if code != 0:
        tmp.unlink(missing_ok=True)
        errors = [line for line in output if " " in line or line.startswith("#")]
        raise TestenvError(f"go build failed ({code}):\n" + "\n".join(errors[-25:]))
    os.replace(tmp, target)
    log(f"built in {time.monotonic() - started:.1f}s ({compiled} packages compiled, "
        f"{max(total - compiled, 0)} cached)")


# --------------------------------------------------------------------------
# Certificates, keys, tokens, kubeconfigs
# --------------------------------------------------------------------------


def free_port() -> int:
    """A loopback port that is free right now (small race window, fine for tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Pki:
    """Paths of the PEM files the components need."""

    ca_cert: Path
    serving_cert: Path
    serving_key: Path
    sa_key: Path
    sa_pub: Path


def _write_private(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)


def make_pki(directory: Path, extra_ips: tuple[str, ...] = ()) -> Pki:
    """A CA, an apiserver serving cert signed by it, and a service-account key.

    extra_ips: more IP SANs for the serving cert (a node's address, for Pods).
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    pem = serialization.Encoding.PEM
    pkcs8 = serialization.PrivateFormat.PKCS8
    nocrypt = serialization.NoEncryption()

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "testenv-ca")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )

    serving_key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [
        x509.DNSName(name)
        for name in ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc")
    ]
    ips = ("127.0.0.1", "10.0.0.1", *extra_ips)
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    serving_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(serving_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    pki = Pki(
        ca_cert=directory / "ca.crt",
        serving_cert=directory / "apiserver.crt",
        serving_key=directory / "apiserver.key",
        sa_key=directory / "sa.key",
        sa_pub=directory / "sa.pub",
    )
    pki.ca_cert.write_bytes(ca_cert.public_bytes(pem))
    pki.serving_cert.write_bytes(serving_cert.public_bytes(pem))
    _write_private(pki.serving_key, serving_key.private_bytes(pem, pkcs8, nocrypt))
    _write_private(pki.sa_key, sa_key.private_bytes(pem, pkcs8, nocrypt))
    pki.sa_pub.write_bytes(
        sa_key.public_key().public_bytes(pem, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return pki


def write_token_file(path: Path, token: str) -> None:
    """kube-apiserver --token-auth-file: token,user,uid,"group1,group2"."""
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerow([token, ADMIN_USER, ADMIN_USER, "system:masters"])
    path.chmod(0o600)


def kubeconfig_text(server: str, ca_pem: bytes, token: str, user: str = ADMIN_USER) -> str:
    """A one-context kubeconfig with the CA embedded and bearer-token auth.

    JSON is valid YAML, so no YAML library is needed.
    """
    config: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "testenv",
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                },
            }
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "testenv", "context": {"cluster": "testenv", "user": user}}],
        "current-context": "testenv",
    }
    return json.dumps(config, indent=2) + "\n"


def write_kubeconfig(
    path: Path, server: str, ca_pem: bytes, token: str, user: str = ADMIN_USER
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_private(path, kubeconfig_text(server, ca_pem, token, user).encode())
    return path


# --------------------------------------------------------------------------
# Process handling
# --------------------------------------------------------------------------


def _pdeathsig_hook() -> Callable[[], None] | None:
    """A child-side hook that makes the child get SIGTERM when we die (Linux).

    A safety net for `kill -9` of pytest, where neither the fixture finalizer
    nor atexit can run. libc is resolved here, in the parent, so the hook does
    nothing in the forked child but one system call.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def hook() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)

    return hook


def spawn(binary: Path, name: str, args: list[str], log_path: Path, detach: bool) -> int:
    """Start `binary name args...` with output to log_path; return its PID.

    detach=True (CLI) lets the process outlive us; otherwise it is tied to
    this process's lifetime.
    """
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [str(binary), name, *args],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=None if detach else _pdeathsig_hook(),  # noqa: PLW1509 (one syscall)
        )
    return proc.pid


def is_ours(pid: int, binary: str, name: str) -> bool:
    """True if pid is alive and runs `binary name` (guards against PID reuse)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.exists():
        return True  # no /proc (not Linux): trust the state file
    try:
        argv = cmdline.read_bytes().split(b"\0")
    except OSError:
        return False
    return len(argv) >= 2 and argv[0].decode() == binary and argv[1].decode() == name


def _reap(pid: int) -> None:
    """Collect our own child's exit status so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _gone(pid: int) -> bool:
    """True once pid has exited (a zombie awaiting its parent counts as gone)."""
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state == "Z"


def terminate(pid: int, grace: float = 10.0) -> None:
    """SIGTERM, wait up to `grace` seconds, then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if _gone(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _reap(pid)


def tail(path: Path, lines: int = 60) -> str:
    if not path.exists():
        return f"(no {path.name})"
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join(text)


def dump_logs(state_dir: Path, log: Log = _print) -> None:
    for name in COMPONENTS:
        path = state_dir / f"{name}.log"
        log(f"----- last lines of {path} -----\n{tail(path)}")


# --------------------------------------------------------------------------
# The control plane
# --------------------------------------------------------------------------


@dataclass
class ControlPlane:
    """A running control plane; `owned` is False when reusing one from `make testenv`."""

    state_dir: Path
    binary: Path
    server: str
    token: str
    kubeconfig: Path
    ca_file: Path
    pids: dict[str, int]
    owned: bool = True
    _stopped: bool = field(default=False, repr=False)

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    def to_json(self) -> dict[str, Any]:
        return {
            "binary": str(self.binary),
            "server": self.server,
            "token": self.token,
            "kubeconfig": str(self.kubeconfig),
            "ca_file": str(self.ca_file),
            "pids": self.pids,
        }

    def save(self) -> None:
        self.state_file.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        self.state_file.chmod(0o600)

    def alive(self) -> bool:
        return all(is_ours(pid, str(self.binary), name) for name, pid in self.pids.items())

    def stop(self) -> None:
        """Stop the processes this object started (no-op for reused ones)."""
        if self._stopped or not self.owned:
            return
        self._stopped = True
        stop_pids(self.binary, self.pids)
        self.state_file.unlink(missing_ok=True)


def load_state(state_dir: Path) -> ControlPlane | None:
    path = state_dir / "state.json"
    try:
        data = json.loads(path.read_text())
        return ControlPlane(
            state_dir=state_dir,
            binary=Path(data["binary"]),
            server=data["server"],
            token=data["token"],
            kubeconfig=Path(data["kubeconfig"]),
            ca_file=Path(data["ca_file"]),
            pids={str(k): int(v) for k, v in data["pids"].items()},
            owned=False,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def stop_pids(binary: Path, pids: dict[str, int]) -> None:
    for name in reversed(COMPONENTS):
        pid = pids.get(name)
        if pid is not None and is_ours(pid, str(binary), name):
            terminate(pid)


def _ssl_context(ca_file: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file))


def probe(server: str, ca_file: Path, token: str, path: str = "/readyz") -> tuple[bool, str]:
    """GET server+path with the admin token; (ok, body or error)."""
    request = urllib.request.Request(server + path, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=5, context=_ssl_context(ca_file)) as response:
            return response.status == 200, response.read().decode(errors="replace")
    except urllib.error.HTTPError as err:
        return False, err.read().decode(errors="replace")
    except (OSError, ssl.SSLError) as err:
        return False, str(err)


def healthy(plane: ControlPlane) -> bool:
    return plane.alive() and probe(plane.server, plane.ca_file, plane.token)[0]


def etcd_args(data_dir: Path, client_port: int, peer_port: int) -> list[str]:
    return [
        f"--data-dir={data_dir}",
        f"--listen-client-url=http://127.0.0.1:{client_port}",
        f"--listen-peer-url=http://127.0.0.1:{peer_port}",
    ]


def apiserver_args(
    pki: Pki, token_file: Path, etcd_port: int, port: int, node_ip: str | None = None
) -> list[str]:
    """Flags for kube-apiserver; node_ip set: serve Pods there (see _node_apiserver_args)."""
    args = [
        f"--etcd-servers=http://127.0.0.1:{etcd_port}",
        f"--secure-port={port}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--tls-cert-file={pki.serving_cert}",
        f"--tls-private-key-file={pki.serving_key}",
        f"--client-ca-file={pki.ca_cert}",
        f"--token-auth-file={token_file}",
        "--authorization-mode=Node,RBAC",
        f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
        f"--service-account-key-file={pki.sa_pub}",
        f"--service-account-signing-key-file={pki.sa_key}",
        f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
        "--endpoint-reconciler-type=none",
        "--disable-admission-plugins=ServiceAccount",
        "--allow-privileged=true",
        "--profiling=false",
        f"--cert-dir={pki.ca_cert.parent}",
    ]
    return args if node_ip is None else _node_apiserver_args(args, node_ip)


def _node_apiserver_args(args: list[str], node_ip: str) -> list[str]:
    """The same API server, reachable by Pods on a node.

    It listens on the node's address (Pods cannot reach loopback), keeps the `kubernetes`
    Service's endpoints pointing there, mounts ServiceAccount tokens into Pods, and reaches the
    kubelet for logs and exec by its InternalIP.
    """
    replaced = {
        "--bind-address": node_ip,
        "--advertise-address": node_ip,
        "--endpoint-reconciler-type": "lease",
    }
    out = []
    for arg in args:
        key = arg.split("=", 1)[0]
        if key == "--disable-admission-plugins":
            continue
        out.append(f"{key}={replaced[key]}" if key in replaced else arg)
    return [*out, "--kubelet-preferred-address-types=InternalIP,Hostname"]


def controller_manager_args(pki: Pki, kubeconfig: Path, node: bool = False) -> list[str]:
    controllers = CONTROLLERS + NODE_CONTROLLERS if node else CONTROLLERS
    return [
        f"--kubeconfig={kubeconfig}",
        f"--controllers={','.join(controllers)}",
        "--leader-elect=false",
        "--secure-port=0",
        "--use-service-account-credentials=false",
        f"--service-account-private-key-file={pki.sa_key}",
        f"--root-ca-file={pki.ca_cert}",
        "--profiling=false",
    ]


def wait_ready(plane: ControlPlane, timeout: float) -> None:
    """Poll /readyz until it answers 200; fail fast if a process died."""
    deadline = time.monotonic() + timeout
    detail = ""
    while time.monotonic() < deadline:
        for name, pid in plane.pids.items():
            if _gone(pid) or not is_ours(pid, str(plane.binary), name):
                raise TestenvError(f"{name} (pid {pid}) exited during startup")
        ok, detail = probe(plane.server, plane.ca_file, plane.token)
        if ok:
            return
        time.sleep(0.25)
    raise TestenvError(f"/readyz not ok after {timeout:.0f}s: {detail[-2000:]}")


def _fresh_state_dir(state_dir: Path) -> None:
    """Remove what a previous run left (logs, data, certs) but keep the lock."""
    state_dir.mkdir(parents=True, exist_ok=True)
    for child in state_dir.iterdir():
        if child.name == "lock":
            continue
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()


def _launch(
    binary: Path, state_dir: Path, detach: bool, node_ip: str | None = None
) -> ControlPlane:
    """Write certs and config, start the three processes, record their PIDs."""
    _fresh_state_dir(state_dir)
    pki = make_pki(state_dir / "pki", () if node_ip is None else (node_ip,))
    token = secrets.token_urlsafe(32)
    token_file = state_dir / "pki" / "tokens.csv"
    write_token_file(token_file, token)
    etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
    server = f"https://{node_ip or '127.0.0.1'}:{api_port}"
    kubeconfig = write_kubeconfig(state_dir / "kubeconfig", server, pki.ca_cert.read_bytes(), token)
    plane = ControlPlane(state_dir, binary, server, token, kubeconfig, pki.ca_cert, {})

    def run(name: str, args: list[str]) -> None:
        plane.pids[name] = spawn(binary, name, args, state_dir / f"{name}.log", detach)
        plane.save()  # after every spawn, so `stop` can always find them

    run(ETCD, etcd_args(state_dir / "etcd-data", etcd_port, peer_port))
    run(APISERVER, apiserver_args(pki, token_file, etcd_port, api_port, node_ip))
    run(CONTROLLER_MANAGER, controller_manager_args(pki, kubeconfig, node=node_ip is not None))
    return plane


def start(
    state_dir: Path = STATE_DIR,
    detach: bool = False,
    timeout: float = 120.0,
    reuse: bool = True,
    log: Log = _print,
    node_ip: str | None = None,
) -> ControlPlane:
    """Build-or-reuse the binary and bring up a ready control plane.

    With reuse=True a healthy control plane already recorded in state_dir is
    returned with owned=False (its stop() does nothing). Otherwise leftovers
    are stopped and a new one is started; unless detach=True it is also
    stopped at interpreter exit. node_ip: serve Pods of a node with that
    address (tests/node/node.py), with the controllers a node needs.
    """
    binary = build(log=log)
    with file_lock(state_dir / "lock"):
        existing = load_state(state_dir)
        if reuse and existing is not None and healthy(existing):
            log(f"reusing running control plane at {existing.server}")
            return existing
        if existing is not None:
            stop_pids(existing.binary, existing.pids)
        return _start_new(binary, state_dir, detach, timeout, log, node_ip)


def _start_new(
    binary: Path, state_dir: Path, detach: bool, timeout: float, log: Log,
    node_ip: str | None = None,
) -> ControlPlane:
    started = time.monotonic()
    plane = _launch(binary, state_dir, detach, node_ip)
    if not detach:
        atexit.register(plane.stop)
    try:
        wait_ready(plane, timeout)
    except BaseException as err:
        dump_logs(state_dir, log)
        plane.stop()
        if isinstance(err, TestenvError):
            raise
        raise TestenvError(f"control plane failed to start: {err!r}") from err
    log(f"control plane ready at {plane.server} in {time.monotonic() - started:.1f}s")
    return plane


def stop(state_dir: Path = STATE_DIR, log: Log = _print) -> bool:
    """Stop whatever the state file in state_dir records; True if it found one."""
    with file_lock(state_dir / "lock"):
        plane = load_state(state_dir)
        if plane is None:
            log("no control plane recorded; nothing to stop")
            return False
        plane.owned = True
        plane.stop()
        log(f"stopped control plane (pids {sorted(plane.pids.values())})")
        return True


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------


def _cmd_start(args: argparse.Namespace) -> int:
    try:
        plane = start(detach=True, timeout=args.timeout)
    except TestenvError as err:
        _print(f"start failed: {err}")
        return 1
    print(f"kubeconfig: {plane.kubeconfig}")
    print(f"  export KUBECONFIG={plane.kubeconfig}")
    print(f"  {plane.binary} kubectl get ns   # our kubectl")
    return 0


def _cmd_stop(_: argparse.Namespace) -> int:
    stop()
    return 0


def _cmd_build(args: argparse.Namespace) -> int:
    try:
        print(build(force=args.force))
    except TestenvError as err:
        _print(str(err))
        return 1
    return 0


def _cmd_status(_: argparse.Namespace) -> int:
    plane = load_state(STATE_DIR)
    if plane is None or not healthy(plane):
        print("not running")
        return 1
    print(f"running at {plane.server}; kubeconfig: {plane.kubeconfig}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)
    start_parser = commands.add_parser("start", help="start in the background and leave running")
    start_parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait for /readyz"
    )
    start_parser.set_defaults(func=_cmd_start)
    commands.add_parser("stop", help="stop the recorded control plane").set_defaults(func=_cmd_stop)
    build_parser = commands.add_parser(
        "build", help="build (or reuse) the binary and print its path"
    )
    build_parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    build_parser.set_defaults(func=_cmd_build)
    commands.add_parser("status", help="exit 0 if a healthy control plane is running").set_defaults(
        func=_cmd_status
    )
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    return func(args)


if __name__ == "__main__":
    sys.exit(main())
