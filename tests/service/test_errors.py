"""Bad input is a 400 naming the field; unknown things are 404s; nothing is ever a 500.

The last tests throw arbitrary bytes and JSON at the handlers (in process, for volume) and at
the running server (for the HTTP layer) and check that every answer is a well-formed error.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provider_router.engine import RoutingTable
from provider_router.service import Request, create_app

from .conftest import Api, FakeClock


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    assert set(error) == {"code", "message", "details"}
    return error


@pytest.fixture
def ready(api: Api) -> Api:
    api.add_provider("a")
    api.add_policy("p", default=True)
    return api


@pytest.mark.parametrize(("query", "field"), [
    ("explain=yes", "explain"),
    ("lease=1", "lease"),
    ("namespace=Not_A_Namespace", "namespace"),
    ("namespace=", "namespace"),
    ("policy=UPPER", "policy"),
    ("policy=", "policy"),
    ("capability=", "capability[0]"),
    ("capability=chat&capability=", "capability[1]"),
    ("model=" + "m" * 300, "model"),
    ("session=" + "s" * 2000, "session"),
    ("polcy=p", "polcy"),
    ("policy=p&policy=q", "policy"),
    ("capability=" + "c" * 64, "capability[0]"),
])
async def test_bad_route_parameters_are_400s_naming_the_field(ready: Api, query: str,
                                                              field: str) -> None:
    error = _error(await ready.client.get(f"/v1/route?{query}"), 400, "invalid_field")
    assert error["details"]["field"] == field
    assert error["message"].startswith(f"{field}: ")


@pytest.mark.parametrize(("body", "field"), [
    ({"capabilities": "chat"}, "capabilities"),
    ({"capabilities": ["chat", 7]}, "capabilities[1]"),
    ({"explain": "true"}, "explain"),
    ({"lease": 1}, "lease"),
    ({"stream": "yes"}, "stream"),
    ({"namespace": 5}, "namespace"),
    ({"policy": "p", "extra": 1}, "extra"),
    ([], "body"),
    ("just a string", "body"),
])
async def test_bad_route_bodies_are_400s_naming_the_field(ready: Api, body: Any,
                                                          field: str) -> None:
    response = await ready.client.post("/v1/route", json=body)
    assert _error(response, 400, "invalid_field")["details"]["field"] == field


@pytest.mark.parametrize(("body", "field"), [
    ({"leaseId": "x", "outcome": "meh"}, "outcome"),
    ({"leaseId": "x"}, "outcome"),
    ({"outcome": "success"}, "leaseId"),
    ({"leaseId": None, "provider": None, "outcome": "success"}, "leaseId"),
    ({"leaseId": "x", "outcome": "success", "latencyMs": -1}, "latencyMs"),
    ({"leaseId": "x", "outcome": "success", "latencyMs": 1e300}, "latencyMs"),
    ({"leaseId": "x", "outcome": "success", "latencyMs": "12"}, "latencyMs"),
    ({"leaseId": "x", "outcome": "success", "ttftMs": -0.5}, "ttftMs"),
    ({"leaseId": "x", "outcome": "success", "ttftMs": 1e300}, "ttftMs"),
    ({"leaseId": "x", "outcome": "success", "ttftMs": "12"}, "ttftMs"),
    ({"leaseId": "x", "outcome": "success", "inputTokens": 10**30}, "inputTokens"),
    ({"leaseId": "x", "outcome": "success", "outputTokens": -5}, "outputTokens"),
    ({"leaseId": "x", "outcome": "success", "outputTokens": 1.5}, "outputTokens"),
    ({"leaseId": "x", "outcome": "success", "statusCode": 1000}, "statusCode"),
    ({"leaseId": "x", "outcome": "success", "statusCode": True}, "statusCode"),
    ({"leaseId": "x", "outcome": "rate_limited", "retryAfterSeconds": -1},
     "retryAfterSeconds"),
    ({"leaseId": "x", "outcome": "rate_limited", "retryAfterSeconds": 1e9},
     "retryAfterSeconds"),
    ({"leaseId": "", "outcome": "success"}, "leaseId"),
    ({"provider": "Ünïcode", "outcome": "success"}, "provider"),
    ({"provider": "a", "namespace": "", "outcome": "success"}, "namespace"),
    ({"leaseId": "x", "outcome": "success", "costUSD": 1}, "costUSD"),
])
async def test_bad_reports_are_400s_naming_the_field(ready: Api, body: Any, field: str) -> None:
    error = _error(await ready.report(**body), 400, "invalid_field")
    assert error["details"]["field"] == field


@pytest.mark.parametrize("raw", [b"", b"{", b"not json", b"\xff\xfe{}", b'{"a": 1e999999}',
                                 b'{"leaseId": "\\ud800", "outcome": "success"}', b"[1,2"])
async def test_unparseable_report_bodies_are_invalid_json(ready: Api, raw: bytes) -> None:
    response = await ready.client.post("/v1/report", content=raw)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] in ("invalid_json", "invalid_field")
    assert error["details"]["field"]


async def test_unicode_is_data_not_a_crash(ready: Api) -> None:
    response = await ready.report(leaseId="λ-☃-\u0000-😀", outcome="success")
    assert _error(response, 404, "unknown_lease")["details"] == {"leaseId": "λ-☃-\u0000-😀"}
    response = await ready.route(model="模型-😀", session="sé\u0000ssion", lease=False)
    assert response.status_code == 200, response.text
    assert response.json()["provider"]["model"] == "模型-😀"
    response = await ready.client.get("/v1/route?model=%ff%fe&lease=false")
    assert response.status_code == 200, response.text


async def test_unknown_policy_is_a_404(ready: Api) -> None:
    error = _error(await ready.route(policy="nope"), 404, "unknown_policy")
    assert error["details"] == {"namespace": "default", "policy": "nope"}
    error = _error(await ready.route(namespace="elsewhere"), 404, "unknown_policy")
    assert error["details"] == {"namespace": "elsewhere", "policy": None}
    assert "no a default policy" not in error["message"]


async def test_unknown_lease_and_unknown_provider_are_404s(ready: Api) -> None:
    _error(await ready.report(leaseId="no-such-lease", outcome="error"), 404, "unknown_lease")
    error = _error(await ready.report(provider="ghost", namespace="default", outcome="error"),
                   404, "unknown_provider")
    assert error["details"] == {"namespace": "default", "provider": "ghost"}


async def test_wrong_method_is_405_with_allow_and_unknown_path_is_404(ready: Api) -> None:
    response = await ready.client.delete("/v1/route")
    error = _error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "GET, POST"
    assert error["details"]["allow"] == ["GET", "POST"]
    response = await ready.client.get("/v1/report")
    assert response.headers["allow"] == "POST"
    _error(response, 405, "method_not_allowed")
    _error(await ready.client.put("/healthz"), 405, "method_not_allowed")
    _error(await ready.client.get("/v1/routes"), 404, "not_found")
    _error(await ready.client.get("/"), 404, "not_found")


async def test_a_body_over_the_limit_is_413(ready: Api) -> None:
    big = b'{"leaseId": "' + b"x" * (2 << 20) + b'", "outcome": "success"}'
    response = await ready.client.post("/v1/report", content=big)
    assert _error(response, 413, "payload_too_large")["details"]["field"] == "body"


# -- no input produces a 500 ---------------------------------------------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                 max_size=6),
    max_leaves=12)
_report_like = st.fixed_dictionaries({}, optional={
    "leaseId": _json_values, "provider": _json_values, "namespace": _json_values,
    "policy": _json_values, "outcome": st.sampled_from(
        ["success", "error", "timeout", "rate_limited", "other"]) | _json_values,
    "latencyMs": _json_values, "statusCode": _json_values, "retryAfterSeconds": _json_values,
    "inputTokens": _json_values, "outputTokens": _json_values})
_route_like = st.fixed_dictionaries({}, optional={
    "policy": _json_values, "namespace": _json_values, "capabilities": _json_values,
    "model": _json_values, "session": _json_values, "explain": _json_values,
    "lease": _json_values})
_query_keys = st.sampled_from(["policy", "namespace", "capability", "model", "session",
                               "explain", "lease", "x"])


def _in_process_app() -> Any:
    from .conftest import provider_spec

    table = RoutingTable(clock=FakeClock())
    table.upsert_provider("default", "a", provider_spec("a", maxConcurrent=2), {})
    from provider_router.api import RoutingPolicySpec

    table.upsert_policy("default", "p", RoutingPolicySpec.model_validate({"default": True}))
    return create_app(table)


_APP = _in_process_app()


def _check(status: int, kind: bytes, body: bytes) -> None:
    assert status < 500 or status == 503, body
    assert kind == b"application/json"
    parsed = json.loads(body)
    if status >= 400:
        assert set(parsed["error"]) == {"code", "message", "details"}


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=st.one_of(_report_like.map(json.dumps).map(str.encode), st.binary(max_size=200)))
def test_any_report_body_gets_a_json_answer_below_500(body: bytes) -> None:
    status, kind, payload, _ = _APP.handle(Request("POST", "/v1/report", b"", body))
    _check(status, kind, payload)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=st.one_of(_route_like.map(json.dumps).map(str.encode), st.binary(max_size=200)))
def test_any_route_body_gets_a_json_answer_below_500(body: bytes) -> None:
    status, kind, payload, _ = _APP.handle(Request("POST", "/v1/route", b"", body))
    _check(status, kind, payload)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(pairs=st.lists(st.tuples(_query_keys, st.text(max_size=30)), max_size=6),
       raw=st.binary(max_size=60))
def test_any_route_query_gets_a_json_answer_below_500(pairs: list[tuple[str, str]],
                                                      raw: bytes) -> None:
    from urllib.parse import urlencode

    for query in (urlencode(pairs).encode(), raw):
        status, kind, payload, _ = _APP.handle(Request("GET", "/v1/route", query))
        _check(status, kind, payload)
        status, kind, payload, _ = _APP.handle(Request("GET", "/v1/providers", query))
        _check(status, kind, payload)


async def test_malformed_bodies_through_the_real_server(ready: Api) -> None:
    bodies = [b"\x00" * 64, b"{" * 10_000, b'{"outcome": "success", "leaseId": ' + b"9" * 5000
              + b"}", "{\"leaseId\": \"\u2028\", \"outcome\": \"error\"}".encode(),
              b'{"outcome":"success","provider":"a","latencyMs":-0.0}']
    for body in bodies:
        for path in ("/v1/report", "/v1/route"):
            response = await ready.client.post(path, content=body,
                                               headers={"content-type": "text/plain"})
            assert response.status_code < 500, (path, body[:40], response.text)
            assert "error" in response.json() or response.status_code == 200
