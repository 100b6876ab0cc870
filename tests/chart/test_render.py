"""What ``helm template`` renders for the default values and each documented variant.

Why: the operator's behaviour in a cluster follows from these fields (arguments, probes,
security context, selectors), and a template slip (a wrong indent, a selector that matches
nothing, a flag that is not passed) renders valid YAML that only fails at run time. Each test
reads the parsed objects, not the template text.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from chart._helm import (
    CHART_DIR,
    FULLNAME,
    NAMESPACE,
    VARIANTS,
    Obj,
    Rendered,
    merged,
    render,
    template,
)
from provider_router._defaults import (
    DEFAULT_PROXY_CONNECT_SECONDS,
    DEFAULT_PROXY_DEADLINE_SECONDS,
    DEFAULT_PROXY_FIRST_BYTE_SECONDS,
    DEFAULT_PROXY_IDLE_SECONDS,
    DEFAULT_PROXY_MAX_BODY_BYTES,
    DEFAULT_STALL_SECONDS,
)
from provider_router.api import RoutingPolicy
from provider_router.cli import _proxy_from, build_parser
from provider_router.proxy import ProxyOptions

STANDARD_LABELS = {
    "app.kubernetes.io/name": "provider-router",
    "app.kubernetes.io/instance": "r",
    "app.kubernetes.io/version": "0.1.0",
    "app.kubernetes.io/managed-by": "Helm",
    "helm.sh/chart": "provider-router-0.1.0",
}
SELECTOR = {"app.kubernetes.io/name": "provider-router", "app.kubernetes.io/instance": "r"}
CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}
BASE_KINDS = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Service", "Deployment"}

EXPECTED_KINDS: dict[str, set[str]] = {
    "default": BASE_KINDS,
    "cluster-wide": BASE_KINDS,
    "namespaced": BASE_KINDS | {"Role", "RoleBinding"},
    "leader-election": BASE_KINDS | {"Role", "RoleBinding"},
    "leader-election-namespaced": BASE_KINDS | {"Role", "RoleBinding"},
    "monitoring": BASE_KINDS | {"ServiceMonitor"},
    "pdb": BASE_KINDS | {"PodDisruptionBudget"},
    "network-policy": BASE_KINDS | {"NetworkPolicy"},
    "crds-templated": BASE_KINDS | {"CustomResourceDefinition"},
    "default-policy": BASE_KINDS | {"RoutingPolicy"},
    "auth-none": BASE_KINDS,
}
LEADER_ARGS = ["--leader-elect", "--leader-namespace", NAMESPACE,
               "--leader-lease", "r-provider-router-leader",
               "--replicas-service", FULLNAME]
AUTH_ARGS = ["--auth", "kubernetes", "--auth-audience", "provider-router"]
EXPECTED_ARGS: dict[str, list[str]] = {
    "default": ["operator", "-A", "--route-port", "8080", *AUTH_ARGS, "--proxy"],
    "namespaced": ["operator", "-n", "a", "-n", "b", "--route-port", "8080", *AUTH_ARGS,
                   "--proxy"],
    "leader-election": ["operator", "-A", "--route-port", "8080", *AUTH_ARGS, *LEADER_ARGS,
                        "--proxy"],
    "leader-election-namespaced": ["operator", "-n", "a", "-n", "b", "--route-port", "8080",
                                   *AUTH_ARGS, *LEADER_ARGS, "--proxy"],
    "auth-none": ["operator", "-A", "--route-port", "8080", "--auth", "none", "--proxy"],
}


@pytest.fixture(params=sorted(VARIANTS))
def variant(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


def test_variant_renders_expected_kinds(helm: Path, variant: str) -> None:
    assert render(helm, VARIANTS[variant]).kinds() == EXPECTED_KINDS[variant]


def test_every_object_carries_the_standard_labels(helm: Path, variant: str) -> None:
    for obj in render(helm, VARIANTS[variant]):
        if obj["kind"] == "CustomResourceDefinition":
            continue  # verbatim copies of crds/ (test_crds.py)
        labels = obj["metadata"].get("labels", {})
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        assert STANDARD_LABELS.items() <= labels.items(), where
        assert labels["app.kubernetes.io/component"] == "operator", where


def test_namespaced_objects_are_placed_explicitly(helm: Path, variant: str) -> None:
    """Every namespaced object names its namespace (kubectl apply of the render is safe)."""
    for obj in render(helm, VARIANTS[variant]):
        namespace = obj["metadata"].get("namespace")
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] in CLUSTER_SCOPED:
            assert namespace is None, where
        elif obj["kind"] in ("Role", "RoleBinding") and not obj["metadata"]["name"].endswith(
                "-leader-election"):
            assert namespace in VARIANTS[variant]["watchNamespaces"], where
        else:
            assert namespace == NAMESPACE, where


@pytest.mark.parametrize("name", sorted(EXPECTED_ARGS))
def test_operator_arguments(helm: Path, name: str) -> None:
    assert render(helm, VARIANTS[name]).args == EXPECTED_ARGS[name]


def test_arguments_follow_route_port_and_extra_args(helm: Path) -> None:
    rendered = render(helm, {"routePort": 9090, "extraArgs": ["--verbose"],
                             "watchNamespaces": ["a", "a", "b"]})
    assert rendered.args == ["operator", "-n", "a", "-n", "b", "--route-port", "9090",
                             *AUTH_ARGS, "--proxy", "--verbose"]
    assert rendered.container["ports"] == [
        {"name": "http", "containerPort": 9090, "protocol": "TCP"}]
    # The Service keeps its own port and targets the named container port.
    (port,) = rendered.one("Service")["spec"]["ports"]
    assert (port["port"], port["targetPort"]) == (8080, "http")


def test_lease_ttl_is_passed_only_when_set(helm: Path) -> None:
    assert "--lease-ttl" not in render(helm).args
    args = render(helm, {"leaseTTLSeconds": 900}).args
    assert args[args.index("--lease-ttl") + 1] == "900"


def test_proxy_mode_is_on_unless_disabled(helm: Path) -> None:
    assert "--proxy" not in render(helm, {"proxy": {"enabled": False}}).args
    args = render(helm).args
    assert "--proxy" in args
    assert "--proxy-namespace" not in args
    args = render(helm, {"proxy": {"enabled": True, "namespace": "team-a"}}).args
    assert args[args.index("--proxy-namespace") + 1] == "team-a"


# chart value: (its flag, a value to set, the router's default when it is null)
PROXY_TUNING: dict[str, tuple[str, float, float]] = {
    "connectTimeoutSeconds": ("--proxy-connect-timeout", 2.5, DEFAULT_PROXY_CONNECT_SECONDS),
    "firstByteTimeoutSeconds": ("--proxy-first-byte-timeout", 600,
                                DEFAULT_PROXY_FIRST_BYTE_SECONDS),
    "idleTimeoutSeconds": ("--proxy-idle-timeout", 90, DEFAULT_PROXY_IDLE_SECONDS),
    "deadlineSeconds": ("--proxy-deadline", 900, DEFAULT_PROXY_DEADLINE_SECONDS),
    "stallTimeoutSeconds": ("--proxy-stall-timeout", 12.5, DEFAULT_STALL_SECONDS),
    "maxBodyBytes": ("--proxy-max-body-bytes", 16 << 20, DEFAULT_PROXY_MAX_BODY_BYTES),
}


def test_proxy_tuning_reaches_the_routers_options(helm: Path) -> None:
    """Each value set becomes its flag, and the router reads it back as given: a large body
    limit too, which Helm (reading numbers as floats) would otherwise print as 1.6777216e+07."""
    values = {key: value for key, (_, value, _) in PROXY_TUNING.items()}
    args = render(helm, {"proxy": {"enabled": True, **values}}).args
    options = _proxy_from(build_parser().parse_args(args))
    assert options is not None
    assert (options.connect_seconds, options.first_byte_seconds, options.idle_seconds,
            options.deadline_seconds, options.stall_seconds, options.max_body_bytes) == (
        2.5, 600, 90, 900, 12.5, 16 << 20)
    assert args[args.index("--proxy-max-body-bytes") + 1] == str(16 << 20)


def test_proxy_tuning_left_null_keeps_the_routers_defaults(helm: Path) -> None:
    args = render(helm).args
    assert not {flag for flag, _, _ in PROXY_TUNING.values()} & set(args)
    options = _proxy_from(build_parser().parse_args(args))
    assert options == ProxyOptions()


def test_chart_readme_states_the_routers_proxy_defaults() -> None:
    """The README's table gives each null's meaning; it must be the router's real default."""
    readme = (CHART_DIR / "README.md").read_text(encoding="utf-8")
    for key, (flag, _, default) in PROXY_TUNING.items():
        row = re.search(rf"^\| `proxy\.{key}` \| `null` \(([\d.]+)\) \| `{flag}`", readme,
                        re.MULTILINE)
        assert row is not None, f"no README row for proxy.{key}"
        assert float(row.group(1)) == default, key


def test_replicas(helm: Path) -> None:
    assert render(helm).deployment["spec"]["replicas"] == 1
    assert render(helm, VARIANTS["leader-election"]).deployment["spec"]["replicas"] == 2


def test_pod_and_container_security_context_are_restricted(helm: Path, variant: str) -> None:
    rendered = render(helm, VARIANTS[variant])
    pod = rendered.deployment["spec"]["template"]["spec"]["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert pod["runAsUser"] == 65532
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    container = rendered.container["securityContext"]
    assert container["runAsNonRoot"] is True
    assert container["runAsUser"] == 65532
    assert container["readOnlyRootFilesystem"] is True
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"] == {"drop": ["ALL"]}
    assert container["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "privileged" not in container or container["privileged"] is False


def test_tmp_is_a_writable_empty_dir(helm: Path) -> None:
    rendered = render(helm)
    volumes = {v["name"]: v for v in rendered.deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["tmp"]["emptyDir"] == {"sizeLimit": "64Mi"}
    assert {"name": "tmp", "mountPath": "/tmp"} in rendered.container["volumeMounts"]


def test_probes_hit_health_endpoints_on_the_route_port(helm: Path) -> None:
    container = render(helm).container
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["failureThreshold"] >= 3


def test_environment(helm: Path) -> None:
    extra = [{"name": "LOG_FORMAT", "value": "json"}]
    env = {e["name"]: e for e in render(helm, {"extraEnv": extra}).container["env"]}
    assert env["PYTHONUNBUFFERED"] == {"name": "PYTHONUNBUFFERED", "value": "1"}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert env["LOG_FORMAT"] == extra[0]


def test_resources(helm: Path) -> None:
    resources = render(helm).container["resources"]
    assert resources["requests"] == {"cpu": "50m", "memory": "128Mi"}
    assert resources["limits"]["memory"] == "512Mi"


def test_image(helm: Path) -> None:
    assert render(helm).container["image"] == "ghcr.io/zoeyos/provider-router:0.1.0"
    digest = "sha256:" + "a" * 64
    rendered = render(helm, {"image": {"tag": "1.2.3", "digest": digest}})
    assert rendered.container["image"] == f"ghcr.io/zoeyos/provider-router@{digest}"
    assert rendered.deployment["metadata"]["labels"]["app.kubernetes.io/version"] == "1.2.3"


def test_selectors_wire_deployment_service_and_pods(helm: Path) -> None:
    rendered = render(helm)
    deployment = rendered.deployment
    assert deployment["spec"]["selector"]["matchLabels"] == SELECTOR
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert SELECTOR.items() <= pod_labels.items()
    service = rendered.one("Service", FULLNAME)
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"] == SELECTOR
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}]
    # Reports reach the replica that holds the lease.
    assert service["spec"]["sessionAffinity"] == "ClientIP"
    spread = render(helm, {"service": {"sessionAffinity": "None"}}).one("Service", FULLNAME)
    assert spread["spec"]["sessionAffinity"] == "None"


def test_service_account_is_used_by_the_pod(helm: Path) -> None:
    rendered = render(helm)
    account = rendered.one("ServiceAccount")
    spec = rendered.deployment["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == account["metadata"]["name"] == FULLNAME
    assert spec["automountServiceAccountToken"] is True


def test_existing_service_account(helm: Path) -> None:
    rendered = render(helm, {"serviceAccount": {"create": False, "name": "mine"}})
    assert "ServiceAccount" not in rendered.kinds()
    assert rendered.deployment["spec"]["template"]["spec"]["serviceAccountName"] == "mine"
    (subject,) = rendered.one("ClusterRoleBinding")["subjects"]
    assert subject == {"kind": "ServiceAccount", "name": "mine", "namespace": NAMESPACE}


def test_rbac_can_be_left_to_the_user(helm: Path) -> None:
    kinds = render(helm, {"rbac": {"create": False}, "watchNamespaces": ["a"]}).kinds()
    assert not kinds & {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}


def test_rolling_update_keeps_the_route_api_up(helm: Path) -> None:
    strategy = render(helm).deployment["spec"]["strategy"]
    assert strategy == {"type": "RollingUpdate",
                        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}


# -- leader election ------------------------------------------------------------------------


def test_no_leader_election_with_one_replica(helm: Path) -> None:
    for values in (VARIANTS["default"], VARIANTS["namespaced"]):
        rendered = render(helm, values)
        assert "--leader-elect" not in rendered.args
        assert not [o for o in rendered.all("Role") if o["metadata"]["namespace"] == NAMESPACE]


def test_leader_election_with_several_replicas(helm: Path) -> None:
    rendered = render(helm, VARIANTS["leader-election"])
    assert rendered.args[-len(LEADER_ARGS) - 1:-1] == LEADER_ARGS  # then --proxy
    role = rendered.one("Role", f"{FULLNAME}-leader-election", NAMESPACE)
    assert {r["apiGroups"][0] for r in role["rules"]} == {"coordination.k8s.io",
                                                         "discovery.k8s.io"}
    rendered.one("RoleBinding", f"{FULLNAME}-leader-election", NAMESPACE)


def test_no_kopf_peering_anywhere(helm: Path) -> None:
    """The operator runs Kopf standalone; peering would freeze the followers' tables."""
    for values in VARIANTS.values():
        rendered = render(helm, values)
        assert "--peering" not in rendered.args
        assert not rendered.kinds() & {"KopfPeering", "ClusterKopfPeering"}
        assert "kopf.dev" not in rendered.text


# -- optional objects --------------------------------------------------------------------------


def test_service_monitor(helm: Path) -> None:
    rendered = render(helm, VARIANTS["monitoring"])
    monitor = rendered.one("ServiceMonitor", FULLNAME)
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["selector"]["matchLabels"] == SELECTOR
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "http"
    assert endpoint["path"] == "/metrics"
    assert (endpoint["interval"], endpoint["scrapeTimeout"]) == ("30s", "10s")
    # The Service it selects exposes the port by that name.
    service = rendered.one("Service")
    assert SELECTOR.items() <= service["metadata"]["labels"].items()
    assert [p["name"] for p in service["spec"]["ports"]] == ["http"]


def test_pod_disruption_budget(helm: Path) -> None:
    pdb = render(helm, VARIANTS["pdb"]).one("PodDisruptionBudget", FULLNAME)
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"] == {"selector": {"matchLabels": SELECTOR}, "maxUnavailable": 1}
    values = merged(VARIANTS["pdb"], {"podDisruptionBudget": {"minAvailable": "50%"}})
    pdb = render(helm, values).one("PodDisruptionBudget")
    assert pdb["spec"] == {"selector": {"matchLabels": SELECTOR}, "minAvailable": "50%"}


def test_network_policy_admits_labelled_namespaces_on_the_route_port(helm: Path) -> None:
    policy = render(helm, VARIANTS["network-policy"]).one("NetworkPolicy", FULLNAME)
    spec = policy["spec"]
    assert spec["podSelector"] == {"matchLabels": SELECTOR}
    assert spec["policyTypes"] == ["Ingress"]
    (rule,) = spec["ingress"]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"router.zoeyos.io/client": "true"}}}]


def test_network_policy_extra_peers(helm: Path) -> None:
    extra: list[Obj] = [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
         "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}]
    values = merged(VARIANTS["network-policy"], {"networkPolicy": {"extraFrom": extra}})
    (rule,) = render(helm, values).one("NetworkPolicy")["spec"]["ingress"]
    assert rule["from"][1:] == extra


def test_network_policy_refuses_to_admit_everyone(helm: Path) -> None:
    # null, not {}: Helm merges a user's map into the default one, so {} would keep the default.
    values = {"networkPolicy": {"enabled": True, "allowedNamespaceLabels": None}}
    result = template(helm, values)
    assert result.returncode != 0
    assert "would admit every source" in result.stderr


def test_default_policy_is_a_valid_routing_policy(helm: Path) -> None:
    values: dict[str, Any] = merged(VARIANTS["default-policy"], {
        "defaultPolicy": {"providerSelector": {"matchLabels": {"tier": "local"}}}})
    obj = render(helm, values).one("RoutingPolicy", "default", NAMESPACE)
    policy = RoutingPolicy.model_validate(obj)
    assert policy.spec.strategy.value == "Cost"
    assert policy.spec.default is True
    assert policy.spec.provider_selector.matches({"tier": "local"})
    assert not policy.spec.provider_selector.matches({"tier": "hosted"})


def test_default_policy_with_empty_selector(helm: Path) -> None:
    obj = render(helm, VARIANTS["default-policy"]).one("RoutingPolicy")
    assert obj["spec"]["providerSelector"] == {}
    RoutingPolicy.model_validate(obj)


def test_scheduling_knobs_pass_through(helm: Path) -> None:
    values = {
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "llm", "operator": "Exists", "effect": "NoSchedule"}],
        "priorityClassName": "system-cluster-critical",
        "podAnnotations": {"a": "b"},
        "podLabels": {"team": "ml"},
        "imagePullSecrets": [{"name": "pull"}],
    }
    spec = render(helm, values).deployment["spec"]["template"]
    assert spec["metadata"]["annotations"] == {"a": "b"}
    assert spec["metadata"]["labels"]["team"] == "ml"
    pod = spec["spec"]
    assert pod["nodeSelector"] == values["nodeSelector"]
    assert pod["tolerations"] == values["tolerations"]
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert pod["imagePullSecrets"] == [{"name": "pull"}]


def test_names_follow_overrides(helm: Path) -> None:
    rendered: Rendered = render(helm, {"fullnameOverride": "llm-router"})
    assert rendered.one("Deployment")["metadata"]["name"] == "llm-router"
    assert rendered.one("ClusterRole", f"{NAMESPACE}-llm-router")
