"""``auth.mode=kubernetes`` adds exactly two permissions to the operator's account.

The chart's RBAC is rendered twice, with ``auth.mode=none`` and ``kubernetes`` (two releases,
so two ServiceAccounts), applied to the real API server, and ``kubectl auth can-i --list`` is
asked what each account may do. The difference must be ``create`` on ``tokenreviews`` and
``subjectaccessreviews`` and nothing else, and the users' ClusterRole must give the operator
nothing.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from chart._helm import render

pytestmark = pytest.mark.integration

RBAC_KINDS = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}


def permissions(k8s: Any, account: str, namespace: str) -> set[str]:
    """``can-i --list`` as a set of normalised lines (resource, names, URLs, verbs)."""
    result = k8s.kubectl("auth", "can-i", "--list", f"--as={account}", "-n", namespace)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()[1:]  # the header
    return {" ".join(line.split()) for line in lines}


def test_kubernetes_auth_adds_only_the_two_reviews(helm: Path, k8s: Any, namespace: str,
                                                   tmp_path: Path) -> None:
    suffix = uuid.uuid4().hex[:6]
    objects: list[dict[str, Any]] = []
    accounts: dict[str, str] = {}
    for mode in ("none", "kubernetes"):
        fullname = f"r-{mode}-{suffix}"
        rendered = render(helm, {"fullnameOverride": fullname, "auth": {
            "mode": mode, "userClusterRole": {"name": f"t-user-{mode}-{suffix}"}}},
            namespace=namespace)
        objects.extend(o for o in rendered.objects if o["kind"] in RBAC_KINDS)
        accounts[mode] = f"system:serviceaccount:{namespace}:{fullname}"
    manifest = tmp_path / "rbac.yaml"
    manifest.write_text(yaml.safe_dump_all(objects))
    applied = k8s.kubectl("apply", "-f", str(manifest))
    assert applied.returncode == 0, applied.stderr
    try:
        without = permissions(k8s, accounts["none"], namespace)
        with_auth = permissions(k8s, accounts["kubernetes"], namespace)
        assert with_auth - without == {
            "tokenreviews.authentication.k8s.io [] [] [create]",
            "subjectaccessreviews.authorization.k8s.io [] [] [create]"}
        assert without - with_auth == set()
        # The users' role is rendered, but it is not the operator's to use.
        use = k8s.kubectl("auth", "can-i", "use", "routingpolicies.router.zoeyos.io",
                          f"--as={accounts['kubernetes']}", "-n", namespace)
        assert use.stdout.strip() == "no"
    finally:
        k8s.kubectl("delete", "-f", str(manifest), "--ignore-not-found", "--wait=false")
