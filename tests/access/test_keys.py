"""``--auth keys``: a standalone router over manifests with a labelled Secret of API keys.

Keys are allowed their policies and refused the rest (401 without a valid key, 403 naming the
policy and the annotation to edit), rotate by editing the manifests (hot reload), and never
appear in an answer, a log record or the metrics.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import generate_latest

from provider_router.access import KEYS_LABEL, POLICIES_ANNOTATION, KeysAccess, parse_grants
from provider_router.demo import MockProvider
from provider_router.standalone import Standalone
from standalone.router_harness import eventually, policy_doc, provider_doc, write_docs


def keys_doc(keys: dict[str, str], grants: dict[str, str], name: str = "api-keys",
             labelled: bool = True) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name,
                         "labels": {KEYS_LABEL: "true"} if labelled else {},
                         "annotations": {POLICIES_ANNOTATION + k: v for k, v in grants.items()}},
            "stringData": keys}


@dataclass
class KeyedEnv:
    router: Standalone
    folder: Path
    http: httpx.AsyncClient
    keys: dict[str, str]
    seen: list[str]

    async def call(self, method: str, path: str, key: str | None = None,
                   **kwargs: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {key}"} if key is not None else {}
        response = await self.http.request(method, path, headers=headers, **kwargs)
        self.seen.append(f"{response.status_code} {response.headers} {response.text}")
        return response

    def write_keys(self, keys: dict[str, str], grants: dict[str, str]) -> None:
        write_docs(self.folder / "keys.yaml", keys_doc(keys, grants))


@pytest.fixture
async def keyed(tmp_path: Path) -> AsyncIterator[KeyedEnv]:
    alpha = MockProvider("alpha")
    await alpha.start()
    folder = tmp_path / "manifests"
    folder.mkdir()
    keys = {"batch": secrets.token_urlsafe(32), "other": secrets.token_urlsafe(32)}
    write_docs(folder / "providers.yaml", provider_doc("alpha", alpha.url))
    write_docs(folder / "policy.yaml", policy_doc("main"),
               policy_doc("premium", default=False))
    write_docs(folder / "keys.yaml", keys_doc(keys, {"batch": "main, premium",
                                                     "other": "default/premium"}))
    router = Standalone(folder, port=0, probe_initial_delay=0.0, debounce_ms=50, auth="keys")
    await router.start()
    try:
        async with httpx.AsyncClient(base_url=router.url, trust_env=False,
                                     timeout=10.0) as http:
            yield KeyedEnv(router, folder, http, keys, [])
    finally:
        await router.stop()
        await alpha.stop()


async def test_a_key_routes_and_reports_its_policies(keyed: KeyedEnv) -> None:
    route = await keyed.call("GET", "/v1/route", keyed.keys["batch"])
    assert route.status_code == 200, route.text
    assert route.json()["policy"] == "main"
    report = await keyed.call("POST", "/v1/report", keyed.keys["batch"],
                              json={"leaseId": route.json()["leaseId"], "outcome": "success"})
    assert report.status_code == 200, report.text
    premium = await keyed.call("GET", "/v1/route?policy=premium", keyed.keys["other"])
    assert premium.status_code == 200, premium.text
    # Anthropic's SDK sends its key as x-api-key.
    anthropic = await keyed.http.get("/v1/route", headers={"x-api-key": keyed.keys["batch"]})
    assert anthropic.status_code == 200, anthropic.text


async def test_refusals_say_why(keyed: KeyedEnv) -> None:
    for key in (None, "not-a-key", keyed.keys["batch"] + "x"):
        answer = await keyed.call("GET", "/v1/route", key)
        assert answer.status_code == 401, answer.text
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert answer.json()["error"]["code"] == "unauthenticated"
    malformed = await keyed.http.get("/v1/route", headers={"authorization": "Basic abc"})
    assert malformed.status_code == 401
    forbidden = await keyed.call("GET", "/v1/route?policy=main", keyed.keys["other"])
    assert forbidden.status_code == 403, forbidden.text
    error = forbidden.json()["error"]
    assert error["code"] == "forbidden"
    assert "default/main" in error["message"]
    assert error["details"]["policy"] == "main"
    assert error["details"]["permission"]["verb"] == "use"
    assert error["details"]["annotation"] == POLICIES_ANNOTATION + "other"
    assert error["details"]["key"] == "default/api-keys/other"


async def test_open_endpoints_need_no_key(keyed: KeyedEnv) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/v1/providers",
                 "/v1/policies"):
        answer = await keyed.call("GET", path)
        assert answer.status_code == 200, (path, answer.text)


async def test_a_refused_report_changes_nothing(keyed: KeyedEnv) -> None:
    for _ in range(5):
        refused = await keyed.call("POST", "/v1/report", keyed.keys["other"],
                                   json={"provider": "alpha", "namespace": "default",
                                         "policy": "main", "outcome": "error",
                                         "inputTokens": 100000, "outputTokens": 100000})
        assert refused.status_code == 403, refused.text
        anonymous = await keyed.call("POST", "/v1/report",
                                     json={"provider": "alpha", "namespace": "default",
                                           "outcome": "error"})
        assert anonymous.status_code == 401
    providers = (await keyed.call("GET", "/v1/providers")).json()["providers"]
    assert [p["circuit"] for p in providers] == ["Closed"]
    policies = {p["name"]: p for p in (await keyed.call("GET", "/v1/policies")).json()
                ["policies"]}
    assert policies["main"]["spendUSD"]["total"] == 0
    assert [p["spendUSD"] for p in providers] == [0]


async def test_keys_rotate_by_hot_reload(keyed: KeyedEnv) -> None:
    old = keyed.keys["batch"]
    new = secrets.token_urlsafe(32)
    keyed.write_keys({"batch": new}, {"batch": "main"})

    async def rotated() -> bool:
        return (await keyed.call("GET", "/v1/route", old)).status_code == 401

    await eventually(rotated, timeout=10.0)
    assert (await keyed.call("GET", "/v1/route", new)).status_code == 200
    # Revoking a grant also takes effect on reload.
    keyed.write_keys({"batch": new}, {"batch": "premium"})

    async def revoked() -> bool:
        return (await keyed.call("GET", "/v1/route?policy=main", new)).status_code == 403

    await eventually(revoked, timeout=10.0)


async def test_keys_are_never_logged_answered_or_counted(
        keyed: KeyedEnv, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    values = list(keyed.keys.values())
    for key in [*values, "wrong", None]:
        await keyed.call("GET", "/v1/route", key)
        await keyed.call("GET", "/v1/route?policy=premium", key)
        await keyed.call("POST", "/v1/report", key, json={"provider": "alpha",
                                                          "outcome": "success"})
    keyed.write_keys({"batch": values[0], "broken": ""}, {"batch": "main, a/b/c",
                                                          "ghost": "main"})
    # The reload's warnings name keys and annotations, never values.
    await eventually(lambda: any("ghost" in r.getMessage() for r in caplog.records),
                     timeout=10.0)
    texts = [*keyed.seen, generate_latest(keyed.router.metrics.registry).decode(),
             *(f"{r.getMessage()} {r.args!r} {r.__dict__!r}" for r in caplog.records)]
    for value in values:
        assert not any(value in text for text in texts)
    metrics = generate_latest(keyed.router.metrics.registry).decode()
    assert 'provider_router_authn_results_total{mode="keys",outcome="authenticated"}' in metrics
    assert 'provider_router_authz_results_total{mode="keys",outcome="denied"}' in metrics


def test_unlabelled_secrets_hold_no_keys() -> None:
    import yaml

    from provider_router.manifests import parse_manifests

    text = yaml.safe_dump_all([keys_doc({"k": "v" * 20}, {"k": "*"}, labelled=False)])
    access = KeysAccess(parse_manifests(text).secrets.values())
    assert access.count == 0


def test_grants_read_names_namespaces_and_wildcards() -> None:
    grants, bad = parse_grants(" chat, team-b/embed ,*, team-c/*, a/b/c, */x,", "team-a")
    assert grants == {("team-a", "chat"), ("team-b", "embed"), ("team-a", "*"),
                      ("team-c", "*")}
    assert bad == ["a/b/c", "*/x"]
