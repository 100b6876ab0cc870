"""Requests that name no namespace use the caller's own: the unprefixed proxy paths
(``/v1/chat/completions``, ``/v1/models``, ...) and ``/v1/route`` without ``namespace``.

The caller's namespace is its ServiceAccount's (``--auth kubernetes``, from the real
TokenReview) or that of the Secret that holds its API key (``--auth keys``). Its namespace's
default policy serves it if there is one, else the default policy of ``--proxy-namespace``
(``default``); either way the caller must be allowed the policy it lands on. The calls go
through the real ``openai`` SDK to real local provider servers, and the answer's
``x-router-policy`` says which policy served it.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from integration import test_access
from integration.test_access import Roles, bind, mint, router_kubeconfig
from provider_router.access import (
    KEYS_LABEL,
    POLICIES_ANNOTATION,
    KubernetesAccess,
    ReviewClient,
)
from provider_router.proxy import ProxyOptions
from provider_router.standalone import Standalone
from proxy.conftest import FAST
from standalone.router_harness import write_docs
from support.fake_llm import FakeLLM, fake_providers
from support.namespaces import temporary_namespace

roles = test_access.roles
"""The cluster roles of ``--auth kubernetes``'s tests (a fixture): workloads' ``use``, and the
router's two reviews."""

CHAT: dict[str, Any] = {"model": "fake-model",
                        "messages": [{"role": "user", "content": "hi"}]}


def provider(name: str, namespace: str, url: str, model: str,
             **spec: Any) -> list[dict[str, Any]]:
    """An LLMProvider with its own key, and the Secret that holds the key."""
    return [
        {"apiVersion": "router.zoeyos.io/v1alpha1", "kind": "LLMProvider",
         "metadata": {"name": name, "namespace": namespace},
         "spec": {"baseURL": url, "capabilities": ["chat"], "models": [model, CHAT["model"]],
                  "healthCheck": {"enabled": False}, **spec,
                  "credentialsSecretRef": {"name": f"{name}-key", "key": "apiKey"}}},
        {"apiVersion": "v1", "kind": "Secret",
         "metadata": {"name": f"{name}-key", "namespace": namespace},
         "stringData": {"apiKey": f"sk-{name}-{secrets.token_hex(8)}"}}]


def policy(name: str, namespace: str, default: bool = True) -> dict[str, Any]:
    return {"apiVersion": "router.zoeyos.io/v1alpha1", "kind": "RoutingPolicy",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"default": default, "strategy": "Priority"}}


def sdk(url: str, credential: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=url + "/v1", api_key=credential, max_retries=0,
                              timeout=15.0, http_client=httpx.AsyncClient(trust_env=False))


async def chat(url: str, credential: str) -> tuple[str, str]:
    """``(x-router-policy, x-router-provider)`` of a chat completion through the SDK."""
    async with sdk(url, credential) as api:
        raw = await api.chat.completions.with_raw_response.create(**CHAT)
        assert raw.parse().choices[0].message.content
        return raw.headers["x-router-policy"], raw.headers["x-router-provider"]


async def models(url: str, credential: str) -> list[str]:
    async with sdk(url, credential) as api:
        return [model.id async for model in api.models.list()]


# -- --auth kubernetes, against the suite's real API server ------------------------------------


@pytest.fixture
def team_b(k8s: Any) -> Iterator[str]:
    """A second namespace, which has providers but no default policy."""
    with temporary_namespace(k8s.api_client, f"t-callerns-b-{uuid.uuid4().hex[:6]}") as name:
        yield name


@dataclass
class Fleet:
    url: str
    access: KubernetesAccess
    fakes: dict[str, FakeLLM]

    def reviews(self, kind: str) -> int:
        return sum(v for (k, _), v in self.access.metrics.reviews.items() if k == kind)


@asynccontextmanager
async def fleet(k8s: Any, team_a: str, team_b: str, roles: Roles,
                folder: Path) -> AsyncIterator[Fleet]:
    """A standalone proxy over providers in ``team_a`` (default policy ``team``), ``team_b``
    (only the non-default policy ``batch``) and ``default`` (default policy ``fallback``),
    checking callers with the real TokenReview and SubjectAccessReview."""
    fakes = {"alpha": FakeLLM("alpha"), "beta": FakeLLM("beta"), "shared": FakeLLM("shared")}
    async with fake_providers(*fakes.values()):
        write_docs(folder / "all.yaml",
                   *provider("alpha", team_a, fakes["alpha"].url, "model-a"),
                   policy("team", team_a),
                   *provider("beta", team_b, fakes["beta"].url, "model-b"),
                   policy("batch", team_b, default=False),
                   *provider("shared", "default", fakes["shared"].url, "model-d"),
                   policy("fallback", "default"))
        kubeconfig = router_kubeconfig(k8s, team_a, roles)
        access = KubernetesAccess(ReviewClient.load(str(kubeconfig), timeout=3.0),
                                  review_deadline=5.0)
        router = Standalone(folder, port=0, watch=False, probe_initial_delay=0.0,
                            access=access, proxy=FAST)
        await router.start()
        try:
            yield Fleet(router.url, access, fakes)
        finally:
            await router.stop()
            rbac = client.RbacAuthorizationV1Api(k8s.api_client)
            try:
                rbac.delete_cluster_role_binding(f"{roles.reviewer}-{team_a}"[:63])
            except ApiException as error:
                if error.status != 404:
                    raise


@pytest.mark.integration
async def test_service_accounts_land_on_their_namespaces_default_policy(
        k8s: Any, namespace: str, team_b: str, roles: Roles, tmp_path: Path) -> None:
    team_a = namespace
    bind(k8s, team_a, "worker", roles)
    # team-b has no default policy: its callers land on default's, and need RBAC there.
    in_default = bind(k8s, "default", "worker", roles, account_namespace=team_b)
    worker_a = mint(k8s, team_a, "worker")
    worker_b = mint(k8s, team_b, "worker")
    stranger_b = mint(k8s, team_b, "stranger")
    rbac = client.RbacAuthorizationV1Api(k8s.api_client)
    try:
        async with fleet(k8s, team_a, team_b, roles, tmp_path) as running:
            assert await chat(running.url, worker_a) == (f"{team_a}/team", f"{team_a}/alpha")
            [seen] = running.fakes["alpha"].calls("/v1/chat/completions")
            assert worker_a not in repr(seen.headers), "the caller's token never travels"
            assert await models(running.url, worker_a) == ["fake-model", "model-a"]

            assert await chat(running.url, worker_b) == ("default/fallback", "default/shared")
            assert await models(running.url, worker_b) == ["fake-model", "model-d"]
            assert not running.fakes["beta"].seen

            # Landing on default's policy is no way around RBAC: a caller needs 'use' there.
            with pytest.raises(openai.PermissionDeniedError) as refused:
                await chat(running.url, stranger_b)
            error = refused.value.body
            assert isinstance(error, dict)
            assert "default/fallback" in error["message"], error
            assert f"--serviceaccount={team_b}:stranger -n default" in error["message"]

            # /v1/route without a namespace follows the same rule.
            async with httpx.AsyncClient(base_url=running.url, trust_env=False,
                                         timeout=15.0) as http:
                for token, expected in ((worker_a, (team_a, "team", "alpha")),
                                        (worker_b, ("default", "fallback", "shared"))):
                    route = await http.get("/v1/route",
                                           headers={"authorization": f"Bearer {token}"})
                    assert route.status_code == 200, route.text
                    body = route.json()
                    assert (body["provider"]["namespace"], body["policy"],
                            body["provider"]["name"]) == expected
                # Naming the namespace still means that namespace, with its own RBAC.
                named = await http.get(f"/v1/route?namespace={team_b}&policy=batch",
                                       headers={"authorization": f"Bearer {worker_b}"})
                assert named.status_code == 403, named.text
                assert f"{team_b}/batch" in named.json()["error"]["message"]

            # The prefixed path is unchanged, and the identity was reviewed once per token.
            async with sdk(running.url + f"/proxy/{team_a}/team", worker_a) as api:
                raw = await api.chat.completions.with_raw_response.create(**CHAT)
                assert raw.headers["x-router-policy"] == f"{team_a}/team"
            assert running.reviews("TokenReview") == 3
    finally:
        try:
            rbac.delete_namespaced_role_binding(in_default, "default")
        except ApiException as error:
            if error.status != 404:
                raise


# -- --auth keys, in standalone mode ----------------------------------------------------------


def keys_secret(name: str, namespace: str | None, keys: dict[str, str],
                grants: dict[str, str]) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name, "labels": {KEYS_LABEL: "true"},
        "annotations": {POLICIES_ANNOTATION + k: v for k, v in grants.items()}}
    if namespace is not None:
        metadata["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "stringData": keys}


@dataclass
class Keyed:
    url: str
    keys: dict[str, str]
    fakes: dict[str, FakeLLM]


@asynccontextmanager
async def keyed(folder: Path, options: ProxyOptions = FAST) -> AsyncIterator[Keyed]:
    """Providers and default policies in ``team-a`` and ``default``; ``team-b`` has none.
    Keys: ``a`` in team-a's Secret, ``b`` and ``b-denied`` in team-b's, ``plain`` in a
    Secret whose manifest names no namespace (so ``default``)."""
    keys = {name: secrets.token_urlsafe(24) for name in ("a", "b", "b-denied", "plain")}
    fakes = {"alpha": FakeLLM("alpha"), "shared": FakeLLM("shared"),
             "claude": FakeLLM("claude")}
    async with fake_providers(*fakes.values()):
        write_docs(folder / "all.yaml",
                   *provider("alpha", "team-a", fakes["alpha"].url, "model-a"),
                   *provider("claude", "team-a", fakes["claude"].url, "claude-a",
                             apiFormat="anthropic"),
                   policy("team", "team-a"),
                   *provider("shared", "default", fakes["shared"].url, "model-d"),
                   policy("fallback", "default"),
                   keys_secret("keys", "team-a", {"a": keys["a"]}, {"a": "*"}),
                   keys_secret("keys", "team-b", {"b": keys["b"], "b-denied": keys["b-denied"]},
                               {"b": "default/fallback", "b-denied": "*"}),
                   keys_secret("plain-keys", None, {"plain": keys["plain"]}, {"plain": "*"}))
        router = Standalone(folder, port=0, watch=False, probe_initial_delay=0.0,
                            auth="keys", proxy=options)
        await router.start()
        try:
            yield Keyed(router.url, keys, fakes)
        finally:
            await router.stop()


async def test_api_keys_land_on_their_secrets_namespace_default_policy(tmp_path: Path) -> None:
    async with keyed(tmp_path) as env:
        assert await chat(env.url, env.keys["a"]) == ("team-a/team", "team-a/alpha")
        assert await models(env.url, env.keys["a"]) == ["fake-model", "model-a"]
        assert await chat(env.url, env.keys["b"]) == ("default/fallback", "default/shared")
        assert await chat(env.url, env.keys["plain"]) == ("default/fallback", "default/shared")
        with pytest.raises(openai.PermissionDeniedError) as refused:
            await chat(env.url, env.keys["b-denied"])
        assert "default/fallback" in str(refused.value)
        assert len(env.fakes["alpha"].calls("/v1/chat/completions")) == 1
        # Anthropic's SDK sends its key as x-api-key: the same key, the same namespace.
        async with anthropic.AsyncAnthropic(
                base_url=env.url, api_key=env.keys["a"], max_retries=0, timeout=15.0,
                http_client=anthropic.DefaultAsyncHttpxClient(trust_env=False)) as claude:
            raw = await claude.messages.with_raw_response.create(
                model="claude-a", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
            assert (raw.headers["x-router-policy"], raw.headers["x-router-provider"]) == (
                "team-a/team", "team-a/claude")
        async with httpx.AsyncClient(base_url=env.url, trust_env=False, timeout=15.0) as http:
            route = await http.get("/v1/route", headers={"x-api-key": env.keys["a"]})
            assert route.status_code == 200, route.text
            assert (route.json()["policy"], route.json()["provider"]["namespace"]) == (
                "team", "team-a")
            posted = await http.post("/v1/route", json={"capabilities": ["chat"]},
                                     headers={"authorization": f"Bearer {env.keys['a']}"})
            assert posted.status_code == 200, posted.text
            assert posted.json()["policy"] == "team"
            other = await http.get("/v1/route?namespace=default",
                                   headers={"authorization": f"Bearer {env.keys['a']}"})
            assert other.status_code == 403, other.text


async def test_without_a_default_anywhere_the_answer_names_both_namespaces(
        tmp_path: Path) -> None:
    async with keyed(tmp_path, replace(FAST, namespace="nowhere")) as env:
        assert await chat(env.url, env.keys["a"]) == ("team-a/team", "team-a/alpha")
        with pytest.raises(openai.NotFoundError) as missing:
            await chat(env.url, env.keys["b"])
        assert "'team-b' nor in 'nowhere'" in str(missing.value)
