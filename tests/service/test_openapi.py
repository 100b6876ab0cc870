"""``/openapi.json`` describes the server that serves it.

Both directions are checked against the running server, not against a list restated here:
each documented path is routed with exactly the documented methods (a 405's ``Allow`` header
is the server's own list), and every documented answer of every operation is provoked for real
(200, 400, 404, 413, 503) and validated against the schema the document gives for that status
and content type. A new endpoint or answer therefore fails here until it is documented, and a
documented answer the server cannot give fails too.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import jsonschema_rs
import pytest

from provider_router.service import Server, create_app, openapi_document
from support.openapi import Answer, Document, check, documented

from .conftest import NS, Api

_UNROUTED = ("/", "/v1", "/v1/", "/v1/route/", "/v1/routes", "/v2/route", "/openapi.yaml",
             "/healthz/x", "/V1/ROUTE", "/v1/chat/completions", "/v1/models",
             "/proxy/default/main/v1/models")
"""Near misses of the documented paths, and the proxy's (not mounted here): the server must
not route any of them."""


async def test_the_served_document_is_the_one_the_code_builds(api: Api) -> None:
    response = await api.client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert document == openapi_document()
    assert document["openapi"].startswith("3.1")
    # A 3.1 document's schemas are JSON Schema 2020-12: each one compiles.
    for name, schema in document["components"]["schemas"].items():
        jsonschema_rs.validator_for({**schema, "components": document["components"]})
        assert name


async def test_documented_paths_and_methods_are_exactly_what_is_routed(api: Api) -> None:
    document = openapi_document()
    for path, operations in document["paths"].items():
        # A method no endpoint has: the 405 names the methods this path really routes.
        response = await api.client.request("PATCH", path)
        assert response.status_code == 405, (path, response.text)
        allowed = {m.strip().lower() for m in response.headers["allow"].split(",")}
        assert allowed == set(operations), path
        for method in operations:
            answered = await api.client.request(method.upper(), path)
            assert answered.status_code != 405, (method, path)
            if answered.status_code == 404:  # e.g. no default policy: not "no endpoint"
                assert answered.json()["error"]["code"] != "not_found", (method, path)
    for path in _UNROUTED:
        response = await api.client.get(path)
        assert response.status_code == 404, path
        _assert_error_body(response, "not_found")


async def test_a_mounted_endpoint_is_served_and_documented_by_whoever_mounts_it(
        api: Api) -> None:
    before = api.app.openapi()
    assert before == openapi_document()
    api.app.add_route("/v1/extra", "GET", lambda request: (200, b"application/json",
                                                           b"{}", ()))
    api.app.document({"/v1/extra": {"get": {"operationId": "extra", "responses": {
        "200": {"description": "Extra.", "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Extra"}}}}}}}},
        {"Extra": {"type": "object"}})
    served = (await api.client.get("/openapi.json")).json()
    assert served == api.app.openapi()
    assert set(served["paths"]) == set(before["paths"]) | {"/v1/extra"}
    assert check(served, await api.client.get("/v1/extra")) == (
        "/v1/extra", "get", "200", "application/json")
    with pytest.raises(ValueError, match="already documented"):
        api.app.document({}, {"Extra": {}})


def _assert_error_body(response: httpx.Response, code: str) -> None:
    error = response.json()["error"]
    assert error["code"] == code, error


async def test_every_documented_answer_is_real_and_matches_its_schema(api: Api) -> None:
    document = openapi_document()
    api.add_provider("alpha", capabilities=["chat"])
    api.add_policy("main", default=True)
    too_large = b"{" + b" " * (1 << 20) + b"}"  # past the 1 MiB body limit
    get, post = api.client.get, api.client.post
    lease = (await api.route_ok(policy="main"))["leaseId"]
    assert lease

    calls: list[Callable[[], Awaitable[httpx.Response]]] = [
        lambda: get("/v1/route", params={"policy": "main", "explain": "true"}),
        lambda: get("/v1/route", params={"explain": "maybe"}),
        lambda: get("/v1/route", params={"policy": "no-such-policy"}),
        lambda: get("/v1/route", params={"capability": "time-travel"}),
        lambda: post("/v1/route", json={"policy": "main", "lease": False}),
        lambda: post("/v1/route", content=b"{not json"),
        lambda: post("/v1/route", json={"policy": "no-such-policy"}),
        lambda: post("/v1/route", json={"capabilities": ["time-travel"]}),
        lambda: post("/v1/route", content=too_large),
        lambda: post("/v1/report", json={"leaseId": lease, "outcome": "success",
                                         "latencyMs": 12}),
        lambda: post("/v1/report", json={"outcome": "success"}),
        lambda: post("/v1/report", json={"leaseId": lease, "outcome": "success"}),  # spent
        lambda: post("/v1/report", content=too_large),
        lambda: get("/v1/providers", params={"namespace": NS}),
        lambda: get("/v1/providers", params={"namespace": "Not_A_Namespace!"}),
        lambda: get("/v1/policies"),
        lambda: get("/v1/policies", params={"colour": "blue"}),
        lambda: get("/healthz"),
        lambda: get("/readyz"),
        lambda: get("/metrics"),
        lambda: get("/openapi.json"),
    ]
    observed = {check(document, await call()) for call in calls}
    observed |= await _not_ready_answers(api.table, document)
    observed |= await _refused_answers(api.table, document)
    assert observed == documented(document)


async def _not_ready_answers(table: Any, document: Document) -> set[Answer]:
    """``/readyz``'s 503 comes from an app whose table has not synced yet."""
    app = create_app(table, readiness=lambda: (False, {"tableSynced": False}))
    async with Server(app, "127.0.0.1", 0) as server, httpx.AsyncClient(
            base_url=server.url, timeout=10.0) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    return {check(document, response)}


async def _refused_answers(table: Any, document: Document) -> set[Answer]:
    """401 and 403 come from an app that checks callers (API keys: no cluster needed)."""
    import yaml

    from provider_router.access import KEYS_LABEL, POLICIES_ANNOTATION, KeysAccess
    from provider_router.manifests import parse_manifests

    secret = {"apiVersion": "v1", "kind": "Secret",
              "metadata": {"name": "keys", "namespace": NS, "labels": {KEYS_LABEL: "true"},
                           "annotations": {POLICIES_ANNOTATION + "other": "elsewhere"}},
              "stringData": {"other": "k" * 24}}
    access = KeysAccess(parse_manifests(yaml.safe_dump(secret)).secrets.values())
    app = create_app(table, access=access)
    answers: set[Answer] = set()
    async with Server(app, "127.0.0.1", 0) as server, httpx.AsyncClient(
            base_url=server.url, timeout=10.0) as client:
        for headers in ({}, {"authorization": "Bearer " + "k" * 24}):
            refused = [
                await client.get("/v1/route", params={"policy": "main"}, headers=headers),
                await client.post("/v1/route", json={"policy": "main"}, headers=headers),
                await client.post("/v1/report", headers=headers, json={
                    "provider": "alpha", "namespace": NS, "policy": "main",
                    "outcome": "success"})]
            assert {r.status_code for r in refused} == {403 if headers else 401}
            answers |= {check(document, r) for r in refused}
    return answers


@pytest.mark.parametrize(("status", "body"), [
    (200, {"error": "not a route answer"}),
    (503, {"error": {"code": "no_provider_available"}}),
])
async def test_the_schema_check_rejects_a_wrong_body(status: int, body: Any) -> None:
    # The validation above must be able to fail: the same check on made-up bodies.
    document = openapi_document()
    request = httpx.Request("GET", "http://router.test/v1/route")
    response = httpx.Response(status, request=request, content=json.dumps(body).encode(),
                              headers={"content-type": "application/json"})
    with pytest.raises(AssertionError):
        check(document, response)
