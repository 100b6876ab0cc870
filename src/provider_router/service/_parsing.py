"""Turning the route API's query strings and JSON bodies into engine requests.

Both ``GET /v1/route``'s parameters and ``POST /v1/route``'s body are validated by the same
pydantic model, so the two spellings of a request can never drift. Parsed inputs are cached by
their raw bytes: workloads send the same few requests over and over, and validation costs more
than the routing decision.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Generic, TypeVar
from urllib.parse import parse_qsl

from pydantic import ConfigDict, TypeAdapter, ValidationError

from provider_router.engine import RouteRequest
from provider_router.service._errors import from_validation, invalid_field
from provider_router.service._models import Namespace, RouteInput

MAX_QUERY_BYTES: Final = 16 << 10
MAX_QUERY_FIELDS: Final = 100
MAX_CACHED_INPUTS: Final = 4096
MAX_CACHED_KEY_BYTES: Final = 512

_ROUTE_SINGLE: Final = frozenset({"policy", "namespace", "model", "session"})
_ROUTE_FLAGS: Final = frozenset({"explain", "lease", "stream"})
_RENAMES: Final = {"capabilities": "capability"}
T = TypeVar("T")
_NAMESPACE_CHECK: TypeAdapter[str] = TypeAdapter(Namespace, config=ConfigDict(strict=True))


def _pairs(query: bytes) -> list[tuple[str, str]]:
    if len(query) > MAX_QUERY_BYTES:
        raise invalid_field("query", f"longer than {MAX_QUERY_BYTES} bytes")
    if query.count(b"&") >= MAX_QUERY_FIELDS:
        raise invalid_field("query", f"more than {MAX_QUERY_FIELDS} parameters")
    # A query string is ASCII with %-escapes of UTF-8; stray raw bytes become U+FFFD.
    return parse_qsl(query.decode("utf-8", "replace"), keep_blank_values=True,
                     encoding="utf-8", errors="replace")


def _flag(name: str, value: str) -> bool:
    if value == "true":
        return True
    if value == "false":
        return False
    raise invalid_field(name, "must be true or false")


Wanted = tuple[RouteRequest, dict[str, RouteRequest] | None]
"""A parsed route request and, when it named no namespace (the caller's is meant, found only
once the caller is known), the same request in each namespace it was resolved to, filled as
they come: cached with the parse, so a known caller's route copies nothing. None when the
request named its namespace."""


def parse_route_query(query: bytes) -> RouteRequest:
    """``GET /v1/route``'s parameters, validated by the same model as ``POST``'s body."""
    return _query_input(query).to_request()


def read_route_query(query: bytes) -> Wanted:
    """``parse_route_query``, as a ``Wanted``."""
    return _wanted(_query_input(query))


def _query_input(query: bytes) -> RouteInput:
    fields: dict[str, Any] = {}
    capabilities: list[str] = []
    for key, value in _pairs(query):
        if key == "capability":
            capabilities.append(value)
        elif key in _ROUTE_SINGLE or key in _ROUTE_FLAGS:
            if key in fields:
                raise invalid_field(key, "given more than once")
            fields[key] = _flag(key, value) if key in _ROUTE_FLAGS else value
        else:
            raise invalid_field(key, "unknown parameter")
    if capabilities:
        fields["capabilities"] = capabilities
    try:
        return RouteInput.model_validate(fields)
    except ValidationError as error:
        raise from_validation(error, _RENAMES) from None


def parse_route_body(body: bytes) -> RouteRequest:
    return _body_input(body).to_request()


def read_route_body(body: bytes) -> Wanted:
    """``parse_route_body``, as a ``Wanted``."""
    return _wanted(_body_input(body))


def _wanted(parsed: RouteInput) -> Wanted:
    request = parsed.to_request()
    return request, (None if parsed.namespace is not None else {request.namespace: request})


def _body_input(body: bytes) -> RouteInput:
    try:
        return RouteInput.model_validate_json(body or b"{}")
    except ValidationError as error:
        raise from_validation(error) from None


def namespace_filter(query: bytes) -> str | None:
    namespace: str | None = None
    for key, value in _pairs(query):
        if key != "namespace":
            raise invalid_field(key, "unknown parameter")
        if namespace is not None:
            raise invalid_field(key, "given more than once")
        namespace = value
    if namespace is not None:
        try:
            _NAMESPACE_CHECK.validate_python(namespace)
        except ValidationError as error:
            raise invalid_field("namespace", error.errors()[0]["msg"]) from None
    return namespace


class InputCache(Generic[T]):
    """Validated inputs by their raw bytes. Bounded; cleared wholesale when full, because
    an LRU's bookkeeping would cost more than re-validating the rare miss."""

    __slots__ = ("_entries", "_parse")

    def __init__(self, parse: Callable[[bytes], T]) -> None:
        self._entries: dict[bytes, T] = {}
        self._parse = parse

    def get(self, raw: bytes) -> T:
        request = self._entries.get(raw)
        if request is None:
            request = self._parse(raw)  # raises ApiError; errors are not cached
            if len(raw) <= MAX_CACHED_KEY_BYTES:
                if len(self._entries) >= MAX_CACHED_INPUTS:
                    self._entries.clear()
                self._entries[raw] = request
        return request


__all__ = ["InputCache", "Wanted", "namespace_filter", "parse_route_body", "parse_route_query",
           "read_route_body", "read_route_query"]
