"""One real Kubernetes node on this machine: the test control plane, a scheduler, a kubelet.

Why: the operator breaks in practice where only a real node shows it (read-only root, non-root
user, PID 1 signals, in-cluster config, probes, Service selector), and kind needs Docker, which
these machines lack. So the node is built the way the control plane is (tests/testenv): the
upstream kubelet, kube-scheduler and kube-proxy as subcommands of the testenv binary, plus
Debian's containerd 1.6, runc and CNI plugins, all run as local processes.

What it sets up (and `stop` removes, in this order of teardown: Pods, kubelet, containers,
containerd, kube-proxy rules, control plane, iptables chains, netns, mounts, cgroups, bridge,
route, sysctls, the temp dir):

* a Linux bridge ``zpr0`` with the node address 10.213.0.1/24; Pods get addresses in that /24
  from CNI's bridge + host-local plugins, with routes only for the pod range and the Service
  range: no default route, so nothing a Pod sends can leave the machine;
* kubelet gets an empty resolv.conf (no upstream DNS is forwarded to), the cgroupfs driver, and
  ``failCgroupV1: false`` (these machines have hybrid cgroups);
* containerd with ``restrict_oom_score_adj`` (the sandbox lacks CAP_SYS_RESOURCE) and a pause
  image built here (there is no registry);
* kube-proxy in iptables mode, leaving conntrack sysctls alone;
* the API server listening on the node address, so Pods reach it through the ``kubernetes``
  Service.

All state lives in one temp dir; a record of everything to undo is kept in RECORD (machine-wide,
since the bridge is too), so ``stop`` from any process, or the next ``start``, cleans up what a
killed run left. Needs root: without it `start` raises NodeUnavailable with one line.

CLI: ``python tests/node/node.py start|stop|status`` (``make node`` / ``make node-stop``).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

TESTS_DIR = Path(__file__).resolve().parents[1]
if str(TESTS_DIR) not in sys.path:  # run as a script: find support.scripts beside us (appended,
    sys.path.append(str(TESTS_DIR))  # so that nothing in tests/ can shadow the standard library)
from support.scripts import file_lock, load_script  # noqa: E402

NODE_DIR = Path(__file__).resolve().parent
REPO_ROOT = NODE_DIR.parents[1]
NODE_NAME = "zoey-node"
BRIDGE = os.environ.get("ZOEY_NODE_BRIDGE", "zpr0")
POD_CIDR = "10.213.0.0/24"
NODE_IP = "10.213.0.1"
RECORD = Path(os.environ.get("ZOEY_NODE_RECORD", "/run/zoey-provider-router/node.json"))
KUBECONFIG_COPY = REPO_ROOT / ".testenv" / "kubeconfig"
PAUSE_IMAGE = "localhost/zoey-pause:1"
# kubelet and kube-proxy write these; teardown puts back the values found before start.
SYSCTLS = (
    "net.ipv4.ip_forward",
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
    "net.ipv4.conf.all.route_localnet",
    "kernel.panic",
    "kernel.panic_on_oops",
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
)
SET_SYSCTLS = {"net.ipv4.ip_forward": "1", "net.bridge.bridge-nf-call-iptables": "1"}
CHAIN_PREFIXES = ("KUBE-", "CNI-")
TABLES = ("filter", "nat", "mangle")
DEPENDENCIES = ("containerd", "containerd-shim-runc-v2", "ctr", "runc", "iptables",
                "iptables-save", "ip")
CNI_BIN = Path("/usr/lib/cni")

Log = Callable[[str], None]


class NodeUnavailable(RuntimeError):
    """The node cannot run on this machine (not root, packages missing); one line why."""


class NodeError(RuntimeError):
    """The node failed to start (everything it set up has been removed again)."""


def _print(message: str) -> None:
    print(f"[node] {message}", file=sys.stderr, flush=True)


def starter() -> ModuleType:
    """tests/testenv/starter.py (same module name as tests/conftest.py uses)."""
    return load_script("zoey_testenv_starter", REPO_ROOT / "tests" / "testenv" / "starter.py")


def image_module() -> ModuleType:
    return load_script("zoey_node_image", NODE_DIR / "image.py")


def check_prerequisites() -> None:
    """Raise NodeUnavailable (one line) unless root and every tool is installed."""
    if os.geteuid() != 0:
        raise NodeUnavailable(f"a real node needs root (running as uid {os.geteuid()})")
    missing = [tool for tool in DEPENDENCIES if shutil.which(tool) is None]
    plugins = ("bridge", "host-local", "loopback")
    missing += [f"cni/{p}" for p in plugins if not (CNI_BIN / p).exists()]
    if missing:
        raise NodeUnavailable(f"missing {', '.join(missing)}: run `make node-deps`")


# -- small system helpers ---------------------------------------------------------------------


def sh(*cmd: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise NodeError(f"{' '.join(cmd)}: {(result.stderr or result.stdout).strip()[-800:]}")
    return result


def read_sysctl(name: str) -> str | None:
    try:
        return Path("/proc/sys", *name.split(".")).read_text().strip()
    except OSError:
        return None


def write_sysctl(name: str, value: str) -> None:
    Path("/proc/sys", *name.split(".")).write_text(value + "\n")


def iptables_chains() -> dict[str, list[str]]:
    """Chains with our prefixes per '<cmd> <table>' (to remove only those we added)."""
    found: dict[str, list[str]] = {}
    for cmd in ("iptables", "ip6tables"):
        if shutil.which(cmd) is None:
            continue
        for table in TABLES:
            result = sh(f"{cmd}-save", "-t", table, check=False)
            chains = [line[1:].split()[0] for line in result.stdout.splitlines()
                      if line.startswith(":") and line[1:].startswith(CHAIN_PREFIXES)]
            found[f"{cmd} {table}"] = chains
    return found


def cni_netns() -> list[str]:
    directory = Path("/run/netns")
    return sorted(p.name for p in directory.glob("cni-*")) if directory.is_dir() else []


def cgroup_dirs(name: str = "kubepods") -> list[str]:
    """Every cgroup hierarchy's top-level dir of that name (kubelet's cgroupfs pod root)."""
    root = Path("/sys/fs/cgroup")
    out = [str(p) for p in root.glob(f"*/{name}*") if p.is_dir()]
    out += [str(p) for p in root.glob(f"{name}*") if p.is_dir()]
    return sorted(out)


def mounts_under(prefix: str) -> list[str]:
    points = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix.rstrip("/") + "/"):
                points.append(point)
    return points


def free_port() -> int:
    port: int = starter().free_port()
    return port


# -- the record of what to undo ---------------------------------------------------------------


@dataclass
class Node:
    """A running node; `owned` is False when reusing one that `make node` left running."""

    record: dict[str, Any]
    owned: bool = True

    @property
    def kubeconfig(self) -> Path:
        return Path(self.record["kubeconfig"])

    @property
    def binary(self) -> Path:
        return Path(self.record["binary"])

    @property
    def server(self) -> str:
        return str(self.record["server"])

    @property
    def dir(self) -> Path:
        return Path(self.record["dir"])

    def kubectl(self, *args: str, timeout: float = 60,
                stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run our kubectl against the node's cluster; never raises on a non-zero exit."""
        cmd = [str(self.binary), "kubectl", f"--kubeconfig={self.kubeconfig}", *args]
        return subprocess.run(cmd, input=stdin, capture_output=True, text=True,
                              timeout=timeout, check=False)

    def stop(self, log: Log = _print) -> None:
        """Tear down a node this process started (once; a reused one is left running)."""
        if self.owned and not self.record.get("stopped"):
            self.record["stopped"] = True
            teardown(self.record, log)


def save(record: dict[str, Any]) -> None:
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    tmp = RECORD.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.chmod(0o600)
    os.replace(tmp, RECORD)


def load() -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(RECORD.read_text())
    except (OSError, ValueError):
        return None
    return data


def _alive(record: dict[str, Any]) -> bool:
    st = starter()
    for name, (binary, arg, pid) in record.get("procs", {}).items():
        del name
        if not st.is_ours(pid, binary, arg):
            return False
    return bool(record.get("ready"))


def healthy(record: dict[str, Any]) -> bool:
    if not _alive(record):
        return False
    ok, body = starter().probe(record["server"], Path(record["ca_file"]), record["token"],
                               f"/api/v1/nodes/{NODE_NAME}")
    return ok and _node_ready(body)


def _node_ready(body: str) -> bool:
    with contextlib.suppress(ValueError, KeyError, TypeError):
        conditions = json.loads(body)["status"]["conditions"]
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
    return False


# -- start ------------------------------------------------------------------------------------


@contextlib.contextmanager
def _lock() -> Iterator[None]:
    with file_lock(RECORD.parent / "node.lock"):
        yield


def start(detach: bool = False, log: Log = _print, timeout: float = 180) -> Node:
    """Bring up the node (or reuse a healthy one); on any failure remove all of it and raise."""
    check_prerequisites()
    st = starter()
    binary = st.build(log=log)
    archive = image_module().build()
    with _lock():
        existing = load()
        if existing is not None and healthy(existing):
            log(f"reusing the running node (API server {existing['server']})")
            return Node(existing, owned=False)
        if existing is not None:
            log("removing what a previous node left behind")
            teardown(existing, log)
        started = time.monotonic()
        record: dict[str, Any] = {
            "dir": tempfile.mkdtemp(prefix="zoey-node-"),
            "binary": str(binary),
            "owner": os.getpid(),
            "procs": {},
            "sysctls": {name: read_sysctl(name) for name in SYSCTLS},
            "chains_before": iptables_chains(),
            "netns_before": cni_netns(),
            "cgroups_before": cgroup_dirs(),
            "ready": False,
            "image_archive": str(archive),
        }
        save(record)
        try:
            _bring_up(record, binary, Path(archive), detach, log, timeout)
        except BaseException as err:
            log(f"start failed: {err}")
            _dump_logs(record, log)
            teardown(record, log)
            if isinstance(err, (NodeError, NodeUnavailable)):
                raise
            raise NodeError(f"node failed to start: {err!r}") from err
        record["ready"] = True
        save(record)
    node = Node(record)
    if not detach:
        import atexit

        atexit.register(node.stop)
    log(f"node {NODE_NAME} Ready at {NODE_IP} in {time.monotonic() - started:.1f}s "
        f"(state in {record['dir']})")
    return node


def _spawn(record: dict[str, Any], name: str, binary: str, arg: str, args: list[str],
           detach: bool) -> None:
    log_path = Path(record["dir"]) / f"{name}.log"
    pid = starter().spawn(Path(binary), arg, args, log_path, detach)
    record["procs"][name] = [binary, arg, pid]
    save(record)


def _bring_up(record: dict[str, Any], binary: Path, archive: Path, detach: bool, log: Log,
              timeout: float) -> None:
    root = Path(record["dir"])
    deadline = time.monotonic() + timeout
    _network(record, log)
    _containerd(record, root, detach, log)
    _import_images(record, archive, log)
    log("control plane (API server on the node address) ...")
    plane = starter().start(state_dir=root / "control-plane", detach=detach, reuse=False,
                            log=log, node_ip=NODE_IP)
    record.update(server=plane.server, token=plane.token, kubeconfig=str(plane.kubeconfig),
                  ca_file=str(plane.ca_file), plane_pids=plane.pids)
    save(record)
    kubeconfig = str(plane.kubeconfig)
    log("kube-scheduler, kube-proxy, kubelet ...")
    _spawn(record, "kube-scheduler", str(binary), "kube-scheduler",
           [f"--kubeconfig={kubeconfig}", "--leader-elect=false", "--secure-port=0",
            "--profiling=false"], detach)
    proxy_health = free_port()
    (root / "kube-proxy.yaml").write_text(_kube_proxy_config(kubeconfig, proxy_health))
    _spawn(record, "kube-proxy", str(binary), "kube-proxy",
           [f"--config={root / 'kube-proxy.yaml'}"], detach)
    # No nameserver: no DNS query leaves the machine. Not an empty file: containerd copies
    # the host's /etc/resolv.conf into a Pod whose DNS config is empty.
    (root / "resolv.conf").write_text("options ndots:1 timeout:1 attempts:1\n")
    (root / "kubelet.yaml").write_text(_kubelet_config(record))
    _spawn(record, "kubelet", str(binary), "kubelet",
           [f"--config={root / 'kubelet.yaml'}", f"--kubeconfig={kubeconfig}",
            f"--root-dir={root / 'kubelet'}", f"--hostname-override={NODE_NAME}",
            f"--node-ip={NODE_IP}", "--v=1"], detach)
    log(f"waiting for node {NODE_NAME} Ready, kube-proxy synced, the default ServiceAccount")
    _wait(record, "node Ready", deadline,
          lambda: _node_ready(_get(record, f"/api/v1/nodes/{NODE_NAME}")))
    _wait(record, "kube-proxy synced", deadline,
          lambda: _http_ok(f"http://127.0.0.1:{proxy_health}/healthz"))
    _wait(record, "ServiceAccount default/default", deadline,
          lambda: bool(_get(record, "/api/v1/namespaces/default/serviceaccounts/default")))


def _get(record: dict[str, Any], path: str) -> str:
    ok, body = starter().probe(record["server"], Path(record["ca_file"]), record["token"], path)
    return body if ok else ""


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _wait(record: dict[str, Any], what: str, deadline: float, check: Callable[[], bool]) -> None:
    st = starter()
    while time.monotonic() < deadline:
        for name, (_binary, _arg, pid) in record["procs"].items():
            if st._gone(pid):  # (not is_ours: its /proc cmdline can lag just after spawn)
                raise NodeError(f"{name} (pid {pid}) exited while waiting for {what}")
        if check():
            return
        time.sleep(0.5)
    raise NodeError(f"timed out waiting for {what}")


def _network(record: dict[str, Any], log: Log) -> None:
    log(f"network: bridge {BRIDGE} {NODE_IP}/24, pod range {POD_CIDR}, no default route")
    if Path(f"/sys/class/net/{BRIDGE}").exists():
        raise NodeError(f"bridge {BRIDGE} already exists (another node? `make node-stop`)")
    sh("ip", "link", "add", BRIDGE, "type", "bridge")
    record["bridge"] = BRIDGE
    save(record)
    sh("ip", "addr", "add", f"{NODE_IP}/24", "dev", BRIDGE)
    sh("ip", "link", "set", BRIDGE, "up")
    # Service ClusterIPs: kube-proxy DNATs them; this route keeps any it does not (a Service
    # without endpoints) on our bridge instead of the default route off the machine.
    service_range = starter().SERVICE_CLUSTER_IP_RANGE
    sh("ip", "route", "add", service_range, "dev", BRIDGE)
    record["route"] = service_range
    save(record)
    if not Path("/proc/sys/net/bridge").exists():
        raise NodeError("br_netfilter is not loaded (Pod to Service on one bridge needs it)")
    for name, value in SET_SYSCTLS.items():
        write_sysctl(name, value)


def _containerd(record: dict[str, Any], root: Path, detach: bool, log: Log) -> None:
    cni_conf = root / "cni" / "net.d"
    cni_conf.mkdir(parents=True)
    (cni_conf / "10-zoey.conflist").write_text(json.dumps(_cni_config(root), indent=2))
    config = root / "containerd.toml"
    socket_path = root / "containerd" / "containerd.sock"
    config.write_text(_containerd_config(root, socket_path, cni_conf))
    record["containerd_socket"] = str(socket_path)
    containerd = shutil.which("containerd")
    assert containerd is not None
    log("containerd ...")
    _spawn(record, "containerd", containerd, f"--config={config}", [], detach)
    _wait(record, "containerd", time.monotonic() + 30,
          lambda: socket_path.exists() and _ctr(record, "version", check=False).returncode == 0)


def _ctr(record: dict[str, Any], *args: str, timeout: float = 120,
         check: bool = True) -> subprocess.CompletedProcess[str]:
    return sh("ctr", "--address", record["containerd_socket"], "--namespace", "k8s.io", *args,
              timeout=timeout, check=check)


def _import_images(record: dict[str, Any], archive: Path, log: Log) -> None:
    root = Path(record["dir"])
    pause_tar = _pause_image(root)
    started = time.monotonic()
    _ctr(record, "images", "import", str(pause_tar))
    _ctr(record, "images", "import", str(archive), timeout=600)
    log(f"images imported in {time.monotonic() - started:.1f}s: {PAUSE_IMAGE}, "
        f"{image_module().IMAGE} ({archive.stat().st_size / 1e6:.0f} MB archive)")


def _pause_image(root: Path) -> Path:
    """An OCI archive holding the static pause binary built from tests/node/pause."""
    go = starter().find_go()
    binary = root / "pause"
    env = dict(os.environ, CGO_ENABLED="0", GOTOOLCHAIN="local", GOFLAGS="", GOWORK="off")
    result = subprocess.run([go, "build", "-trimpath", "-ldflags=-s -w", "-o", str(binary), "."],
                            cwd=NODE_DIR / "pause", env=env, capture_output=True, text=True,
                            timeout=300, check=False)
    if result.returncode != 0:
        raise NodeError(f"building the pause binary failed: {result.stderr[-800:]}")
    return write_oci_archive(root / "pause.tar", PAUSE_IMAGE, {"pause": binary.read_bytes()},
                             ["/pause"])


def write_oci_archive(path: Path, name: str, files: dict[str, bytes],
                      entrypoint: list[str]) -> Path:
    """A one-layer OCI image archive (for `ctr images import`) from in-memory files."""
    layer_buf = io.BytesIO()
    with tarfile.open(fileobj=layer_buf, mode="w") as layer:
        for file_name, data in files.items():
            info = tarfile.TarInfo(file_name)
            info.size, info.mode = len(data), 0o755
            layer.addfile(info, io.BytesIO(data))
    blobs: dict[str, bytes] = {}

    def blob(data: bytes) -> dict[str, Any]:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return {"digest": digest, "size": len(data)}

    layer_desc = blob(layer_buf.getvalue())
    config = {"architecture": "amd64", "os": "linux",
              "config": {"Entrypoint": entrypoint, "User": "65535:65535"},
              "rootfs": {"type": "layers", "diff_ids": [layer_desc["digest"]]}}
    config_desc = blob(json.dumps(config).encode())
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           **config_desc},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                            **layer_desc}]}
    manifest_desc = blob(json.dumps(manifest).encode())
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", **manifest_desc,
        "annotations": {"io.containerd.image.name": name,
                        "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1]}}]}
    with tarfile.open(path, "w") as archive:
        entries = {"oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode(),
                   "index.json": json.dumps(index).encode()}
        entries.update({f"blobs/sha256/{d.split(':')[1]}": data for d, data in blobs.items()})
        for entry, data in entries.items():
            info = tarfile.TarInfo(entry)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


# -- configuration files ----------------------------------------------------------------------


def _cni_config(root: Path) -> dict[str, Any]:
    service_range = starter().SERVICE_CLUSTER_IP_RANGE
    return {
        "cniVersion": "1.0.0",
        "name": "zoey-node",
        "plugins": [{
            "type": "bridge",
            "bridge": BRIDGE,
            "isGateway": True,
            "ipMasq": False,
            "hairpinMode": True,
            "ipam": {
                "type": "host-local",
                "dataDir": str(root / "cni" / "ipam"),
                "ranges": [[{"subnet": POD_CIDR, "gateway": NODE_IP}]],
                # Only our own ranges, never a default route (see the module docstring).
                "routes": [{"dst": service_range, "gw": NODE_IP}],
            },
        }],
    }


def _containerd_config(root: Path, socket_path: Path, cni_conf: Path) -> str:
    state = root / "containerd"
    return f"""version = 2
root = "{state / 'root'}"
state = "{state / 'state'}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper",
                    "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{socket_path}"

[ttrpc]
  address = "{socket_path}.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{state / 'opt'}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  # The pause container's oom_score_adj would need CAP_SYS_RESOURCE, which this machine lacks.
  restrict_oom_score_adj = true
  disable_apparmor = true
  enable_selinux = false

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "{shutil.which('runc')}"

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{cni_conf}"
    max_conf_num = 1
"""


def _kubelet_config(record: dict[str, Any]) -> str:
    root = Path(record["dir"])
    config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        # Hybrid cgroups here; upstream refuses cgroup v1 unless told otherwise.
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "oomScoreAdj": 0,
        "address": NODE_IP,
        "port": free_port(),
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": free_port(),
        "containerRuntimeEndpoint": f"unix://{record['containerd_socket']}",
        "resolvConf": str(root / "resolv.conf"),
        "podLogsDir": str(root / "pod-logs"),
        # Only reachable on the node bridge of this machine; the API server's logs/exec calls
        # come in without a client certificate.
        "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
        "authorization": {"mode": "AlwaysAllow"},
        "failSwapOn": False,
        # The images were imported, not pulled: image GC must never delete them.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%",
                         "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
        "maxPods": 40,
        "serializeImagePulls": False,
    }
    return json.dumps(config, indent=2) + "\n"


def _kube_proxy_config(kubeconfig: str, health_port: int) -> str:
    config = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": kubeconfig},
        "hostnameOverride": NODE_NAME,
        "bindAddress": NODE_IP,
        "healthzBindAddress": f"127.0.0.1:{health_port}",
        "metricsBindAddress": f"127.0.0.1:{free_port()}",
        "mode": "iptables",
        "clusterCIDR": POD_CIDR,
        "detectLocalMode": "ClusterCIDR",
        "nodePortAddresses": [f"{NODE_IP}/32"],
        # 0 = leave the machine's conntrack sysctls alone.
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s",
                      "tcpCloseWaitTimeout": "0s"},
        "iptables": {"localhostNodePorts": False, "masqueradeAll": False},
    }
    return json.dumps(config, indent=2) + "\n"


# -- teardown ---------------------------------------------------------------------------------


def _step(log: Log, what: str, action: Callable[[], None]) -> None:
    """One teardown step: a failure is logged and the next step still runs."""
    try:
        action()
    except Exception as err:  # teardown must go on
        log(f"teardown: {what}: {type(err).__name__}: {err}")


def _stop_proc(record: dict[str, Any], name: str, grace: float = 10) -> None:
    entry = record.get("procs", {}).get(name)
    if entry is None:
        return
    binary, arg, pid = entry
    st = starter()
    if st.is_ours(pid, binary, arg) or _runs_in(pid, record["dir"]):
        st.terminate(pid, grace)


def _runs_in(pid: int, directory: str) -> bool:
    """True if pid's command line names our state dir (all our processes' configs live there)."""
    try:
        return directory.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def teardown(record: dict[str, Any], log: Log = _print) -> None:
    """Remove everything `start` set up, in an order that leaves nothing behind."""
    started = time.monotonic()
    st = starter()
    plane_pids = record.get("plane_pids") or {}
    # 1. Controllers first (a ReplicaSet would recreate deleted Pods), then the Pods, while
    #    the kubelet still runs to stop their containers.
    for name in ("kube-controller-manager",):
        pid = plane_pids.get(name)
        if pid is not None and st.is_ours(pid, record["binary"], name):
            _step(log, name, lambda pid=pid: st.terminate(pid))
    _stop_proc(record, "kube-scheduler")
    if "kubeconfig" in record and "kubelet" in record.get("procs", {}):
        _step(log, "deleting Pods", lambda: _delete_pods(record))
    # 2. kubelet, then whatever containers are left, then containerd and its shims.
    _stop_proc(record, "kubelet")
    if "containerd_socket" in record:
        _step(log, "killing containers", lambda: _kill_tasks(record))
    _stop_proc(record, "containerd")
    _step(log, "containerd shims", lambda: _kill_shims(record))
    # 3. kube-proxy and its rules, the control plane.
    _stop_proc(record, "kube-proxy")
    if "kube-proxy" in record.get("procs", {}):
        _step(log, "kube-proxy --cleanup", lambda: sh(
            record["binary"], "kube-proxy", "--cleanup", timeout=60, check=False))
    _step(log, "control plane", lambda: st.stop_pids(Path(record["binary"]), plane_pids))
    # 4. What is left on the machine.
    _step(log, "iptables chains", lambda: _remove_chains(record.get("chains_before", {})))
    _step(log, "network namespaces", lambda: _remove_netns(record.get("netns_before", [])))
    _step(log, "mounts", lambda: _unmount(record["dir"]))
    _step(log, "cgroups", lambda: _remove_cgroups(record.get("cgroups_before", [])))
    _step(log, "container log links", lambda: _remove_log_links(record["dir"]))
    if record.get("route"):
        _step(log, "route", lambda: sh("ip", "route", "del", record["route"], "dev",
                                       record.get("bridge", BRIDGE), check=False) and None)
    if record.get("bridge"):
        _step(log, "bridge", lambda: sh("ip", "link", "del", record["bridge"], check=False)
              and None)
    _step(log, "sysctls", lambda: _restore_sysctls(record.get("sysctls", {})))
    if not mounts_under(record["dir"]):
        _step(log, "state dir", lambda: shutil.rmtree(record["dir"], ignore_errors=True))
    else:
        log(f"teardown: left {record['dir']} in place: still mounted {mounts_under(record['dir'])}")
    current = load()
    if current is not None and current.get("dir") == record["dir"]:
        RECORD.unlink(missing_ok=True)
    left = leftovers(record)
    if left:
        log(f"teardown left behind: {'; '.join(left)}")
    if KUBECONFIG_COPY.exists() and record.get("kubeconfig"):
        with contextlib.suppress(OSError):
            if KUBECONFIG_COPY.read_bytes() == Path(record["kubeconfig"]).read_bytes():
                KUBECONFIG_COPY.unlink()
    log(f"node torn down in {time.monotonic() - started:.1f}s")


def leftovers(record: dict[str, Any]) -> list[str]:
    """What a teardown of `record` should have removed but is still there (empty: clean)."""
    left = []
    if record.get("bridge") and Path(f"/sys/class/net/{record['bridge']}").exists():
        left.append(f"bridge {record['bridge']}")
    if record.get("route") and sh("ip", "route", "show", record["route"],
                                  check=False).stdout.strip():
        left.append(f"route {record['route']}")
    before = record.get("chains_before", {})
    for key, chains in iptables_chains().items():
        new = [c for c in chains if c not in before.get(key, [])]
        if new:
            left.append(f"{key} chains {new[:5]}")
    new_netns = [n for n in cni_netns() if n not in record.get("netns_before", [])]
    if new_netns:
        left.append(f"netns {new_netns}")
    new_cgroups = [c for c in cgroup_dirs() if c not in record.get("cgroups_before", [])]
    if new_cgroups:
        left.append(f"cgroups {new_cgroups[:3]}")
    changed = [n for n, v in record.get("sysctls", {}).items()
               if v is not None and read_sysctl(n) != v]
    if changed:
        left.append(f"sysctls {changed}")
    if Path(record["dir"]).exists():
        left.append(f"dir {record['dir']}")
    procs = [f"{name} {pid}" for name, (binary, arg, pid) in record.get("procs", {}).items()
             if starter().is_ours(pid, binary, arg) or _runs_in(pid, record["dir"])]
    if procs:
        left.append(f"processes {procs}")
    return left


def _delete_pods(record: dict[str, Any]) -> None:
    node = Node(record, owned=False)
    node.kubectl("delete", "pods", "--all", "--all-namespaces", "--grace-period=5",
                 "--wait=false", timeout=60)
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        listing = node.kubectl("get", "pods", "-A", "-o", "name", timeout=30)
        if listing.returncode != 0 or not listing.stdout.strip():
            return
        time.sleep(1)
    # Still there: the kubelet did not confirm in time; force, the containers die below.
    node.kubectl("delete", "pods", "--all", "--all-namespaces", "--force", "--grace-period=0",
                 timeout=60)


def _kill_tasks(record: dict[str, Any]) -> None:
    if not Path(record["containerd_socket"]).exists():
        return
    listing = _ctr(record, "tasks", "ls", "-q", check=False, timeout=30)
    for task in listing.stdout.split():
        _ctr(record, "tasks", "kill", "-s", "SIGKILL", task, check=False, timeout=30)
    for task in listing.stdout.split():
        for _ in range(20):
            if _ctr(record, "tasks", "delete", task, check=False, timeout=30).returncode == 0:
                break
            time.sleep(0.25)


def _kill_shims(record: dict[str, Any]) -> None:
    """The runc shims started for our containerd (they outlive it); by PID, after a match."""
    address = record.get("containerd_socket")
    if not address:
        return
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"containerd-shim-runc-v2") and address.encode() in argv:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(proc.name), signal.SIGKILL)


def _remove_chains(before: dict[str, list[str]]) -> None:
    for key, chains in iptables_chains().items():
        cmd, table = key.split()
        ours = [c for c in chains if c not in before.get(key, [])]
        if not ours:
            continue
        # Rules jumping to our chains (from built-in or other chains) go first.
        saved = sh(f"{cmd}-save", "-t", table, check=False).stdout.splitlines()
        for line in saved:
            parts = line.split()
            if len(parts) > 2 and parts[0] == "-A" and parts[1] not in ours and any(
                    f"-j {c}" in line or f"-g {c}" in line for c in ours):
                sh(cmd, "-t", table, "-D", *parts[1:], check=False)
        for chain in ours:
            sh(cmd, "-t", table, "-F", chain, check=False)
        for chain in ours:
            sh(cmd, "-t", table, "-X", chain, check=False)


def _remove_netns(before: list[str]) -> None:
    for name in cni_netns():
        if name not in before:
            sh("ip", "netns", "delete", name, check=False)


def _unmount(directory: str) -> None:
    for point in sorted(mounts_under(directory), key=len, reverse=True):
        sh("umount", "-l", point, check=False)


def _remove_cgroups(before: list[str]) -> None:
    for top in cgroup_dirs():
        if top in before:
            continue
        for path, _dirs, _files in sorted(os.walk(top), key=lambda e: len(e[0]), reverse=True):
            with contextlib.suppress(OSError):
                os.rmdir(path)


def _remove_log_links(directory: str) -> None:
    links = Path("/var/log/containers")
    if not links.is_dir():
        return
    for link in links.iterdir():
        with contextlib.suppress(OSError):
            if link.is_symlink() and os.readlink(link).startswith(directory):
                link.unlink()


def _restore_sysctls(values: dict[str, str | None]) -> None:
    for name, value in values.items():
        if value is not None and read_sysctl(name) != value:
            write_sysctl(name, value)


def _dump_logs(record: dict[str, Any], log: Log) -> None:
    root = Path(record["dir"])
    st = starter()
    for path in sorted(root.glob("*.log")) + sorted((root / "control-plane").glob("*.log")):
        log(f"----- last lines of {path.name} -----\n{st.tail(path, 25)}")


# -- CLI --------------------------------------------------------------------------------------


def _cmd_start(_: argparse.Namespace) -> int:
    try:
        node = start(detach=True)
    except NodeUnavailable as err:
        _print(str(err))
        return 1
    except Exception as err:  # one line; details were logged
        _print(f"start failed: {err}")
        return 1
    KUBECONFIG_COPY.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(node.kubeconfig, KUBECONFIG_COPY)
    KUBECONFIG_COPY.chmod(0o600)
    print(f"kubeconfig: {KUBECONFIG_COPY}")
    print(f"  export KUBECONFIG={KUBECONFIG_COPY}")
    print(f"  {node.binary} kubectl get nodes -o wide")
    return 0


def _cmd_preflight(_: argparse.Namespace) -> int:
    """Root or not, in one line, before `make node` builds anything."""
    if os.geteuid() != 0:
        _print(f"a real node needs root (running as uid {os.geteuid()}); not starting")
        return 1
    return 0


def _cmd_stop(_: argparse.Namespace) -> int:
    record = load()
    if record is None:
        _print("no node recorded; nothing to stop")
        return 0
    with _lock():
        teardown(record)
    return 0


def _cmd_status(_: argparse.Namespace) -> int:
    record = load()
    if record is None or not healthy(record):
        print("not running")
        return 1
    print(f"running: API server {record['server']}; kubeconfig {record['kubeconfig']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("start", help="start and leave running").set_defaults(func=_cmd_start)
    commands.add_parser("stop", help="stop and remove everything").set_defaults(func=_cmd_stop)
    commands.add_parser("preflight", help="exit 1 with one line unless root").set_defaults(
        func=_cmd_preflight)
    commands.add_parser("status", help="exit 0 if the node is Ready").set_defaults(
        func=_cmd_status)
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    return func(args)


if __name__ == "__main__":
    sys.exit(main())
