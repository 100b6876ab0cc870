"""The route API: one application object, a synchronous core and an ASGI face, no framework.

Why no framework: ``/v1/route`` has to answer as fast as a bare aiohttp hello-world while
deciding over thousands of providers, and a framework's routing, request objects and
middleware cost more per request than the decision itself. The engine is synchronous, so every
handler is a plain function from (query, body) to (status, content type, body, headers), and
``RouteService.handle`` answers a whole request without awaiting anything. Calling the object
is the ASGI 3 interface, so any ASGI server can mount it; ``serve``/``Server`` run it in an
already running event loop (the operator's) on the native backend, which calls ``handle``
directly.

Two caches keep repeated requests cheap: validated route inputs keyed by their raw query
string or body (most workloads send the same few), and encoded answer fragments per engine
target.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final
from urllib.parse import parse_qsl

import orjson
from prometheus_client import generate_latest
from pydantic import ConfigDict, TypeAdapter, ValidationError

from provider_router.engine import (
    NoProviderAvailable,
    Outcome,
    RouteRequest,
    RoutingTable,
    UnknownLease,
    UnknownPolicy,
    UnknownProvider,
)
from provider_router.service._errors import ApiError, from_validation, invalid_field
from provider_router.service._metrics import ROUTED, ServiceMetrics
from provider_router.service._models import Namespace, ReportInput, RouteInput
from provider_router.service._openapi import openapi_document
from provider_router.service._views import (
    RouteEncoder,
    TargetCache,
    candidate_view,
    policy_view,
    provider_view,
)

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

Readiness = Callable[[], tuple[bool, dict[str, Any]]]
"""Returns ``(ready, details)``; the operator reports "table synced" and "stale since"."""

Headers = tuple[tuple[bytes, bytes], ...]
Response = tuple[int, bytes, bytes, Headers]
"""``(status, content type, body, extra headers)``: what every handler returns. Both the ASGI
adapter and the native server turn it into bytes on the wire."""
Handler = Callable[[bytes, bytes], Response]

JSON: Final = b"application/json"
METRICS_TYPE: Final = b"text/plain; version=0.0.4; charset=utf-8"
MAX_BODY_BYTES: Final = 1 << 20
MAX_QUERY_BYTES: Final = 16 << 10
MAX_QUERY_FIELDS: Final = 100
MAX_CACHED_INPUTS: Final = 4096
MAX_CACHED_KEY_BYTES: Final = 512

_ROUTE_SINGLE: Final = frozenset({"policy", "namespace", "model", "session"})
_ROUTE_FLAGS: Final = frozenset({"explain", "lease"})
_RENAMES: Final = {"capabilities": "capability"}
_NAMESPACE_CHECK: TypeAdapter[str] = TypeAdapter(Namespace, config=ConfigDict(strict=True))


class _Disconnected(Exception):
    """The client went away before sending its whole body: nobody to answer."""


def _json(payload: Any) -> Response:
    return 200, JSON, orjson.dumps(payload), ()


def _error(error: ApiError) -> Response:
    return error.status, JSON, error.body(), error.headers


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


def parse_route_query(query: bytes) -> RouteRequest:
    """``GET /v1/route``'s parameters, validated by the same model as ``POST``'s body."""
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
        return RouteInput.model_validate(fields).to_request()
    except ValidationError as error:
        raise from_validation(error, _RENAMES) from None


def parse_route_body(body: bytes) -> RouteRequest:
    try:
        return RouteInput.model_validate_json(body or b"{}").to_request()
    except ValidationError as error:
        raise from_validation(error) from None


def _namespace_filter(query: bytes) -> str | None:
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


class _InputCache:
    """Validated inputs by their raw bytes. Bounded; cleared wholesale when full, because
    an LRU's bookkeeping would cost more than re-validating the rare miss."""

    __slots__ = ("_entries", "_parse")

    def __init__(self, parse: Callable[[bytes], RouteRequest]) -> None:
        self._entries: dict[bytes, RouteRequest] = {}
        self._parse = parse

    def get(self, raw: bytes) -> RouteRequest:
        request = self._entries.get(raw)
        if request is None:
            request = self._parse(raw)  # raises ApiError; errors are not cached
            if len(raw) <= MAX_CACHED_KEY_BYTES:
                if len(self._entries) >= MAX_CACHED_INPUTS:
                    self._entries.clear()
                self._entries[raw] = request
        return request


class RouteService:
    """The route API over one routing table: ``handle`` answers a request synchronously;
    calling the object is the ASGI 3 interface to it."""

    def __init__(self, table: RoutingTable, *, readiness: Readiness | None = None,
                 metrics: ServiceMetrics | None = None,
                 max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.table = table
        self.readiness = readiness
        self.metrics = metrics if metrics is not None else ServiceMetrics()
        self.metrics.bind(table)
        self.max_body_bytes = max_body_bytes
        self._encoder = RouteEncoder(TargetCache())
        self._queries = _InputCache(parse_route_query)
        self._bodies = _InputCache(parse_route_body)
        self._decisions = self.metrics.decisions
        self._requests = self.metrics.requests
        self._openapi = orjson.dumps(openapi_document())
        self._routes: dict[str, dict[str, Handler]] = {
            "/v1/route": {"GET": self._route_get, "POST": self._route_post},
            "/v1/report": {"POST": self._report},
            "/v1/providers": {"GET": self._providers},
            "/v1/policies": {"GET": self._policies},
            "/healthz": {"GET": self._healthz},
            "/readyz": {"GET": self._readyz},
            "/metrics": {"GET": self._metrics_text},
            "/openapi.json": {"GET": self._openapi_json},
        }
        self._allow = {path: ", ".join(methods).encode() for path, methods in self._routes.items()}

    def handle(self, method: str, path: str, query: bytes, body: bytes) -> Response:
        """Answer one request. Never raises: every failure is an error response."""
        methods = self._routes.get(path)
        if methods is None:
            response = self._not_found(path)
            endpoint = "other"
        else:
            endpoint = path
            handler = methods.get(method)
            if handler is None:
                response = self._not_allowed(path, method)
            else:
                try:
                    response = handler(query, body)
                except ApiError as error:
                    response = _error(error)
                except Exception:
                    log.exception("unexpected error answering %s %s", method, path)
                    response = _error(ApiError(500, "internal_error",
                                               "the router failed to answer; see its log"))
        key = (endpoint, response[0])
        requests = self._requests
        requests[key] = requests.get(key, 0) + 1
        return response

    def too_large(self) -> Response:
        """The answer to a body over ``max_body_bytes``, for servers that stop reading it."""
        key = ("other", 413)
        self._requests[key] = self._requests.get(key, 0) + 1
        return _error(ApiError(413, "payload_too_large",
                               f"the body is larger than {self.max_body_bytes} bytes",
                               {"field": "body", "limit": self.max_body_bytes}))

    def reads_body(self, method: str) -> bool:
        return method not in ("GET", "HEAD")

    # -- ASGI ---------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._not_http(scope, receive, send)
            return
        method: str = scope["method"]
        try:
            body = await self._read_body(receive) if self.reads_body(method) else b""
        except _Disconnected:
            return
        if body is None:
            status, kind, payload, extra = self.too_large()
        else:
            status, kind, payload, extra = self.handle(method, scope["path"],
                                                       scope["query_string"], body)
        headers = [(b"content-type", kind), (b"content-length", str(len(payload)).encode())]
        if extra:
            headers.extend(extra)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body, or None once it exceeds ``max_body_bytes``."""
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        body: bytes = message.get("body", b"")
        if not message.get("more_body", False) and len(body) <= self.max_body_bytes:
            return body
        chunks = [body]
        size = len(body)
        while message.get("more_body", False) and size <= self.max_body_bytes:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            chunks.append(chunk)
        return None if size > self.max_body_bytes else b"".join(chunks)

    def _not_allowed(self, path: str, method: str) -> Response:
        allow = self._allow[path]
        return _error(ApiError(405, "method_not_allowed",
                               f"{method[:16]} is not allowed on {path}; use {allow.decode()}",
                               {"allow": allow.decode().split(", ")},
                               headers=((b"allow", allow),)))

    @staticmethod
    def _not_found(path: str) -> Response:
        return _error(ApiError(404, "not_found", f"no endpoint at {path[:200]}",
                               {"path": path[:200]}))

    @staticmethod
    async def _not_http(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        elif scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.close", "code": 1003})

    # -- handlers -----------------------------------------------------------------------------

    def _route_get(self, query: bytes, body: bytes) -> Response:
        return self._route(self._queries.get(query))

    def _route_post(self, query: bytes, body: bytes) -> Response:
        return self._route(self._bodies.get(body))

    def _route(self, request: RouteRequest) -> Response:
        try:
            decision = self.table.route(request)
        except UnknownPolicy as error:
            what = f"policy {error.name!r}" if error.name else "default policy"
            raise ApiError(404, "unknown_policy",
                           f"no {what} in namespace {error.namespace!r}",
                           {"namespace": error.namespace, "policy": error.name}) from None
        except NoProviderAvailable as error:
            self.metrics.count_unavailable(error.namespace, error.policy, error.excluded)
            raise ApiError(503, "no_provider_available", str(error), {
                "namespace": error.namespace, "policy": error.policy,
                "selected": error.selected, "excluded": error.excluded,
                "candidates": [candidate_view(c) for c in error.candidates],
                "truncated": len(error.candidates) < error.selected}) from None
        key = (decision.namespace, decision.policy, decision.target.provider.name, ROUTED)
        decisions = self._decisions
        decisions[key] = decisions.get(key, 0) + 1
        if decision.candidates is not None:
            self.metrics.count_exclusions(decision.namespace, decision.policy,
                                          decision.candidates)
        return 200, JSON, self._encoder.encode(decision), ()

    def _report(self, query: bytes, body: bytes) -> Response:
        if not body:
            raise ApiError(400, "invalid_json", "the body is required: a JSON object",
                           {"field": "body"})
        try:
            report = ReportInput.model_validate_json(body)
        except ValidationError as error:
            raise from_validation(error) from None
        if report.lease_id is None and report.provider is None:
            raise invalid_field("leaseId", "a report needs a leaseId, or a provider and its "
                                "namespace")
        outcome = Outcome(
            outcome=report.outcome, lease_id=report.lease_id, provider=report.provider,
            namespace=report.namespace, policy=report.policy, latency_ms=report.latency_ms,
            status_code=report.status_code, retry_after_seconds=report.retry_after_seconds,
            input_tokens=report.input_tokens, output_tokens=report.output_tokens,
            rate_limit=report.stated_limits(time.time()))
        try:
            result = self.table.report(outcome)
        except UnknownLease as error:
            raise ApiError(404, "unknown_lease", str(error), {"leaseId": error.lease_id}) from None
        except UnknownProvider as error:
            raise ApiError(404, "unknown_provider", str(error),
                           {"namespace": error.namespace, "provider": error.name}) from None
        key = (result.namespace, result.provider, report.outcome.value)
        self.metrics.reports[key] = self.metrics.reports.get(key, 0) + 1
        return _json({"provider": result.provider, "namespace": result.namespace,
                      "leaseReleased": result.lease_released, "circuit": result.circuit,
                      "costUSD": result.cost_usd})

    def _providers(self, query: bytes, body: bytes) -> Response:
        namespace = _namespace_filter(query)
        table = self.table
        states = table.providers()
        now = table.clock()
        return _json({"providers": [provider_view(s, now) for s in states
                                    if namespace is None or s.key[0] == namespace]})

    def _policies(self, query: bytes, body: bytes) -> Response:
        namespace = _namespace_filter(query)
        table = self.table
        policies = table.policies()
        now = table.clock()
        return _json({"policies": [policy_view(p, table, now) for p in policies
                                   if namespace is None or p.key[0] == namespace]})

    def _healthz(self, query: bytes, body: bytes) -> Response:
        return _json({"status": "ok"})

    def _readyz(self, query: bytes, body: bytes) -> Response:
        details: dict[str, Any] = {}
        if self.readiness is None:
            ready = True
        else:
            try:
                ready, details = self.readiness()
            except Exception as error:
                log.exception("readiness check failed")
                ready, details = False, {"error": f"readiness check failed: {error}"}
        if not ready:
            raise ApiError(503, "not_ready", "the router is not ready to route", dict(details))
        return 200, JSON, orjson.dumps({"ready": True, "details": details}, default=str), ()

    def _metrics_text(self, query: bytes, body: bytes) -> Response:
        return 200, METRICS_TYPE, generate_latest(self.metrics.registry), ()

    def _openapi_json(self, query: bytes, body: bytes) -> Response:
        return 200, JSON, self._openapi, ()


def create_app(table: RoutingTable, *, readiness: Readiness | None = None,
               metrics: ServiceMetrics | None = None) -> RouteService:
    """The route API over ``table``: an ASGI 3 callable for ``serve``, ``Server`` or any
    ASGI server. ``readiness`` decides ``/readyz``; ``metrics`` lets the caller share its
    ``ServiceMetrics`` with the prober and the operator."""
    return RouteService(table, readiness=readiness, metrics=metrics)


__all__ = ["ASGIApp", "Readiness", "Response", "RouteService", "create_app"]
