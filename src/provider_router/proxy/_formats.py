"""The proxied endpoints, which wire format each speaks, and each format's error shape.

An SDK only understands errors in its own provider's shape, so an error the router makes
itself (no provider available, a bad body, a refused caller) is written in the shape of the
path it answers. The OpenAI shape keeps the route API's ``code``, ``message`` and ``details``
and adds OpenAI's ``type`` and ``param``, so one body serves both kinds of client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import orjson

from provider_router.engine import WIRE_ANTHROPIC, WIRE_OPENAI
from provider_router.service import JSON, ApiError, Response


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One proxied path: ``suffix`` is what follows the provider's ``apiBase`` (``.../v1``)."""

    suffix: str
    method: str
    wire: str
    usage_in_stream: bool = False
    """Whether OpenAI's ``stream_options.include_usage`` applies (chat and completions)."""

    @property
    def anthropic(self) -> bool:
        return self.wire == WIRE_ANTHROPIC


ENDPOINTS: Final = {
    "/v1/chat/completions": Endpoint("/chat/completions", "POST", WIRE_OPENAI, True),
    "/v1/completions": Endpoint("/completions", "POST", WIRE_OPENAI, True),
    "/v1/embeddings": Endpoint("/embeddings", "POST", WIRE_OPENAI),
    "/v1/models": Endpoint("/models", "GET", WIRE_OPENAI),
    "/v1/messages": Endpoint("/messages", "POST", WIRE_ANTHROPIC),
}
"""By the path an SDK calls, relative to the router (or to a ``/proxy/NS/POLICY`` prefix)."""
PREFIX: Final = "/proxy/"
"""Paths under ``/proxy/NS/POLICY`` use that policy."""
MAX_NAME_CHARS: Final = 253

_OPENAI_TYPES: Final = {400: "invalid_request_error", 401: "authentication_error",
                        403: "permission_error", 404: "not_found_error",
                        405: "invalid_request_error", 413: "invalid_request_error",
                        429: "rate_limit_error"}
_ANTHROPIC_TYPES: Final = {400: "invalid_request_error", 401: "authentication_error",
                           403: "permission_error", 404: "not_found_error",
                           405: "invalid_request_error", 413: "request_too_large",
                           429: "rate_limit_error", 503: "overloaded_error"}


def error_body(anthropic: bool, status: int, code: str, message: str,
               details: dict[str, Any] | None = None) -> bytes:
    details = details or {}
    if anthropic:
        payload: dict[str, Any] = {"type": "error", "error": {
            "type": _ANTHROPIC_TYPES.get(status, "api_error"), "message": message,
            "code": code, "details": details}}
    else:
        param = details.get("field")
        payload = {"error": {
            "message": message, "type": _OPENAI_TYPES.get(status, "server_error"),
            "param": param if isinstance(param, str) else None, "code": code,
            "details": details}}
    return orjson.dumps(payload, default=str)


def shaped(anthropic: bool, error: ApiError) -> Response:
    """``error`` as an answer in the shape of the path's wire format."""
    return (error.status, JSON,
            error_body(anthropic, error.status, error.code, error.message, error.details),
            error.headers)


def stream_error_event(anthropic: bool, message: str) -> bytes:
    """The event that ends a stream broken after its first byte, in a form the official SDKs
    raise: OpenAI's raise on a ``data`` object with an ``error``, Anthropic's on an ``error``
    event."""
    if anthropic:
        data = orjson.dumps({"type": "error", "error": {"type": "api_error",
                                                        "message": message}})
        return b"event: error\ndata: " + data + b"\n\n"
    data = orjson.dumps({"error": {"message": message, "type": "server_error",
                                   "param": None, "code": "upstream_stream_failed"}})
    return b"data: " + data + b"\n\n"


__all__ = ["ENDPOINTS", "MAX_NAME_CHARS", "PREFIX", "Endpoint", "error_body", "shaped",
           "stream_error_event"]
