"""``--auth kubernetes`` against the real API server of the suite.

A standalone router over manifests in the test's namespace checks callers with the real
TokenReview and SubjectAccessReview, as a ServiceAccount that holds only the two review
permissions. Workload tokens are minted with TokenRequest for the router's audience. The RBAC
is ordinary: a ClusterRole with ``use`` on ``routingpolicies`` bound in the namespace.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from prometheus_client import generate_latest

from provider_router.access import KubernetesAccess, ReviewClient
from provider_router.demo import MockProvider
from provider_router.standalone import Standalone
from standalone.router_harness import eventually, policy_doc, provider_doc, write_docs
from support.relay import Relay

AUDIENCE = "provider-router"
ROUTER_SA = "router"


def mint(k8s: Any, namespace: str, account: str, audiences: list[str] | None = None) -> str:
    """A TokenRequest token for ``namespace/account`` (created if missing)."""
    core = client.CoreV1Api(k8s.api_client)
    try:
        core.create_namespaced_service_account(
            namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=account)))
    except ApiException as error:
        if error.status != 409:
            raise
    request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(
        audiences=[AUDIENCE] if audiences is None else audiences, expiration_seconds=3600))
    answer = core.create_namespaced_service_account_token(account, namespace, request)
    return str(answer.status.token)


@dataclass(frozen=True)
class Roles:
    user: str
    reviewer: str


@pytest.fixture(scope="module")
def roles(k8s: Any) -> Iterator[Roles]:
    """Cluster roles of this module: workloads' ``use`` and the router's two reviews."""
    rbac = client.RbacAuthorizationV1Api(k8s.api_client)
    suffix = uuid.uuid4().hex[:6]
    made = Roles(user=f"t-router-user-{suffix}", reviewer=f"t-router-reviewer-{suffix}")
    rbac.create_cluster_role(client.V1ClusterRole(
        metadata=client.V1ObjectMeta(name=made.user),
        rules=[client.V1PolicyRule(api_groups=["router.zoeyos.io"],
                                   resources=["routingpolicies"], verbs=["use"])]))
    rbac.create_cluster_role(client.V1ClusterRole(
        metadata=client.V1ObjectMeta(name=made.reviewer),
        rules=[client.V1PolicyRule(api_groups=["authentication.k8s.io"],
                                   resources=["tokenreviews"], verbs=["create"]),
               client.V1PolicyRule(api_groups=["authorization.k8s.io"],
                                   resources=["subjectaccessreviews"], verbs=["create"])]))
    try:
        yield made
    finally:
        for name in (made.user, made.reviewer):
            try:
                rbac.delete_cluster_role(name)
            except ApiException as error:
                if error.status != 404:
                    raise


def bind(k8s: Any, namespace: str, account: str, roles: Roles,
         account_namespace: str | None = None) -> str:
    """What ``kubectl create rolebinding --clusterrole=... --serviceaccount=...`` does, for
    the account ``account_namespace/account`` (default: of ``namespace`` itself). Returns the
    binding's name."""
    rbac = client.RbacAuthorizationV1Api(k8s.api_client)
    name = f"use-{account}" if account_namespace is None else (
        f"use-{account_namespace}-{account}"[:63].rstrip("-"))
    rbac.create_namespaced_role_binding(namespace, client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name=name),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole",
                                  name=roles.user),
        subjects=[client.RbacV1Subject(kind="ServiceAccount", name=account,
                                       namespace=account_namespace or namespace)]))
    return name


def router_kubeconfig(k8s: Any, namespace: str, roles: Roles, server: str | None = None,
                      reviewer: bool = True) -> Path:
    """A kubeconfig for the router's own ServiceAccount, allowed the two reviews only (or,
    with ``reviewer=False``, not even those)."""
    token = mint(k8s, namespace, ROUTER_SA, audiences=[])
    if reviewer:
        rbac = client.RbacAuthorizationV1Api(k8s.api_client)
        try:
            rbac.create_cluster_role_binding(client.V1ClusterRoleBinding(
                metadata=client.V1ObjectMeta(name=f"{roles.reviewer}-{namespace}"[:63]),
                role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io",
                                          kind="ClusterRole", name=roles.reviewer),
                subjects=[client.RbacV1Subject(kind="ServiceAccount", name=ROUTER_SA,
                                               namespace=namespace)]))
        except ApiException as error:
            if error.status != 409:
                raise
    path: Path = k8s.kubeconfig_for_token(token)
    if server is not None:
        config = json.loads(path.read_text())
        config["clusters"][0]["cluster"]["server"] = server
        path.write_text(json.dumps(config))
    return path


@dataclass
class Cluster:
    k8s: Any
    namespace: str
    roles: Roles
    folder: Path
    provider: MockProvider


@pytest.fixture
async def cluster(k8s: Any, namespace: str, roles: Roles,
                  tmp_path: Path) -> AsyncIterator[Cluster]:
    provider = MockProvider("alpha")
    await provider.start()
    folder = tmp_path / "manifests"
    folder.mkdir()
    docs = [provider_doc("alpha", provider.url), policy_doc("main"),
            policy_doc("premium", default=False)]
    for doc in docs:
        doc["metadata"]["namespace"] = namespace
    write_docs(folder / "resources.yaml", *docs)
    try:
        yield Cluster(k8s, namespace, roles, folder, provider)
    finally:
        await provider.stop()
        rbac = client.RbacAuthorizationV1Api(k8s.api_client)
        try:
            rbac.delete_cluster_role_binding(f"{roles.reviewer}-{namespace}"[:63])
        except ApiException as error:
            if error.status != 404:
                raise


@dataclass
class Running:
    router: Standalone
    access: KubernetesAccess
    http: httpx.AsyncClient
    namespace: str
    seen: list[str]

    async def call(self, method: str, path: str, token: str | None = None,
                   **kwargs: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {token}"} if token is not None else {}
        response = await self.http.request(method, path, headers=headers, **kwargs)
        self.seen.append(f"{response.status_code} {response.headers} {response.text}")
        return response

    async def route(self, token: str | None, policy: str = "main") -> httpx.Response:
        return await self.call("GET", f"/v1/route?namespace={self.namespace}&policy={policy}",
                               token)

    def reviews(self, kind: str) -> int:
        return sum(v for (k, _), v in self.access.metrics.reviews.items() if k == kind)


@asynccontextmanager
async def serving(cluster: Cluster, server: str | None = None, reviewer: bool = True,
                  **tuning: Any) -> AsyncIterator[Running]:
    kubeconfig = router_kubeconfig(cluster.k8s, cluster.namespace, cluster.roles, server,
                                   reviewer)
    tuning.setdefault("review_deadline", 5.0)
    access = KubernetesAccess(ReviewClient.load(str(kubeconfig), timeout=3.0), **tuning)
    router = Standalone(cluster.folder, port=0, probe_initial_delay=0.0, access=access)
    access.metrics.register(router.metrics.registry)
    await router.start()
    try:
        async with httpx.AsyncClient(base_url=router.url, trust_env=False,
                                     timeout=20.0) as http:
            yield Running(router, access, http, cluster.namespace, [])
    finally:
        await router.stop()


async def test_a_bound_account_routes_and_reports(cluster: Cluster) -> None:
    bind(cluster.k8s, cluster.namespace, "worker", cluster.roles)
    token = mint(cluster.k8s, cluster.namespace, "worker")
    async with serving(cluster) as running:
        route = await running.route(token)
        assert route.status_code == 200, route.text
        report = await running.call("POST", "/v1/report", token, json={
            "leaseId": route.json()["leaseId"], "outcome": "success", "inputTokens": 10})
        assert report.status_code == 200, report.text
        by_provider = await running.call("POST", "/v1/report", token, json={
            "provider": "alpha", "namespace": cluster.namespace, "outcome": "success"})
        assert by_provider.status_code == 200, by_provider.text
        # Warm caches: more requests, no more reviews.
        for _ in range(5):
            assert (await running.route(token)).status_code == 200
        assert running.reviews("TokenReview") == 1
        assert running.reviews("SubjectAccessReview") == 1


async def test_an_unbound_account_is_refused_with_the_binding_to_create(
        cluster: Cluster) -> None:
    token = mint(cluster.k8s, cluster.namespace, "stranger")
    async with serving(cluster) as running:
        for _ in range(2):  # the second answer comes from the cache
            answer = await running.route(token, "premium")
            assert answer.status_code == 403, answer.text
        error = answer.json()["error"]
        assert error["code"] == "forbidden"
        assert f"{cluster.namespace}/premium" in error["message"]
        assert error["details"]["policy"] == "premium"
        assert error["details"]["permission"] == {
            "verb": "use", "group": "router.zoeyos.io", "resource": "routingpolicies",
            "namespace": cluster.namespace, "name": "premium"}
        assert error["details"]["grant"] == (
            f"kubectl create rolebinding provider-router-user-stranger "
            f"--clusterrole=provider-router-user "
            f"--serviceaccount={cluster.namespace}:stranger -n {cluster.namespace}")
        assert running.reviews("SubjectAccessReview") == 1


async def test_missing_foreign_and_garbage_tokens_get_401(cluster: Cluster) -> None:
    bind(cluster.k8s, cluster.namespace, "worker", cluster.roles)
    other_audience = mint(cluster.k8s, cluster.namespace, "worker", audiences=["elsewhere"])
    api_audience = mint(cluster.k8s, cluster.namespace, "worker", audiences=[])
    async with serving(cluster) as running:
        for token in (None, other_audience, api_audience, "garbage", "a.b.c"):
            answer = await running.route(token)
            assert answer.status_code == 401, (token is None, answer.text)
            assert answer.headers["www-authenticate"].startswith('Bearer realm="provider-router"')
            assert answer.json()["error"]["code"] == "unauthenticated"
        for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/v1/providers",
                     "/v1/policies"):
            assert (await running.call("GET", path)).status_code == 200, path


async def test_a_deleted_account_is_refused_once_the_cache_expires(cluster: Cluster) -> None:
    bind(cluster.k8s, cluster.namespace, "leaver", cluster.roles)
    token = mint(cluster.k8s, cluster.namespace, "leaver")
    async with serving(cluster, allow_ttl=1.5) as running:
        assert (await running.route(token)).status_code == 200
        client.CoreV1Api(cluster.k8s.api_client).delete_namespaced_service_account(
            "leaver", cluster.namespace)

        async def refused() -> bool:
            return (await running.route(token)).status_code == 401

        await eventually(refused, timeout=20.0)
        assert running.reviews("TokenReview") >= 2


async def test_a_refused_report_changes_nothing(cluster: Cluster) -> None:
    token = mint(cluster.k8s, cluster.namespace, "stranger")
    async with serving(cluster) as running:
        for _ in range(5):
            refused = await running.call("POST", "/v1/report", token, json={
                "provider": "alpha", "namespace": cluster.namespace, "policy": "main",
                "outcome": "error", "inputTokens": 1_000_000, "outputTokens": 1_000_000})
            assert refused.status_code == 403, refused.text
            assert "main" in refused.json()["error"]["message"]
        providers = (await running.call("GET", "/v1/providers")).json()["providers"]
        assert [(p["circuit"], p["spendUSD"]) for p in providers] == [("Closed", 0)]
        policies = (await running.call("GET", "/v1/policies")).json()["policies"]
        assert {p["name"]: p["spendUSD"]["total"] for p in policies} == {"main": 0,
                                                                          "premium": 0}


async def test_reviews_are_single_flight(cluster: Cluster) -> None:
    bind(cluster.k8s, cluster.namespace, "worker", cluster.roles)
    token = mint(cluster.k8s, cluster.namespace, "worker")
    async with serving(cluster) as running:
        answers = await asyncio.gather(*(running.route(token) for _ in range(30)))
        assert {a.status_code for a in answers} == {200}
        assert running.reviews("TokenReview") == 1
        assert running.reviews("SubjectAccessReview") == 1


async def test_without_the_api_server_cached_callers_go_on_and_new_ones_get_503(
        cluster: Cluster) -> None:
    bind(cluster.k8s, cluster.namespace, "worker", cluster.roles)
    bind(cluster.k8s, cluster.namespace, "late", cluster.roles)
    worker = mint(cluster.k8s, cluster.namespace, "worker")
    late = mint(cluster.k8s, cluster.namespace, "late")
    stranger = mint(cluster.k8s, cluster.namespace, "stranger")
    real = urlsplit(yaml_server(cluster.k8s.kubeconfig))
    relay = Relay(real.hostname or "127.0.0.1", real.port or 443)
    await relay.start()
    try:
        async with serving(cluster, server=f"https://127.0.0.1:{relay.port}") as running:
            warm = await running.route(worker)
            assert warm.status_code == 200, warm.text
            refused = await running.route(stranger)
            assert refused.status_code == 403
            await relay.cut()
            for _ in range(3):
                assert (await running.route(worker)).status_code == 200
            report = await running.call("POST", "/v1/report", worker, json={
                "leaseId": warm.json()["leaseId"], "outcome": "success"})
            assert report.status_code == 200, report.text
            assert (await running.route(stranger)).status_code == 403  # still cached
            for token in (late, "garbage"):
                answer = await running.route(token)
                assert answer.status_code == 503, answer.text
                assert answer.json()["error"]["code"] == "auth_unavailable"
            # A cached identity asking for a policy it was never reviewed for: 503, not 200.
            assert (await running.route(worker, "premium")).status_code == 503
            assert (await running.route(None)).status_code == 401
    finally:
        await relay.close()


async def test_tokens_are_never_logged_answered_or_counted(
        cluster: Cluster, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    bind(cluster.k8s, cluster.namespace, "worker", cluster.roles)
    tokens = [mint(cluster.k8s, cluster.namespace, "worker"),
              mint(cluster.k8s, cluster.namespace, "stranger"),
              mint(cluster.k8s, cluster.namespace, "worker", audiences=["elsewhere"])]
    async with serving(cluster) as running:
        for token in tokens:
            for policy in ("main", "premium", "missing"):
                await running.route(token, policy)
            await running.call("POST", "/v1/report", token, json={
                "provider": "alpha", "namespace": cluster.namespace, "outcome": "error"})
        metrics = generate_latest(running.router.metrics.registry).decode()
    texts = [*running.seen, metrics,
             *(f"{r.getMessage()} {r.args!r} {r.__dict__!r}" for r in caplog.records)]
    # A JWT's signature is its secret part; the header and claims are not secret.
    signatures = [token.rsplit(".", 1)[1] for token in tokens]
    for signature in signatures:
        assert not any(signature in text for text in texts)
    assert 'provider_router_authz_results_total{mode="kubernetes",outcome="denied"}' in metrics
    assert 'provider_router_auth_cache_total{cache="token",result="hit"}' in metrics
    assert "worker" not in metrics
    assert "stranger" not in metrics


def yaml_server(kubeconfig: Path) -> str:
    import yaml

    config = yaml.safe_load(kubeconfig.read_text())
    contexts = {c["name"]: c["context"] for c in config["contexts"]}
    clusters = {c["name"]: c["cluster"] for c in config["clusters"]}
    return str(clusters[contexts[config["current-context"]]["cluster"]]["server"])


async def test_a_cache_entry_never_outlives_its_token(cluster: Cluster) -> None:
    """The router's wall clock runs an hour minus a second ahead, so every (one-hour) token
    seems to expire in a second: its entries must go then, not after the 120 s allow TTL."""
    import time

    bind(cluster.k8s, cluster.namespace, "worker", cluster.roles)
    token = mint(cluster.k8s, cluster.namespace, "worker")
    async with serving(cluster, wall_clock=lambda: time.time() + 3600 - 1.0) as running:
        assert (await running.route(token)).status_code == 200
        assert running.reviews("TokenReview") == 1

        async def reviewed_again() -> bool:
            await running.route(token)
            return running.reviews("TokenReview") >= 2

        await eventually(reviewed_again, timeout=20.0)


async def test_the_identity_cache_is_bounded(cluster: Cluster) -> None:
    for account in ("a", "b", "c"):
        bind(cluster.k8s, cluster.namespace, account, cluster.roles)
    tokens = [mint(cluster.k8s, cluster.namespace, account) for account in ("a", "b", "c")]
    async with serving(cluster, max_identities=2) as running:
        for token in tokens:
            assert (await running.route(token)).status_code == 200
        assert (await running.route(tokens[2])).status_code == 200  # recent: still cached
        assert running.reviews("TokenReview") == 3
        assert (await running.route(tokens[0])).status_code == 200  # evicted: reviewed again
        assert running.reviews("TokenReview") == 4
        # A flood of bad tokens lands in the refusals' own cache and evicts nobody.
        for i in range(5):
            assert (await running.route(f"garbage-{i}")).status_code == 401
        assert (await running.route(tokens[0])).status_code == 200
        assert running.reviews("TokenReview") == 9


async def test_a_hanging_api_server_gives_bounded_waits_and_503(cluster: Cluster) -> None:
    """Reviews that never get an answer: at most ``max_pending`` wait, each until the
    deadline, and all of them end in 503, never in a yes."""
    from support.relay import BlackHole

    hole = BlackHole()
    await hole.start()
    try:
        async with serving(cluster, server=f"https://127.0.0.1:{hole.port}", max_pending=1,
                           review_deadline=1.5) as running:
            first = asyncio.ensure_future(running.route("first-token"))
            await eventually(lambda: len(running.access._token_flights) == 1, timeout=10.0)
            second = await running.route("second-token")
            assert second.status_code == 503, second.text
            assert "too many callers" in second.json()["error"]["message"]
            answer = await asyncio.wait_for(first, timeout=15.0)
            assert answer.status_code == 503, answer.text
            assert answer.json()["error"]["code"] == "auth_unavailable"
            assert answer.headers["retry-after"] == "1"
            assert running.access._token_flights == {}
    finally:
        await hole.close()


async def test_a_router_without_the_review_permissions_answers_503(
        cluster: Cluster, caplog: pytest.LogCaptureFixture) -> None:
    bind(cluster.k8s, cluster.namespace, "worker", cluster.roles)
    token = mint(cluster.k8s, cluster.namespace, "worker")
    async with serving(cluster, reviewer=False) as running:
        answer = await running.route(token)
        assert answer.status_code == 503, answer.text
        assert "needs 'create' on tokenreviews" in answer.json()["error"]["message"]
    assert any("access reviews are failing" in r.getMessage() for r in caplog.records)
