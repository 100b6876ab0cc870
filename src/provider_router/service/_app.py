"""The route API's handlers: one application object over one routing table, no framework.

Why no framework: ``/v1/route`` has to answer as fast as a bare aiohttp hello-world while
deciding over thousands of providers, and a framework's routing, request objects and
middleware cost more per request than the decision itself. The engine is synchronous, so a
handler is a plain function from a ``Request`` to a ``Response`` and ``RouteService.handle``
answers without awaiting anything. A handler that must wait (an access review, a proxied
call) returns an awaitable instead; ``handle`` wraps it so that its failures become error
answers too, and the server writes it when it is done, in request order.

Other packages mount their endpoints here (``add_route``, ``add_prefix``), so the route API and
the proxy share one port, one access check and one set of request metrics. They describe them
in ``/openapi.json`` too (``document``), so the document lists what this server serves and
nothing else, and may have the server's own refusals on their paths written in their clients'
error shape (``shape_errors``).
"""

from __future__ import annotations

import copy
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from functools import partial
from typing import Any, Final, TypeVar

import orjson
from prometheus_client import generate_latest
from pydantic import ValidationError

from provider_router._defaults import DEFAULT_NAMESPACE
from provider_router.engine import (
    NoProviderAvailable,
    Outcome,
    PolicyState,
    RouteRequest,
    RoutingTable,
    UnknownLease,
    UnknownPolicy,
    UnknownProvider,
)
from provider_router.service._access import Access, Caller, OpenAccess
from provider_router.service._errors import ApiError, from_validation, invalid_field
from provider_router.service._http import (
    JSON,
    Answer,
    Handler,
    Reply,
    Request,
    Response,
    error_response,
    json_response,
    status_of,
)
from provider_router.service._metrics import ROUTED, ServiceMetrics
from provider_router.service._models import ReportInput
from provider_router.service._openapi import openapi_document
from provider_router.service._parsing import (
    InputCache,
    Wanted,
    namespace_filter,
    read_route_body,
    read_route_query,
)
from provider_router.service._views import (
    RouteEncoder,
    TargetCache,
    candidate_view,
    policy_view,
    provider_view,
)

log = logging.getLogger(__name__)

Readiness = Callable[[], tuple[bool, dict[str, Any]]]
"""Returns ``(ready, details)``; the operator reports "table synced" and "stale since"."""

METRICS_TYPE: Final = b"text/plain; version=0.0.4; charset=utf-8"
MAX_BODY_BYTES: Final = 1 << 20

_R = TypeVar("_R", Response, Reply)

_INTERNAL: Final = ApiError(500, "internal_error", "the router failed to answer; see its log")

ErrorShape = Callable[[str, ApiError], Response]
"""Writes one of the server's own refusals (405, 413) of a request to a path (the first
argument) in the error shape of that path's clients."""


class RouteService:
    """The route API over one routing table. ``handle`` answers a request: synchronously for
    the route API's own endpoints, or with an awaitable when a handler must wait."""

    def __init__(self, table: RoutingTable, *, readiness: Readiness | None = None,
                 metrics: ServiceMetrics | None = None,
                 max_body_bytes: int = MAX_BODY_BYTES,
                 access: Access | None = None) -> None:
        self.table = table
        self.readiness = readiness
        self.metrics = metrics if metrics is not None else ServiceMetrics()
        self.metrics.bind(table)
        self.max_body_bytes = max_body_bytes
        self.access: Access = access if access is not None else OpenAccess()
        self._encoder = RouteEncoder(TargetCache())
        self._queries = InputCache(read_route_query)
        self._bodies = InputCache(read_route_body)
        self._decisions = self.metrics.decisions
        self._requests = self.metrics.requests
        self._document = openapi_document()
        self._openapi = orjson.dumps(self._document)
        self._shapes: list[tuple[str, bool, ErrorShape]] = []
        self._routes: dict[str, dict[str, Handler]] = {}
        self._prefixes: list[tuple[str, Handler]] = []
        self._body_limits: list[tuple[bytes, bool, int]] = []
        """``(path or prefix, is prefix, limit)`` for endpoints allowed larger bodies."""
        for path, method, handler in (
                ("/v1/route", "GET", self._route_get), ("/v1/route", "POST", self._route_post),
                ("/v1/report", "POST", self._report), ("/v1/providers", "GET", self._providers),
                ("/v1/policies", "GET", self._policies), ("/healthz", "GET", self._healthz),
                ("/readyz", "GET", self._readyz), ("/metrics", "GET", self._metrics_text),
                ("/openapi.json", "GET", self._openapi_json)):
            self.add_route(path, method, handler)

    # -- mounting -----------------------------------------------------------------------------

    def add_route(self, path: str, method: str, handler: Handler) -> None:
        """Serve ``method path`` with ``handler`` (replacing any handler it had)."""
        self._routes.setdefault(path, {})[method] = handler
        self._allow = {p: ", ".join(m).encode() for p, m in self._routes.items()}

    def add_prefix(self, prefix: str, handler: Handler) -> None:
        """Serve every path under ``prefix`` (ending in ``/``) that no exact route serves."""
        if not prefix.endswith("/"):
            raise ValueError(f"a prefix ends with '/': {prefix!r}")
        self._prefixes.append((prefix, handler))
        self._prefixes.sort(key=lambda item: -len(item[0]))

    def allow_body(self, path: str, limit: int, *, prefix: bool = False) -> None:
        """Let requests to ``path`` (or every path under the prefix ``path``) carry bodies of
        up to ``limit`` bytes instead of ``max_body_bytes`` (a proxied prompt is larger than
        a route request)."""
        self._body_limits.append((path.encode("latin-1"), prefix, limit))

    def body_limit(self, target: bytes) -> int:
        """The body limit for the raw request target ``target``. Servers ask only once a body
        has outgrown ``max_body_bytes``, so the route API's requests never pay for it."""
        path = target.split(b"?", 1)[0]
        for allowed, prefix, limit in self._body_limits:
            if path == allowed or (prefix and path.startswith(allowed)):
                return max(limit, self.max_body_bytes)
        return self.max_body_bytes

    def shape_errors(self, path: str, shape: ErrorShape, *, prefix: bool = False) -> None:
        """Write the server's own refusals of requests to ``path`` (or to every path under the
        prefix ``path``) with ``shape``: a wrong method (405) and a body over its limit (413)
        then reach an SDK in the shape it parses."""
        self._shapes.append((path, prefix, shape))

    def _shaped(self, path: str, error: ApiError) -> Response:
        for shaped, prefix, shape in self._shapes:
            if path == shaped or (prefix and path.startswith(shaped)):
                return shape(path, error)
        return error_response(error)

    def document(self, paths: Mapping[str, Mapping[str, Any]],
                 schemas: Mapping[str, Any] | None = None) -> None:
        """Describe mounted endpoints in ``/openapi.json``: ``paths`` are OpenAPI path items by
        path (templated ones too), ``schemas`` what they refer to under
        ``#/components/schemas``. Whoever mounts endpoints documents them, so the document
        describes exactly what this server serves."""
        clash = [name for name in schemas or () if name in self._document["components"]["schemas"]]
        if clash:
            raise ValueError(f"schemas already documented: {clash}")
        self._document["paths"].update(copy.deepcopy(dict(paths)))
        self._document["components"]["schemas"].update(copy.deepcopy(dict(schemas or {})))
        self._openapi = orjson.dumps(self._document)

    def openapi(self) -> dict[str, Any]:
        """A copy of the document ``/openapi.json`` serves."""
        return copy.deepcopy(self._document)

    def endpoints(self) -> dict[str, tuple[str, ...]]:
        """Every exact path served, with its methods (the OpenAPI test compares them)."""
        return {path: tuple(methods) for path, methods in self._routes.items()}

    # -- answering ----------------------------------------------------------------------------

    def handle(self, request: Request) -> Answer:
        """Answer one request. Never raises: every failure is an error response, and an
        awaitable answer's failures become error responses when it is awaited."""
        path = request.path
        methods = self._routes.get(path)
        handler: Handler | None = None
        if methods is None:
            endpoint = "other"
            for prefix, prefixed in self._prefixes:
                if path.startswith(prefix):
                    handler, endpoint = prefixed, prefix
                    break
            if handler is None:
                return self._count(endpoint, self._not_found(path))
        else:
            endpoint = path
            handler = methods.get(request.method)
            if handler is None:
                return self._count(endpoint, self._not_allowed(path, request.method))
        try:
            answer = handler(request)
        except ApiError as error:
            answer = error_response(error)
        except Exception:
            log.exception("unexpected error answering %s %s", request.method, path[:200])
            answer = error_response(_INTERNAL)
        if not isinstance(answer, tuple):
            return self._settle(endpoint, request, answer)
        key = (endpoint, answer[0])  # inline: this is every route's path
        requests = self._requests
        requests[key] = requests.get(key, 0) + 1
        return answer

    async def _settle(self, endpoint: str, request: Request,
                      answer: Awaitable[Reply]) -> Reply:
        try:
            response = await answer
        except ApiError as error:
            response = error_response(error)
        except Exception:
            log.exception("unexpected error answering %s %s", request.method,
                          request.path[:200])
            response = error_response(_INTERNAL)
        return self._count(endpoint, response)

    def _count(self, endpoint: str, response: _R) -> _R:
        key = (endpoint, status_of(response))
        requests = self._requests
        requests[key] = requests.get(key, 0) + 1
        return response

    def too_large(self, limit: int | None = None, target: bytes = b"") -> Response:
        """The answer to a body over its limit (``max_body_bytes`` unless given), for servers
        that stop reading it; ``target``, the raw request target, picks its error shape."""
        limit = self.max_body_bytes if limit is None else limit
        path = target.split(b"?", 1)[0].decode("latin-1")
        return self._count("other", self._shaped(path, ApiError(
            413, "payload_too_large", f"the body is larger than {limit} bytes",
            {"field": "body", "limit": limit})))

    def reads_body(self, method: str) -> bool:
        return method not in ("GET", "HEAD")

    def guarded(self, request: Request, namespace: str, policy: str,
                then: Callable[[], Answer]) -> Answer:
        """``then()`` if the caller may use ``namespace/policy``; the access check first.

        Allowed callers known without I/O are answered synchronously; the others wait for the
        access review, and a refusal raises the review's ``ApiError``.
        """
        access = self.access
        caller = access.identify(request)
        if caller is not None and access.check(caller, namespace, policy):
            return then()
        return self._after_review(request, caller, namespace, policy, then)

    def guarded_for_caller(self, request: Request, name: str | None, fallback: str,
                           then: Callable[[PolicyState], Answer]) -> Answer:
        """``then(policy)`` for a request that names no namespace, once the caller may use
        that policy: ``name`` (None: the default policy) in the caller's own namespace if it
        has it, else in ``fallback``. Who the caller is comes first, since it decides the
        policy; a caller with no namespace (``--auth none``, a user that is not a
        ServiceAccount) goes to ``fallback``. Raises ``ApiError`` (404) when neither has it."""
        access = self.access
        if access.open:
            return then(self.caller_policy(None, name, fallback))
        caller = access.identify(request)
        if caller is None:
            return self._identified_later(request, name, fallback, then)
        policy = self.caller_policy(caller.namespace, name, fallback)
        namespace, policy_name = policy.key
        if access.check(caller, namespace, policy_name):
            return then(policy)
        return self._after_review(request, caller, namespace, policy_name,
                                  partial(then, policy))

    def caller_policy(self, namespace: str | None, name: str | None,
                      fallback: str) -> PolicyState:
        """The policy ``name`` (None: the default) of the caller's ``namespace`` if there is
        one, else of ``fallback``. Raises ``ApiError`` (404) when neither has it."""
        table = self.table
        if namespace is not None and namespace != fallback:
            try:
                return table.resolve_policy(namespace, name)
            except UnknownPolicy:
                pass
        try:
            return table.resolve_policy(fallback, name)
        except UnknownPolicy as error:
            if namespace is None or namespace == fallback:
                raise unknown_policy(error) from None
            what = f"policy {name!r}" if name else "default policy"
            raise ApiError(404, "unknown_policy", f"no {what} in the caller's namespace "
                           f"{namespace!r} nor in {fallback!r}",
                           {"namespace": fallback, "policy": name,
                            "callerNamespace": namespace}) from None

    async def _identified_later(self, request: Request, name: str | None, fallback: str,
                                then: Callable[[PolicyState], Answer]) -> Reply:
        access = self.access
        caller = await access.authenticate(request)
        policy = self.caller_policy(caller.namespace, name, fallback)
        await access.review(caller, *policy.key)
        answer = then(policy)
        if inspect.isawaitable(answer):
            return await answer
        return answer

    async def _after_review(self, request: Request, caller: Caller | None, namespace: str,
                            policy: str, then: Callable[[], Answer]) -> Reply:
        access = self.access
        if caller is None:
            caller = await access.authenticate(request)
        await access.review(caller, namespace, policy)
        answer = then()
        if inspect.isawaitable(answer):
            return await answer
        return answer

    def _not_allowed(self, path: str, method: str) -> Response:
        allow = self._allow[path]
        return self._shaped(path, ApiError(
            405, "method_not_allowed",
            f"{method[:16]} is not allowed on {path}; use {allow.decode()}",
            {"allow": allow.decode().split(", ")}, headers=((b"allow", allow),)))

    @staticmethod
    def _not_found(path: str) -> Response:
        return error_response(ApiError(404, "not_found", f"no endpoint at {path[:200]}",
                                       {"path": path[:200]}))

    # -- handlers -----------------------------------------------------------------------------

    def _route_get(self, request: Request) -> Answer:
        if self.access.open:  # the hot path: one call less
            return self._decide(self._queries.get(request.query)[0])
        return self._route(request, self._queries.get(request.query))

    def _route_post(self, request: Request) -> Answer:
        return self._route(request, self._bodies.get(request.body))

    def _route(self, request: Request, parsed: Wanted) -> Answer:
        wanted, moved = parsed
        if self.access.open:  # callers have no namespace: 'default' it is
            return self._decide(wanted)
        if moved is not None:  # no namespace named: the caller's
            return self.guarded_for_caller(request, wanted.policy, DEFAULT_NAMESPACE,
                                           partial(self._decide_in, wanted, moved))
        try:
            policy = self.table.resolve_policy(wanted.namespace, wanted.policy)
        except UnknownPolicy as error:
            raise unknown_policy(error) from None
        return self.guarded(request, policy.key[0], policy.key[1],
                            lambda: self._decide(wanted))

    def _decide_in(self, wanted: RouteRequest, moved: dict[str, RouteRequest],
                   policy: PolicyState) -> Response:
        """``_decide`` in the namespace the caller's policy was found in (``moved`` keeps
        the request in each namespace, at most one per namespace that has policies)."""
        namespace = policy.key[0]
        request = moved.get(namespace)
        if request is None:
            request = moved[namespace] = replace(wanted, namespace=namespace)
        return self._decide(request)

    def _decide(self, wanted: RouteRequest) -> Response:
        try:
            decision = self.table.route(wanted)
        except UnknownPolicy as error:
            raise unknown_policy(error) from None
        except NoProviderAvailable as error:
            self.metrics.count_unavailable(error.namespace, error.policy, error.excluded)
            raise no_provider_available(error) from None
        key = (decision.namespace, decision.policy, decision.target.provider.name, ROUTED)
        decisions = self._decisions
        decisions[key] = decisions.get(key, 0) + 1
        if decision.candidates is not None:
            self.metrics.count_exclusions(decision.namespace, decision.policy,
                                          decision.candidates)
        return 200, JSON, self._encoder.encode(decision), ()

    def _report(self, request: Request) -> Answer:
        body = request.body
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
            ttft_ms=report.ttft_ms,
            status_code=report.status_code, retry_after_seconds=report.retry_after_seconds,
            input_tokens=report.input_tokens, output_tokens=report.output_tokens,
            rate_limit=report.stated_limits(time.time()))
        if self.access.open:
            return self._record(outcome)
        namespace, policy = self._report_policy(outcome)
        return self.guarded(request, namespace, policy, lambda: self._record(outcome))

    def _report_policy(self, outcome: Outcome) -> tuple[str, str]:
        """The policy a report is checked against: its lease's, else the one it names, else
        its namespace's default."""
        table = self.table
        if outcome.lease_id is not None:
            leased = table.lease_policy(outcome.lease_id)
            if leased is not None:
                return leased
        namespace = outcome.namespace or "default"
        try:
            policy = table.resolve_policy(namespace, outcome.policy)
        except UnknownPolicy as error:
            raise unknown_policy(error) from None
        return policy.key

    def _record(self, outcome: Outcome) -> Response:
        try:
            result = self.table.report(outcome)
        except UnknownLease as error:
            raise ApiError(404, "unknown_lease", str(error), {"leaseId": error.lease_id}) from None
        except UnknownProvider as error:
            raise ApiError(404, "unknown_provider", str(error),
                           {"namespace": error.namespace, "provider": error.name}) from None
        key = (result.namespace, result.provider, outcome.outcome.value)
        self.metrics.reports[key] = self.metrics.reports.get(key, 0) + 1
        return json_response({"provider": result.provider, "namespace": result.namespace,
                              "leaseReleased": result.lease_released,
                              "circuit": result.circuit, "costUSD": result.cost_usd})

    def _providers(self, request: Request) -> Response:
        namespace = namespace_filter(request.query)
        table = self.table
        states = table.providers()
        now = table.clock()
        return json_response({"providers": [provider_view(s, now) for s in states
                                            if namespace is None or s.key[0] == namespace]})

    def _policies(self, request: Request) -> Response:
        namespace = namespace_filter(request.query)
        table = self.table
        policies = table.policies()
        now = table.clock()
        return json_response({"policies": [policy_view(p, table, now) for p in policies
                                           if namespace is None or p.key[0] == namespace]})

    def _healthz(self, request: Request) -> Response:
        return json_response({"status": "ok"})

    def _readyz(self, request: Request) -> Response:
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

    def _metrics_text(self, request: Request) -> Response:
        return 200, METRICS_TYPE, generate_latest(self.metrics.registry), ()

    def _openapi_json(self, request: Request) -> Response:
        return 200, JSON, self._openapi, ()


def unknown_policy(error: UnknownPolicy) -> ApiError:
    what = f"policy {error.name!r}" if error.name else "default policy"
    return ApiError(404, "unknown_policy", f"no {what} in namespace {error.namespace!r}",
                    {"namespace": error.namespace, "policy": error.name})


def no_provider_available(error: NoProviderAvailable) -> ApiError:
    return ApiError(503, "no_provider_available", str(error), {
        "namespace": error.namespace, "policy": error.policy,
        "selected": error.selected, "excluded": error.excluded,
        "candidates": [candidate_view(c) for c in error.candidates],
        "truncated": len(error.candidates) < error.selected})


def create_app(table: RoutingTable, *, readiness: Readiness | None = None,
               metrics: ServiceMetrics | None = None,
               access: Access | None = None) -> RouteService:
    """The route API over ``table``, for ``Server`` or ``serve``. ``readiness`` decides
    ``/readyz``; ``metrics`` lets the caller share its ``ServiceMetrics`` with the prober and
    the operator; ``access`` decides who may use which policy (default: everybody)."""
    return RouteService(table, readiness=readiness, metrics=metrics, access=access)


__all__ = ["ErrorShape", "Readiness", "RouteService", "create_app", "no_provider_available",
           "unknown_policy"]
