"""End to end on a real kubelet node: the image from the Dockerfile, the chart as it ships.

What only Pods show: the Deployment becomes Available under its real securityContext (uid,
read-only root, writable /tmp), the operator exits cleanly on SIGTERM as PID 1, the examples
are Accepted, a workload Pod routes over the ClusterIP Service and calls the chosen mock
provider at ``apiBase``, and the drills (delete the operator Pod, two replicas and kill the
leader, ``helm upgrade`` while routing, the NetworkPolicy on) keep or restore service. No
packet leaves the machine: Pods have no route off it and no upstream DNS.

The tests share one node and one release (tests/e2e/conftest.py) and run in file order, each
leaving the release as it found it or as the next one expects (noted where it changes).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from e2e._cluster import (
    AUDIENCE,
    CHART,
    DEPLOYMENT,
    MOCK_PORT,
    RELEASE,
    RELEASE_NAMESPACE,
    REPO,
    WORKLOAD_ACCOUNT,
    Cluster,
    condition,
    figure,
    node_module,
    run_workload,
    wait_for,
)

pytestmark = pytest.mark.node


def _exec(cluster: Cluster, pod: str, *cmd: str, namespace: str = RELEASE_NAMESPACE) -> Any:
    return cluster.try_kubectl("exec", pod, "-n", namespace, "-c", "operator", "--", *cmd)


def _operator_pod(cluster: Cluster) -> str:
    pods = wait_for("a Running operator pod", lambda: [
        p for p in cluster.operator_pods() if (p.get("status") or {}).get("phase") == "Running"
    ], 60)
    return str(pods[0]["metadata"]["name"])


def test_operator_runs_under_its_real_security_context(release: Cluster) -> None:
    pod = _operator_pod(release)
    uid = _exec(release, pod, "id", "-u")
    assert uid.returncode == 0, uid.stderr
    assert uid.stdout.strip() == "65532"
    root = _exec(release, pod, "sh", "-c", "touch /probe")
    assert root.returncode != 0, root.stdout
    assert "Read-only file system" in root.stderr, root.stderr
    tmp = _exec(release, pod, "sh", "-c", "touch /tmp/probe && rm /tmp/probe && echo writable")
    assert tmp.stdout.strip() == "writable", tmp.stderr
    token = _exec(release, pod, "sh", "-c",
                  "test -s /var/run/secrets/kubernetes.io/serviceaccount/token && echo mounted")
    assert token.stdout.strip() == "mounted", token.stderr
    spec = release.get("pod", pod, "-n", RELEASE_NAMESPACE)["spec"]["containers"][0]
    assert spec["securityContext"]["readOnlyRootFilesystem"] is True
    assert spec["imagePullPolicy"] == "Never"


def test_operator_exits_cleanly_on_sigterm_as_pid_1(release: Cluster) -> None:
    """PID 1 gets no default signal handlers: unless the process handles SIGTERM itself,
    the kubelet's stop waits the whole grace period and ends in SIGKILL (exit 137)."""
    pod = _operator_pod(release)
    before = release.get("pod", pod, "-n", RELEASE_NAMESPACE)
    restarts = before["status"]["containerStatuses"][0]["restartCount"]
    comm = _exec(release, pod, "cat", "/proc/1/cmdline")
    assert "provider-router" in comm.stdout, comm.stdout
    sent = time.time()
    _exec(release, pod, "sh", "-c", "kill -TERM 1")

    def terminated() -> dict[str, Any] | None:
        status = release.get("pod", pod, "-n", RELEASE_NAMESPACE)["status"]
        container = status["containerStatuses"][0]
        if container["restartCount"] > restarts:
            return dict(container["lastState"].get("terminated") or {})
        return None

    last = wait_for("the operator container to exit and restart", terminated, 60)
    assert last.get("exitCode") == 0, last
    figure("SIGTERM as PID 1 -> container exited", f"exit {last['exitCode']} within "
           f"{time.time() - sent:.1f}s of the signal (grace period 30s)")
    release.wait_available(1, timeout=120)


def test_no_packet_leaves_the_machine(release: Cluster) -> None:
    """Pods have routes only for the node's own ranges and no nameserver. A UDP connect()
    only looks the route up (it sends nothing), so it proves unreachability without trying."""
    probe = (
        "import json, socket\n"
        "routes = [l.split() for l in open('/proc/net/route').read().splitlines()[1:]]\n"
        "dests = [(socket.inet_ntoa(bytes.fromhex(r[1])[::-1]), "
        "socket.inet_ntoa(bytes.fromhex(r[7])[::-1])) for r in routes]\n"
        "out = {'routes': dests, 'resolv': open('/etc/resolv.conf').read(), 'connect': {}}\n"
        "for ip in ('192.0.2.1', '8.8.8.8', '1.1.1.1'):\n"
        "    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "    try:\n"
        "        s.connect((ip, 53)); out['connect'][ip] = 'routable'\n"
        "    except OSError as e:\n"
        "        out['connect'][ip] = e.strerror\n"
        "    s.close()\n"
        "print(json.dumps(out))\n"
    )
    pod = _operator_pod(release)
    result = release.try_kubectl("exec", pod, "-n", RELEASE_NAMESPACE, "-c", "operator", "--",
                                 "python", "-c", probe)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    node = node_module()
    assert ("0.0.0.0", "255.255.255.255") not in seen["routes"]
    assert all(dest != "0.0.0.0" for dest, _mask in seen["routes"]), seen["routes"]
    assert "nameserver" not in seen["resolv"], seen["resolv"]
    assert set(seen["connect"].values()) == {"Network is unreachable"}, seen["connect"]
    assert any(dest == node.POD_CIDR.split("/")[0] for dest, _ in seen["routes"])


def test_examples_are_accepted(release: Cluster) -> None:
    """The README's examples, applied as they are, are Accepted by the operator in the Pod
    (their providers are off-machine, so they are never Healthy here: nothing leaves)."""
    ns = "e2e-examples"
    release.kubectl("create", "namespace", ns)
    try:
        release.kubectl("apply", "-n", ns, "-f", str(REPO / "examples" / "kubernetes"))
        listing = release.get("llmproviders,routingpolicies", "-n", ns)
        names = [(i["kind"], i["metadata"]["name"]) for i in listing["items"]]
        assert names, listing

        def accepted() -> list[Any] | None:
            items = release.get("llmproviders,routingpolicies", "-n", ns)["items"]
            states = [condition_of(i, "Accepted") for i in items]
            return states if all(s == "True" for s in states) else None

        wait_for(f"Accepted=True on {names}", accepted, 90)
    finally:
        release.try_kubectl("delete", "namespace", ns, "--wait=false")


def condition_of(obj: dict[str, Any], kind: str) -> str | None:
    for c in (obj.get("status") or {}).get("conditions", []):
        if c["type"] == kind:
            return str(c["status"])
    return None


def test_workload_routes_over_the_service_and_calls_the_provider(
        release: Cluster, client_namespace: str) -> None:
    run = run_workload(release, client_namespace, duration=0, timeout=120)
    ok = [line for line in run.attempts if line["ok"]]
    assert ok, run.lines
    first = ok[0]
    assert first["provider"] == "mock"
    mock_url = release.service_url("mock-provider", client_namespace)
    assert first["apiBase"].rstrip("/") == mock_url + "/v1"
    assert "Hello from mock" in first["content"]
    assert first["reported"] is True, "POST /v1/report over the Service failed"
    figure("workload first route (Pod created -> route + provider call done)",
           f"{first['t'] - run.created:.1f}s")


def test_workload_calls_through_the_proxy_holding_no_provider_key(
        release: Cluster, keyed_namespace: tuple[str, str]) -> None:
    """Proxy mode as the chart ships it (on, callers checked by TokenReview and RBAC): a
    workload with only its ServiceAccount token gets a completion from a provider that
    demands a key, which the router took from the provider's Secret, through the policy's
    path and through the unprefixed one (its namespace's default policy)."""
    ns, key = keyed_namespace
    run = run_workload(release, ns, duration=0, timeout=120, policy="keyed", mode="proxy")
    ok = [line for line in run.attempts if line["ok"]]
    assert ok, run.lines
    first = ok[0]
    assert first["provider"] == f"{ns}/mock"
    assert first["policy"] == f"{ns}/keyed"
    # The unprefixed path: the default policy of the caller's own namespace.
    unprefixed = first["unprefixed"]
    assert (unprefixed["provider"], unprefixed["policy"]) == (f"{ns}/mock", f"{ns}/keyed")
    assert "Hello from mock" in str(first["content"])
    assert key not in json.dumps(run.lines), "the provider's key reached the workload"
    logs = release.kubectl("logs", "-n", RELEASE_NAMESPACE, "-l",
                           f"app.kubernetes.io/instance={RELEASE}", "--tail=-1")
    assert key not in logs, "the provider's key is in the router's log"
    figure("workload first proxied call (Pod created -> completion through the router)",
           f"{first['t'] - run.created:.1f}s")


def test_drill_delete_the_operator_pod(release: Cluster, client_namespace: str) -> None:
    def drill() -> None:
        time.sleep(3)
        pod = _operator_pod(release)
        release.kubectl("delete", "pod", pod, "-n", RELEASE_NAMESPACE, "--wait=false")
        wait_for("the replacement operator pod", lambda: [
            p for p in release.operator_pods() if p["metadata"]["name"] != pod], 60)
        release.wait_available(1, timeout=120)

    run = run_workload(release, client_namespace, duration=45, during=drill)
    ok = [line for line in run.attempts if line["ok"]]
    assert ok, run.lines
    assert ok[-1]["t"] > run.attempts[-1]["t"] - 5, "the replacement did not serve"
    figure("drill: delete the operator pod -> route downtime",
           f"{run.downtime():.1f}s ({len(run.failures)}/{len(run.attempts)} attempts failed)")


def _lease_holder(cluster: Cluster) -> str:
    lease = cluster.get("lease", f"{DEPLOYMENT}-leader", "-n", RELEASE_NAMESPACE)
    return str(lease["spec"].get("holderIdentity") or "")


def _mock_admin(cluster: Cluster, namespace: str, action: str) -> None:
    """POST /admin/fail or /admin/recover on the mock provider Pod (on the node's bridge)."""
    pod_ip = cluster.get("pod", "mock-provider", "-n", namespace)["status"]["podIP"]
    request = urllib.request.Request(f"http://{pod_ip}:{MOCK_PORT}/admin/{action}", data=b"",
                                     method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def _helm_upgrade(cluster: Cluster, *sets: str) -> None:
    args = [item for value in sets for item in ("--set", value)]
    cluster.helm_run("upgrade", RELEASE, str(CHART), "--namespace", RELEASE_NAMESPACE,
                     "--reuse-values", *args)


def test_drill_two_replicas_kill_the_leader(release: Cluster, client_namespace: str) -> None:
    """Leaves the release at replicas=2 for the next drills."""
    _helm_upgrade(release, "replicas=2")
    release.wait_available(2, timeout=180)
    names = {p["metadata"]["name"] for p in release.operator_pods()}
    holder = wait_for("a leader among the two pods", lambda: next(
        (n for n in names if _lease_holder(release).startswith(n)), None), 60)
    killed = time.monotonic()
    release.kubectl("delete", "pod", holder, "-n", RELEASE_NAMESPACE, "--grace-period=0",
                    "--force")
    # The survivor usually wins, but the ReplicaSet's replacement Pod competes for the Lease
    # from its start: either taking over is leadership moving on, the dead Pod keeping it is
    # the failure.
    new_leader = wait_for(f"the lease to move from {holder} to a live Pod", lambda: next(
        (p["metadata"]["name"] for p in release.operator_pods()
         if p["metadata"]["name"] != holder
         and _lease_holder(release).startswith(p["metadata"]["name"])), None), 120)
    took_lease = time.monotonic() - killed
    figure("drill: kill the leader -> new leader",
           "the survivor" if new_leader in names else "the replacement Pod")
    # Status is written only on change: make one, which only the new leader can write.
    _mock_admin(release, client_namespace, "fail")
    try:
        wait_for("the new leader to write Healthy=False", lambda: condition(
            release, "llmprovider", "mock", client_namespace, "Healthy") == "False", 60)
        wrote = time.monotonic() - killed
    finally:
        _mock_admin(release, client_namespace, "recover")
    wait_for("the new leader to write Ready=True again", lambda: condition(
        release, "llmprovider", "mock", client_namespace, "Ready") == "True", 60)
    figure("drill: kill the leader -> new leader holds the lease / writes status",
           f"{took_lease:.1f}s / {wrote:.1f}s after the kill")
    release.wait_available(2, timeout=180)


def test_drill_helm_upgrade_while_routing(release: Cluster, client_namespace: str) -> None:
    def drill() -> None:
        time.sleep(3)
        _helm_upgrade(release, f"podAnnotations.e2e-rollout=r{int(time.time())}")
        release.wait_available(2, timeout=240)
        time.sleep(3)

    run = run_workload(release, client_namespace, duration=90, during=drill)
    figure("drill: helm upgrade (rolling, 2 replicas) while routing -> failed routes",
           f"{len(run.failures)}/{len(run.attempts)} (downtime {run.downtime():.1f}s)")
    assert not run.failures, run.failures[:5]


def test_drill_network_policy_on(release: Cluster, client_namespace: str) -> None:
    """The chart's NetworkPolicy admits the labelled client namespace. (The node's bridge CNI
    does not enforce NetworkPolicy; this proves the policy renders, applies and keeps the
    rollout and the clients working, not that others are refused.)"""
    _helm_upgrade(release, "networkPolicy.enabled=true")
    release.wait_available(2, timeout=180)
    policy = release.get("networkpolicy", DEPLOYMENT, "-n", RELEASE_NAMESPACE)
    peers = policy["spec"]["ingress"][0]["from"]
    labels = release.get("namespace", client_namespace)["metadata"]["labels"]
    selector = peers[0]["namespaceSelector"]["matchLabels"]
    assert all(labels.get(k) == v for k, v in selector.items()), (selector, labels)
    run = run_workload(release, client_namespace, duration=0, timeout=120)
    assert any(line["ok"] for line in run.attempts), run.lines
    figure("drill: NetworkPolicy on -> client still routes", "yes")


def test_operator_keeps_answering_routes_while_it_shuts_down(
        release: Cluster, client_namespace: str) -> None:
    """After SIGTERM the Pod is still an endpoint until kube-proxy hears it is terminating
    (about a second, more under load); every route it answers meanwhile must be a good one.
    Asked directly at the Pod IP from the node, so no Service is in between."""
    pod = _operator_pod(release)
    pod_ip = release.get("pod", pod, "-n", RELEASE_NAMESPACE)["status"]["podIP"]
    url = (f"http://{pod_ip}:8080/v1/route?policy=mock-policy&namespace={client_namespace}")
    # The chart checks callers: ask as the workload ServiceAccount, with a token for the
    # router's audience.
    token = release.kubectl("create", "token", WORKLOAD_ACCOUNT, "-n", client_namespace,
                            "--audience", AUDIENCE).strip()
    asked = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    answers: list[tuple[float, str]] = []
    sent = None
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        if sent is None and len(answers) >= 10:
            _exec(release, pod, "sh", "-c", "kill -TERM 1")
            sent = time.monotonic()
        try:
            with urllib.request.urlopen(asked, timeout=2) as response:
                answers.append((time.monotonic(), str(response.status)))
        except urllib.error.HTTPError as err:
            answers.append((time.monotonic(), f"{err.code} {err.read().decode()[:200]}"))
        except OSError as err:  # refused / reset once it stopped listening: fine
            answers.append((time.monotonic(), f"down {type(err).__name__}"))
            if sent is not None:
                break
        time.sleep(0.05)
    assert sent is not None
    after = [a for t, a in answers if t >= sent]
    bad = [a for a in after if not (a == "200" or a.startswith("down"))]
    figure("SIGTERM -> routes answered while shutting down",
           f"{sum(a == '200' for a in after)} ok, {len(bad)} bad, then "
           f"{'closed' if after and after[-1].startswith('down') else 'still open'}")
    release.wait_available(len(release.operator_pods()), timeout=120)
    assert not bad, bad[:5]
