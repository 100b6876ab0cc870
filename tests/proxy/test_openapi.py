"""``/openapi.json`` describes the proxy paths when, and only when, the proxy is mounted.

As for the route API (tests/service/test_openapi.py), nothing is restated here: every
documented proxy path is routed with exactly its documented methods, and every answer the
document lists for a proxy path (each status, each content type) is provoked for real against
local provider servers and validated against its schema and required headers. The answers
seen must be exactly the answers documented.

One routing table holds a namespace per situation (a healthy provider, one that cannot be
reached, one that hangs, one that answers with an error of its own, a policy with no
providers, no policy at all), and one route server per namespace serves it as its proxy
namespace, so that the unprefixed paths (the default policy of the proxy's namespace) reach
every situation too.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import yaml

from provider_router.access import KEYS_LABEL, POLICIES_ANNOTATION, KeysAccess
from provider_router.api import LLMProviderSpec, RoutingPolicySpec
from provider_router.engine import RoutingTable
from provider_router.manifests import parse_manifests
from provider_router.proxy import ENDPOINTS, PREFIX, Proxy
from provider_router.service import Access, RouteService, Server, openapi_document
from proxy.conftest import FAST, free_port
from support.fake_llm import FakeLLM, fake_providers
from support.openapi import Answer, Document, check, documented

KEY = "k" * 24
"""An API key that may use only another policy: 403."""
TOO_LARGE = b"{" + b" " * (1 << 20) + b"}"
"""Past the proxy's body limit, which these servers set to the route API's (1 MiB)."""

FAILOVER_OFF = {"failover": {"enabled": False}}
"""Open circuits are ignored: a failing provider is tried again, and fails the same way."""


@dataclass
class Router:
    service: RouteService
    server: Server
    client: httpx.AsyncClient


def _spec(url: str, api_format: str) -> LLMProviderSpec:
    return LLMProviderSpec.model_validate({
        "baseURL": url, "apiFormat": api_format, "capabilities": ["chat"],
        "healthCheck": {"enabled": False}})


def _add(table: RoutingTable, namespace: str, url: str | None, **policy: Any) -> None:
    """A namespace with an OpenAI- and an Anthropic-format provider at ``url`` (none if
    None) and a default policy ``main``."""
    if url is not None:
        for api_format in ("openai", "anthropic"):
            table.upsert_provider(namespace, api_format, _spec(url, api_format), {})
    table.upsert_policy(namespace, "main", RoutingPolicySpec.model_validate(
        {"default": True, "strategy": "Priority", **policy}))


def _keys() -> Access:
    secret = {"apiVersion": "v1", "kind": "Secret",
              "metadata": {"name": "keys", "namespace": "ok", "labels": {KEYS_LABEL: "true"},
                           "annotations": {POLICIES_ANNOTATION + "other": "elsewhere"}},
              "stringData": {"other": KEY}}
    return KeysAccess(parse_manifests(yaml.safe_dump(secret)).secrets.values())


@contextlib.asynccontextmanager
async def routers() -> AsyncIterator[dict[str, Router]]:
    """A route server with the proxy mounted per situation, by situation."""
    ok = FakeLLM("ok")
    slow = FakeLLM("slow", behaviour="hang")
    busy = FakeLLM("busy", behaviour="status", status=409)
    async with fake_providers(ok, slow, busy), contextlib.AsyncExitStack() as stack:
        table = RoutingTable()
        _add(table, "ok", ok.url)
        _add(table, "down", f"http://127.0.0.1:{free_port()}", **FAILOVER_OFF)
        _add(table, "slow", slow.url, **FAILOVER_OFF)
        _add(table, "busy", busy.url)
        _add(table, "none", None)
        table.upsert_policy("bare", "other", RoutingPolicySpec())  # no default policy
        options = replace(FAST, max_body_bytes=1 << 20)
        quick = replace(options, first_byte_seconds=0.3, deadline_seconds=0.5)
        out: dict[str, Router] = {}
        for name, namespace, access in (("ok", "ok", None), ("down", "down", None),
                                        ("slow", "slow", None), ("busy", "busy", None),
                                        ("none", "none", None), ("bare", "bare", None),
                                        ("auth", "ok", _keys())):
            service = RouteService(table, access=access)
            proxy = Proxy(service, credential_for=None, options=replace(
                quick if name == "slow" else options, namespace=namespace))
            proxy.mount()
            stack.push_async_callback(proxy.close)
            server = await stack.enter_async_context(Server(service, "127.0.0.1", 0))
            client = await stack.enter_async_context(httpx.AsyncClient(
                base_url=server.url, timeout=10.0, trust_env=False))
            out[name] = Router(service, server, client)
        yield out


def _proxy_part(document: Document) -> set[Answer]:
    return documented(document) - documented(openapi_document())


async def test_the_document_has_the_proxy_paths_only_when_the_proxy_is_mounted() -> None:
    table = RoutingTable()
    service = RouteService(table)
    plain = service.openapi()
    assert plain == openapi_document()
    Proxy(service, credential_for=None).mount()
    document = service.openapi()
    added = set(document["paths"]) - set(plain["paths"])
    assert added == set(ENDPOINTS) | {f"{PREFIX}{{namespace}}/{{policy}}{path}"
                                      for path in ENDPOINTS}
    assert set(document["paths"]) >= set(plain["paths"])
    # Every exact path the server routes is documented, and nothing else.
    assert {p for p in document["paths"] if "{" not in p} == set(service.endpoints())
    async with Server(service, "127.0.0.1", 0) as server, httpx.AsyncClient(
            base_url=server.url, timeout=10.0, trust_env=False) as client:
        served = (await client.get("/openapi.json")).json()
    assert served == document


async def test_documented_proxy_paths_and_methods_are_exactly_what_is_routed() -> None:
    async with routers() as by:
        router = by["ok"]
        document = router.service.openapi()
        for path in {p for p, _, _, _ in _proxy_part(document)}:
            concrete = path.replace("{namespace}", "ok").replace("{policy}", "main")
            response = await router.client.request("PATCH", concrete)
            assert response.status_code == 405, (path, response.text)
            allowed = {m.strip().lower() for m in response.headers["allow"].split(",")}
            assert allowed == set(document["paths"][path]), path
        for near in ("/v1/chat", "/v1/message", "/proxy/ok/main/v1/chat",
                     "/proxy/ok/main/v2/models", "/proxy/ok/v1/models"):
            response = await router.client.post(near, json={})
            assert response.status_code == 404, near
            assert response.json()["error"]["code"] == "not_found", near


async def test_every_documented_proxy_answer_is_real_and_matches_its_schema() -> None:
    async with routers() as by:
        document = by["ok"].service.openapi()
        wanted = _proxy_part(document)
        observed: set[Answer] = set()
        for path, method in sorted({(p, m) for p, m, _, _ in wanted}):
            answers = document["paths"][path][method]["responses"]
            for status in answers:
                for media in answers[status]["content"]:
                    response = await _provoke(by, path, method, status, media)
                    seen = check(document, response, method)
                    assert seen == (path, method, status, media), (seen, response.text[:300])
                    observed.add(seen)
        assert observed == wanted
        # The 409 came from the provider, relayed as it sent it; the router's own errors
        # are in the SDK's shape: Anthropic's on /v1/messages, OpenAI's elsewhere.
        anthropic = await by["none"].client.post("/v1/messages", json={"model": "m"})
        assert anthropic.json()["type"] == "error"
        openai = await by["none"].client.post("/v1/completions", json={"model": "m"})
        assert openai.json()["error"]["type"] == "server_error"


_SITUATION = {"200": "ok", "400": "ok", "401": "auth", "403": "auth", "404": "bare",
              "405": "ok", "413": "ok", "502": "down", "503": "none", "504": "slow",
              "default": "busy"}
"""Which router gives each documented answer."""


async def _provoke(by: dict[str, Router], path: str, method: str, status: str,
                   media: str) -> httpx.Response:
    """One real request that the document says gets ``status`` with ``media``."""
    situation = _SITUATION[status]
    namespace = {"auth": "ok", "bare": "ok"}.get(situation, situation)
    policy = "nope" if status == "404" else "main"  # under the prefix: an unknown name
    url = path.replace("{namespace}", namespace).replace("{policy}", policy)
    client = by[situation].client
    if status == "405":
        return await client.request("PATCH", url)
    headers = {"authorization": "Bearer " + KEY} if status == "403" else {}
    if method == "get":
        return await client.get(url, headers=headers)
    if status == "400":
        return await client.post(url, content=b"{not json", headers=headers)
    if status == "413":
        return await client.post(url, content=TOO_LARGE, headers=headers)
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}],
            "stream": media == "text/event-stream"}
    return await client.post(url, json=body, headers=headers)


async def test_the_schema_check_rejects_an_answer_in_the_wrong_shape() -> None:
    # The validation above must be able to fail: the route API's error shape on an
    # Anthropic path, an error status with no routed headers where they are required, and
    # an event stream where the document lists none.
    service = RouteService(RoutingTable())
    Proxy(service, credential_for=None).mount()
    document = service.openapi()
    route_shaped = b'{"error": {"code": "payload_too_large", "message": "x", "details": {}}}'
    cases = [
        ("POST", "/proxy/ns/p/v1/messages", 413, route_shaped, "application/json", {}),
        ("POST", "/v1/chat/completions", 502, b'{"error": {"message": "x", "type": "t"}}',
         "application/json", {}),
        ("GET", "/v1/models", 200, b"data: {}\n\n", "text/event-stream", {}),
    ]
    for method, path, status, body, media, headers in cases:
        request = httpx.Request(method, "http://router.test" + path)
        response = httpx.Response(status, request=request, content=body,
                                  headers={"content-type": media, **headers})
        try:
            check(document, response)
        except AssertionError:
            continue
        raise AssertionError(f"{method} {path} {status} passed the check")
