"""The proxy paths' part of ``/openapi.json``, generated from ``ENDPOINTS``.

The proxy hands these to the route server when it mounts (``RouteService.document``), so the
document has proxy paths exactly when the server serves them. Each endpoint is listed at the
root (the proxy namespace's default policy) and under ``/proxy/{namespace}/{policy}``.

Request bodies name only what the router reads (``model``, ``stream``, ``stream_options``);
everything else goes to the provider untouched, so any other property is allowed. A 200 is
the provider's answer as it sent it, or a server-sent event stream. The errors listed are the
router's own, in the shape of the path's SDK (OpenAI's, or Anthropic's on ``/v1/messages``);
a provider's own error answer (a 429 or 5xx from the last provider tried, a 4xx it gave) is
relayed as it sent it: that is the ``default`` answer. The tests provoke every answer listed
here against real local providers and validate it against these schemas.
"""

from __future__ import annotations

from typing import Any, Final

from provider_router.proxy._formats import ENDPOINTS, MAX_NAME_CHARS, PREFIX, Endpoint

_REF: Final = "#/components/schemas/"
OPENAI_ERROR: Final = "ProxyOpenAIError"
ANTHROPIC_ERROR: Final = "ProxyAnthropicError"
REQUEST: Final = "ProxyRequest"
MODELS: Final = "ProxyModelList"

_DETAILS: Final = {"type": "object", "description": "What the route API's errors give in "
                   "`error.details` (the field, the policy, the reasons per candidate)."}

SCHEMAS: Final[dict[str, Any]] = {
    REQUEST: {
        "type": "object",
        "description": "The provider's request body. The router reads these fields and "
                       "sends the body on untouched (except that it names the routed model "
                       "when `model` is absent, and may ask an OpenAI stream for usage, "
                       "which it removes again from what the client receives).",
        "properties": {
            "model": {"type": "string", "minLength": 1, "maxLength": 253,
                      "description": "A routing requirement: only providers that serve this "
                                     "model are chosen."},
            "stream": {"type": "boolean", "description": "Answer with server-sent events, "
                                                         "relayed as they arrive."},
            "stream_options": {"type": "object",
                               "description": "OpenAI's stream options; "
                                              "`include_usage` as the client asked."},
        },
        "additionalProperties": True,
    },
    OPENAI_ERROR: {
        "type": "object",
        "description": "OpenAI's error shape; the router's own errors add the route API's "
                       "`code` and `details`.",
        "required": ["error"],
        "properties": {"error": {
            "type": "object", "required": ["message", "type"],
            "properties": {"message": {"type": "string"}, "type": {"type": "string"},
                           "param": {"type": ["string", "null"]},
                           "code": {"type": ["string", "null"]}, "details": _DETAILS},
        }},
    },
    ANTHROPIC_ERROR: {
        "type": "object",
        "description": "Anthropic's error shape; the router's own errors add the route API's "
                       "`code` and `details`.",
        "required": ["type", "error"],
        "properties": {"type": {"const": "error"}, "error": {
            "type": "object", "required": ["type", "message"],
            "properties": {"type": {"type": "string"}, "message": {"type": "string"},
                           "code": {"type": "string"}, "details": _DETAILS},
        }},
    },
    MODELS: {
        "type": "object",
        "description": "The models the policy's OpenAI-format providers serve.",
        "required": ["object", "data"],
        "properties": {"object": {"const": "list"}, "data": {"type": "array", "items": {
            "type": "object", "required": ["id", "object", "created", "owned_by"],
            "properties": {"id": {"type": "string"}, "object": {"const": "model"},
                           "created": {"type": "integer"},
                           "owned_by": {"type": "string",
                                        "description": "The first provider that serves it."}},
        }}},
    },
}
"""Added to ``#/components/schemas``."""

_ROUTED_HEADERS: Final = {
    "x-router-provider": {"description": "The provider that answered, `NAMESPACE/NAME`.",
                          "required": True, "schema": {"type": "string"}},
    "x-router-policy": {"description": "The policy the call was routed under, "
                                       "`NAMESPACE/NAME`.",
                        "required": True, "schema": {"type": "string"}},
}
"""On every answer a provider gave, or that the router gave for a provider it tried."""

_ANY_JSON: Final = {"application/json": {"schema": {"type": "object"}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _error(endpoint: Endpoint, description: str, routed: bool = False,
           **extra: Any) -> dict[str, Any]:
    schema = _ref(ANTHROPIC_ERROR if endpoint.anthropic else OPENAI_ERROR)
    answer: dict[str, Any] = {"description": description,
                              "content": {"application/json": {"schema": schema}}, **extra}
    if routed:
        answer["headers"] = _ROUTED_HEADERS
    return answer


def _responses(endpoint: Endpoint, root: str) -> dict[str, Any]:
    """Every answer of one endpoint; ``root`` is how the unprefixed path picks its policy."""
    access = {
        "401": _error(endpoint, "With `--auth kubernetes` or `keys`: no credential, or one "
                      "that is not accepted (`Authorization: Bearer <token or key>`)."),
        "403": _error(endpoint, "The caller may not use the policy."),
        "404": _error(endpoint, f"Unknown policy ({root})."),
        "405": _error(endpoint, f"Not {endpoint.method}: the path takes only that method "
                      "(see `Allow`).", headers={"allow": {"schema": {"type": "string"},
                                                           "required": True}}),
    }
    if endpoint.method == "GET":
        return {"200": {"description": "The models of the policy's providers.",
                        "content": {"application/json": {"schema": _ref(MODELS)}}},
                **access}
    # Any POST may stream: the router relays events whenever the client asked for them and
    # the provider answers with them (chat, completions and messages do; embeddings do not).
    ok: dict[str, Any] = {
        "application/json": {"schema": {
            "type": "object", "description": "The provider's answer, as it sent it."}},
        "text/event-stream": {"schema": {
            "type": "string", "description": "With `stream: true`, when the provider answers "
            "with server-sent events: its events, relayed as they arrive. A stream that "
            "breaks after it has started ends with an error event in the SDK's shape."}}}
    return {
        "200": {"description": "The provider's answer.", "headers": _ROUTED_HEADERS,
                "content": ok},
        "400": _error(endpoint, "The body is not a JSON object, or `model` or `stream` has "
                      "the wrong type; `error.details.field` names it."),
        **access,
        "413": _error(endpoint, "The body is larger than the proxy accepts "
                      "(`--proxy-max-body-bytes`)."),
        "502": _error(endpoint, "The last provider tried could not be reached, failed, or "
                      "was removed meanwhile.", routed=True),
        "503": _error(endpoint, "No provider of the policy is available for this format "
                      "and model; `error.details` gives the reasons per candidate. (Or, "
                      "with `--auth kubernetes`, the caller's token could not be reviewed: "
                      "`auth_unavailable`.)"),
        "504": _error(endpoint, "The last provider tried did not answer in time "
                      "(`--proxy-first-byte-timeout`, `--proxy-deadline`).", routed=True),
        "default": {"description": "The provider's own answer, relayed as it sent it: a 429 "
                                   "or 5xx of the last provider tried (after failover), or "
                                   "a 4xx it gave.",
                    "headers": _ROUTED_HEADERS, "content": _ANY_JSON},
    }


def _operation(path: str, endpoint: Endpoint, prefixed: bool) -> dict[str, Any]:
    name = "".join(part.title() for part in path.strip("/").replace("/", "_").split("_"))
    root = "none of that name in the path's namespace" if prefixed else \
        "no default policy in the proxy's namespace, `--proxy-namespace`"
    operation: dict[str, Any] = {
        "operationId": ("proxied" if prefixed else "proxy") + name,
        "summary": f"{endpoint.method} {path} on a provider chosen by "
                   + ("the named policy" if prefixed else "the default policy"),
        "responses": _responses(endpoint, root),
    }
    if prefixed:
        operation["parameters"] = [
            {"name": param, "in": "path", "required": True, "description": description,
             "schema": {"type": "string", "minLength": 1, "maxLength": MAX_NAME_CHARS}}
            for param, description in (("namespace", "Namespace of the policy."),
                                       ("policy", "RoutingPolicy name."))]
    if endpoint.method != "GET":
        operation["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": _ref(REQUEST)}}}
    return {endpoint.method.lower(): operation}


def proxy_paths() -> dict[str, Any]:
    """The path items of every proxied endpoint, at the root and under the policy prefix."""
    paths: dict[str, Any] = {}
    for path, endpoint in ENDPOINTS.items():
        paths[path] = _operation(path, endpoint, prefixed=False)
    for path, endpoint in ENDPOINTS.items():
        paths[f"{PREFIX}{{namespace}}/{{policy}}{path}"] = _operation(path, endpoint,
                                                                     prefixed=True)
    return paths


__all__ = ["SCHEMAS", "proxy_paths"]
