"""The OpenAPI 3.1 document served at ``/openapi.json``: the route API's part.

Paths, parameters and responses are written out here by hand, because the app has no framework
to derive them; the schemas of bodies and answers come from the pydantic models the app
validates and answers with, so they cannot disagree with the server. Endpoints that other
packages mount (the proxy's) are added by them when they mount (``RouteService.document``),
so the document lists only what the server serves. The tests fuzz the running server against
this document, and provoke every answer it lists.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from provider_router.service._models import (
    NAMESPACE,
    OBJECT_NAME,
    ErrorOut,
    HealthOut,
    PoliciesOut,
    ProvidersOut,
    ReadyOut,
    ReportInput,
    ReportOut,
    RouteInput,
    RouteOut,
)

REF = "#/components/schemas/{model}"

_MODELS: list[tuple[type[BaseModel], JsonSchemaMode]] = [
    (RouteInput, "validation"),
    (ReportInput, "validation"),
    (RouteOut, "serialization"),
    (ReportOut, "serialization"),
    (ProvidersOut, "serialization"),
    (PoliciesOut, "serialization"),
    (ErrorOut, "serialization"),
    (HealthOut, "serialization"),
    (ReadyOut, "serialization"),
]


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _json(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": _ref(model)}}}


def _error(description: str) -> dict[str, Any]:
    return _json(ErrorOut, description)


_TOO_LARGE = _error("The body is larger than the server accepts.")
_BAD_INPUT = _error("Bad input; `error.details.field` names the offending field.")


def _query(name: str, schema: dict[str, Any], description: str,
           **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description, **extra}


def _name_param(name: str, description: str) -> dict[str, Any]:
    return _query(name, {"type": "string", "minLength": 1, "maxLength": 253,
                         "pattern": OBJECT_NAME}, description)


def _namespace_param(description: str, default: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 63,
                              "pattern": NAMESPACE}
    if default is not None:
        schema["default"] = default
    return _query("namespace", schema, description)


_ROUTE_PARAMS = [
    _name_param("policy", "RoutingPolicy name; unset means the namespace's default policy."),
    _namespace_param("Namespace of the policy.", default="default"),
    _query("capability", {"type": "array", "maxItems": 64,
                          "items": {"type": "string", "minLength": 1, "maxLength": 63}},
           "A capability the provider must have; repeat for several.",
           style="form", explode=True),
    _query("model", {"type": "string", "minLength": 1, "maxLength": 253},
           "Model the provider must serve."),
    _query("session", {"type": "string", "minLength": 1, "maxLength": 1024},
           "Session key: the same key reaches the same provider while it is eligible."),
    _query("explain", {"type": "boolean", "default": False},
           "Add the reasons of every candidate (`true` or `false`)."),
    _query("lease", {"type": "boolean", "default": True},
           "Take a lease that reporting the outcome releases (`true` or `false`)."),
    _query("stream", {"type": "boolean", "default": False},
           "The call will stream its answer: under the Latency strategy, providers rank by "
           "their measured time to first token (`true` or `false`)."),
]

_ACCESS_RESPONSES = {
    "401": _error("With `--auth kubernetes` or `keys`: no credential, or one that is not "
                  "accepted (`Authorization: Bearer <token or key>`; see `WWW-Authenticate`)."),
    "403": _error("The caller may not use the policy: `error.details` names it, the "
                  "missing permission and how to grant it."),
}

_ROUTE_RESPONSES = {
    "200": _json(RouteOut, "The provider to call, its ordered fallbacks and the lease."),
    "400": _BAD_INPUT,
    **_ACCESS_RESPONSES,
    "404": _error("Unknown policy (or no default policy in the namespace)."),
    "503": _error("No provider is available. `error.details.excluded` counts the reasons "
                  "over the `selected` providers; `candidates` gives each one's reasons, for "
                  "the first 20 by name (`truncated` says whether there are more)."),
}


def _untitle(node: Any) -> Any:
    """Drop pydantic's per-property titles ("Leaseid"): noise for readers and generators."""
    if isinstance(node, dict):
        out = {k: _untitle(v) for k, v in node.items()}
        properties = out.get("properties")
        if isinstance(properties, dict):
            for prop in properties.values():
                if isinstance(prop, dict):
                    prop.pop("title", None)
        return out
    if isinstance(node, list):
        return [_untitle(v) for v in node]
    return node


def openapi_document() -> dict[str, Any]:
    _, top = models_json_schema(_MODELS, ref_template=REF, by_alias=True)
    schemas: dict[str, Any] = _untitle(dict(top.get("$defs", {})))
    listing_params = [_namespace_param("Only this namespace.")]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "zoey-provider-router route API",
            "version": "v1",
            "description": "Picks an LLM provider per request under a RoutingPolicy, and learns "
                           "from the outcomes that workloads report. Every error is "
                           "`{error: {code, message, details}}`.",
        },
        "paths": {
            "/v1/route": {
                "get": {
                    "operationId": "routeGet",
                    "summary": "Choose a provider",
                    "parameters": _ROUTE_PARAMS,
                    "responses": _ROUTE_RESPONSES,
                },
                "post": {
                    "operationId": "routePost",
                    "summary": "Choose a provider (parameters as a JSON body)",
                    "requestBody": {
                        "required": False,
                        "content": {"application/json": {"schema": _ref(RouteInput)}},
                    },
                    "responses": {**_ROUTE_RESPONSES, "413": _TOO_LARGE},
                },
            },
            "/v1/report": {
                "post": {
                    "operationId": "report",
                    "summary": "Report the outcome of a call; releases its lease",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref(ReportInput)}},
                    },
                    "responses": {
                        "200": _json(ReportOut, "Recorded."),
                        "400": _BAD_INPUT,
                        **_ACCESS_RESPONSES,
                        "404": _error("Unknown (or expired, or already reported) lease, or "
                                      "unknown provider."),
                        "413": _TOO_LARGE,
                    },
                },
            },
            "/v1/providers": {
                "get": {
                    "operationId": "listProviders",
                    "summary": "The live table's providers: health, circuit, load, spend",
                    "parameters": listing_params,
                    "responses": {"200": _json(ProvidersOut, "Providers, by namespace and "
                                                             "name."),
                                  "400": _BAD_INPUT},
                },
            },
            "/v1/policies": {
                "get": {
                    "operationId": "listPolicies",
                    "summary": "The live table's policies: provider counts and spend",
                    "parameters": listing_params,
                    "responses": {"200": _json(PoliciesOut, "Policies, by namespace and name."),
                                  "400": _BAD_INPUT},
                },
            },
            "/healthz": {
                "get": {
                    "operationId": "healthz",
                    "summary": "The process is alive",
                    "responses": {"200": _json(HealthOut, "Alive.")},
                },
            },
            "/readyz": {
                "get": {
                    "operationId": "readyz",
                    "summary": "The router is ready to route (its table is synced)",
                    "responses": {"200": _json(ReadyOut, "Ready."),
                                  "503": _error("Not ready; `error.details` says why.")},
                },
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus metrics, text exposition format",
                    "responses": {"200": {"description": "Metrics.", "content": {
                        "text/plain": {"schema": {"type": "string"}}}}},
                },
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "responses": {"200": {"description": "OpenAPI 3.1 document.", "content": {
                        "application/json": {"schema": {"type": "object"}}}}},
                },
            },
        },
        "components": {"schemas": schemas},
    }
