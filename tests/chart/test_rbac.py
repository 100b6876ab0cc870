"""The operator's RBAC is exactly the least-privilege set, per variant.

Why: RBAC that grows by accident (a wildcard, a verb copied from an example) is invisible until
an incident, and RBAC that is one verb short only fails in a cluster. So every rule the chart
renders is flattened to (role, namespace, apiGroup, resource, verb, resourceName) and compared
with the explicit allowed set below (set equality: nothing missing, nothing extra).

The sets follow what the code calls, checked in Kopf 1.45's source and in
provider_router.operator: the canary tests at the end re-check the facts the rules rely on (the
operator's Kopf handlers, its Lease, Kopf's own calls), so a change in the operator or a Kopf
upgrade that needs another verb fails here instead of in a cluster.
"""

from __future__ import annotations

import inspect
import itertools
import re
from pathlib import Path

import pytest

from chart._helm import CLUSTER_NAME, FULLNAME, NAMESPACE, VARIANTS, Obj, render

Grant = tuple[str, str, str, str | None]  # apiGroup, resource, verb, resourceName
Scoped = tuple[str, str | None]  # role kind, namespace
RuleSet = dict[Scoped, set[Grant]]


def _grants(group: str, resources: list[str], verbs: list[str],
            name: str | None = None) -> set[Grant]:
    return {(group, r, v, name) for r, v in itertools.product(resources, verbs)}


CR_RULES = (
    _grants("router.zoeyos.io", ["llmproviders", "routingpolicies"], ["list", "watch"])
    | _grants("router.zoeyos.io", ["llmproviders/status", "routingpolicies/status"], ["patch"])
    | _grants("", ["secrets"], ["get", "list", "watch"])
    | _grants("", ["events"], ["create"])
)
CRD_RULES = _grants("apiextensions.k8s.io", ["customresourcedefinitions"], ["list", "watch"])
# --auth kubernetes (the chart's default): the two reviews, create only.
REVIEW_RULES = _grants("authentication.k8s.io", ["tokenreviews"], ["create"]) | _grants(
    "authorization.k8s.io", ["subjectaccessreviews"], ["create"])
USER_ROLE = "provider-router-user"
"""The ClusterRole teams bind for their workloads: not the operator's, checked on its own."""
NAMESPACE_RULES = _grants("", ["namespaces"], ["list", "watch"])
LEASE = "r-provider-router-leader"  # release "r": the chart names one Lease per release
LEASE_RULES = _grants("coordination.k8s.io", ["leases"], ["create"]) | _grants(
    "coordination.k8s.io", ["leases"], ["get", "update"], LEASE) | _grants(
    "discovery.k8s.io", ["endpointslices"], ["list"])  # --replicas-service counts replicas


CLUSTER_ROLE: Scoped = ("ClusterRole", None)
CLUSTER_WIDE: RuleSet = {CLUSTER_ROLE: CRD_RULES | CR_RULES | REVIEW_RULES}
NAMESPACED: RuleSet = {
    CLUSTER_ROLE: CRD_RULES | NAMESPACE_RULES | REVIEW_RULES,
    ("Role", "a"): CR_RULES,
    ("Role", "b"): CR_RULES,
}
EXPECTED: dict[str, RuleSet] = {
    "default": CLUSTER_WIDE,
    "cluster-wide": CLUSTER_WIDE,
    "namespaced": NAMESPACED,
    "leader-election": {**CLUSTER_WIDE, ("Role", NAMESPACE): LEASE_RULES},
    "leader-election-namespaced": {**NAMESPACED, ("Role", NAMESPACE): LEASE_RULES},
    "monitoring": CLUSTER_WIDE,
    "pdb": CLUSTER_WIDE,
    "network-policy": CLUSTER_WIDE,
    "crds-templated": CLUSTER_WIDE,
    "default-policy": CLUSTER_WIDE,
    "auth-none": {CLUSTER_ROLE: CRD_RULES | CR_RULES},
}


def rendered_rules(objects: list[Obj]) -> RuleSet:
    """Every (apiGroup, resource, verb, resourceName) each Role/ClusterRole grants."""
    rules: RuleSet = {}
    for obj in objects:
        if obj["kind"] not in ("Role", "ClusterRole") or obj["metadata"]["name"] == USER_ROLE:
            continue
        scoped: Scoped = (obj["kind"], obj["metadata"].get("namespace"))
        assert scoped not in rules, f"two {scoped} objects"
        grants = rules.setdefault(scoped, set())
        for rule in obj["rules"]:
            assert set(rule) <= {"apiGroups", "resources", "verbs", "resourceNames"}, rule
            names: list[str | None] = list(rule.get("resourceNames") or [None])
            for group, resource, verb, name in itertools.product(
                    rule["apiGroups"], rule["resources"], rule["verbs"], names):
                grants.add((group, resource, verb, name))
    return rules


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_rules_are_exactly_the_allowed_set(helm: Path, variant: str) -> None:
    actual = rendered_rules(render(helm, VARIANTS[variant]).objects)
    expected = EXPECTED[variant]
    assert set(actual) == set(expected), "roles rendered"
    for scoped, grants in expected.items():
        assert actual[scoped] - grants == set(), f"{scoped}: grants more than allowed"
        assert grants - actual[scoped] == set(), f"{scoped}: misses grants the operator needs"


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_no_wildcards_and_no_write_verbs_beyond_patch_and_create(helm: Path,
                                                                 variant: str) -> None:
    for grants in rendered_rules(render(helm, VARIANTS[variant]).objects).values():
        for group, resource, verb, name in grants:
            assert "*" not in (group, resource, verb)
            assert verb in {"get", "list", "watch", "patch", "create", "update"}
            if verb == "create":
                assert (group, resource) in {("", "events"), ("coordination.k8s.io", "leases"),
                                             ("authentication.k8s.io", "tokenreviews"),
                                             ("authorization.k8s.io", "subjectaccessreviews")}
            if verb == "update":
                assert (group, resource, name) == ("coordination.k8s.io", "leases", LEASE)


def test_namespaced_mode_keeps_secrets_out_of_the_cluster_role(helm: Path) -> None:
    cluster = rendered_rules(render(helm, VARIANTS["namespaced"]).objects)[CLUSTER_ROLE]
    assert {resource for _, resource, _, _ in cluster} == {
        "customresourcedefinitions", "namespaces", "tokenreviews", "subjectaccessreviews"}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_bindings_grant_the_roles_to_the_operator_account(helm: Path, variant: str) -> None:
    objects = render(helm, VARIANTS[variant]).objects
    roles = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"])
             for o in objects if o["kind"] in ("Role", "ClusterRole")
             and o["metadata"]["name"] != USER_ROLE}
    bindings = [o for o in objects if o["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    assert len(bindings) == len(roles)
    bound = set()
    for binding in bindings:
        namespace = binding["metadata"].get("namespace")
        ref = binding["roleRef"]
        assert ref["apiGroup"] == "rbac.authorization.k8s.io"
        key = (ref["kind"], namespace if ref["kind"] == "Role" else None, ref["name"])
        assert key in roles, f"{binding['metadata']['name']} binds a role that is not rendered"
        bound.add(key)
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": FULLNAME, "namespace": NAMESPACE}]
    assert bound == roles


def test_role_names(helm: Path) -> None:
    objects = render(helm, VARIANTS["namespaced"]).objects
    names = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"])
             for o in objects if o["kind"].endswith(("Role", "RoleBinding"))}
    assert names == {
        ("ClusterRole", None, CLUSTER_NAME), ("ClusterRoleBinding", None, CLUSTER_NAME),
        ("ClusterRole", None, USER_ROLE), ("Role", "a", FULLNAME), ("RoleBinding", "a", FULLNAME),
        ("Role", "b", FULLNAME), ("RoleBinding", "b", FULLNAME),
    }


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_the_user_role_grants_use_on_policies_only(helm: Path, variant: str) -> None:
    objects = render(helm, VARIANTS[variant]).objects
    [role] = [o for o in objects if o["metadata"]["name"] == USER_ROLE]
    assert role["kind"] == "ClusterRole"
    assert role["rules"] == [{"apiGroups": ["router.zoeyos.io"],
                              "resources": ["routingpolicies"], "verbs": ["use"]}]
    assert not [o for o in objects if o["kind"].endswith("Binding")
                and o["roleRef"]["name"] == USER_ROLE]  # teams bind it, not the chart


def test_the_user_role_can_be_left_to_another_release(helm: Path) -> None:
    objects = render(helm, {"auth": {"userClusterRole": {"create": False}}}).objects
    assert not [o for o in objects if o["metadata"]["name"] == USER_ROLE]


@pytest.mark.parametrize(("values", "args"), [
    ({}, ["--auth", "kubernetes", "--auth-audience", "provider-router"]),
    ({"auth": {"audience": "llm"}}, ["--auth", "kubernetes", "--auth-audience", "llm"]),
    ({"auth": {"mode": "none"}}, ["--auth", "none"]),
])
def test_the_auth_mode_reaches_the_operator(helm: Path, values: Obj, args: list[str]) -> None:
    [deployment] = [o for o in render(helm, values).objects if o["kind"] == "Deployment"]
    rendered = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    at = rendered.index("--auth")
    assert rendered[at:at + len(args)] == args
    assert rendered.count("--auth-audience") == (1 if len(args) > 2 else 0)


# -- canaries: the Kopf behaviour the rules above rely on -----------------------------------


def test_kopf_posts_core_events_with_create_only() -> None:
    from kopf._cogs.clients import events
    from kopf._cogs.structs import references

    source = inspect.getsource(events)
    assert "api.post(" in source
    assert "api.patch(" not in source
    assert "api.put(" not in source
    assert (references.EVENTS.group, references.EVENTS.any_name) == ("", "events")


def test_kopf_watches_crds_with_list_and_watch_only() -> None:
    from kopf._cogs.clients import fetching, scanning, watching
    from kopf._cogs.structs import references

    assert (references.CRDS.group, references.CRDS.any_name) == (
        "apiextensions.k8s.io", "customresourcedefinitions")
    # Discovery and list/watch are GETs of collections: no get of a single CRD, no writes.
    for module in (scanning, fetching, watching):
        source = inspect.getsource(module)
        assert not any(f"api.{verb}(" in source for verb in ("post", "patch", "put", "delete"))


def test_kopf_reads_namespaces_only_when_not_cluster_wide() -> None:
    from kopf._core.reactor import observation

    source = inspect.getsource(observation.namespace_observer)
    assert "not settings.scanning.disabled and not clusterwide" in source


def test_operator_registers_only_read_only_watch_handlers() -> None:
    """kopf.on.event handlers only: Kopf then never patches an object, so no patch verb."""
    from types import SimpleNamespace
    from typing import Any, cast

    from provider_router.operator._handlers import build_registry, operator_settings

    registry = build_registry(cast(Any, None), cast(Any, SimpleNamespace(configuration=None)),
                              lambda: None)
    selectors = [h.selector for h in registry._watching.get_all_handlers()]
    assert None not in selectors
    watched = {(s.group, s.any_name) for s in selectors if s is not None}
    assert watched == {("router.zoeyos.io", "llmproviders"),
                       ("router.zoeyos.io", "routingpolicies"), ("", "secrets")}
    for kind in ("_changing", "_spawning", "_indexing", "_webhooks"):
        assert getattr(registry, kind).get_all_handlers() == [], kind
    assert operator_settings().peering.standalone is True  # no kopf.dev peering objects


def test_operator_writes_status_events_and_reads_secrets_only() -> None:
    from provider_router.operator import _kube

    source = inspect.getsource(_kube)
    calls = set(re.findall(r"self\._(?:custom|core)\.(\w+)", source))
    assert calls == {"patch_namespaced_custom_object_status", "create_namespaced_event",
                     "read_namespaced_secret", "list_cluster_custom_object",
                     "list_namespaced_custom_object"}


def test_lease_name_and_calls_match_the_lease_rules() -> None:
    from kubernetes.leaderelection.resourcelock import leaselock

    from provider_router.operator._leader import LeaseElection

    assert "name" in inspect.signature(LeaseElection.__init__).parameters
    calls = set(re.findall(r"api_instance\.(\w+)\(", inspect.getsource(leaselock)))
    assert calls == {"read_namespaced_lease", "create_namespaced_lease",
                     "replace_namespaced_lease"}  # get, create, update
