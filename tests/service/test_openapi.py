"""``/openapi.json`` parses, documents every endpoint, and its references all resolve."""

from __future__ import annotations

from typing import Any

from provider_router.service import openapi_document

from .conftest import Api

ENDPOINTS = {
    "/v1/route": {"get", "post"},
    "/v1/report": {"post"},
    "/v1/providers": {"get"},
    "/v1/policies": {"get"},
    "/healthz": {"get"},
    "/readyz": {"get"},
    "/metrics": {"get"},
    "/openapi.json": {"get"},
}


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


async def test_the_document_is_served_and_complete(api: Api) -> None:
    response = await api.client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert document == openapi_document()
    assert document["openapi"].startswith("3.1")
    assert {path: set(ops) for path, ops in document["paths"].items()} == ENDPOINTS
    schemas = document["components"]["schemas"]
    for ref in _refs(document):
        assert ref.startswith("#/components/schemas/")
        assert ref.rsplit("/", 1)[1] in schemas, ref
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation["operationId"]
            assert "200" in operation["responses"], (path, method)
            for status, answer in operation["responses"].items():
                assert answer["content"], (path, method, status)
                if status.startswith(("4", "5")):
                    assert answer["content"]["application/json"]["schema"] == {
                        "$ref": "#/components/schemas/ErrorOut"}


async def test_route_parameters_and_bodies_are_documented(api: Api) -> None:
    document = (await api.client.get("/openapi.json")).json()
    get = document["paths"]["/v1/route"]["get"]
    assert {p["name"] for p in get["parameters"]} == {
        "policy", "namespace", "capability", "model", "session", "explain", "lease"}
    assert set(get["responses"]) == {"200", "400", "401", "403", "404", "503"}
    capability = next(p for p in get["parameters"] if p["name"] == "capability")
    assert capability["schema"]["type"] == "array"
    assert capability["explode"] is True
    route_input = document["components"]["schemas"]["RouteInput"]
    assert set(route_input["properties"]) == {
        "policy", "namespace", "capabilities", "model", "session", "explain", "lease"}
    assert route_input["additionalProperties"] is False
    report_input = document["components"]["schemas"]["ReportInput"]
    assert report_input["required"] == ["outcome"]
    assert set(report_input["properties"]) == {
        "leaseId", "provider", "namespace", "policy", "outcome", "latencyMs", "statusCode",
        "retryAfterSeconds", "inputTokens", "outputTokens"}
    assert {tuple(branch["required"]) for branch in report_input["anyOf"]} == {
        ("leaseId",), ("provider",)}
    error = document["components"]["schemas"]["ErrorBody"]
    assert set(error["required"]) == {"code", "message", "details"}
