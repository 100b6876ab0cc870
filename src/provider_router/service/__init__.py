"""The HTTP route API around the routing engine.

One application object, mounted by standalone mode and by the operator in their own event
loop: ``create_app(table)`` builds it, ``serve(app, host, port)`` or ``Server`` runs it, other
edges mount their endpoints on it (``add_route``, ``add_prefix``) and decide access through
``Access`` (who the ``Caller`` is, then whether it may use a policy), and
``ServiceMetrics`` is its Prometheus registry, which the prober (``observe_probe``) and the
operator (``set_table_stale``) also write to. ``tune_gc`` is for the process entry points:
a routing table of a thousand providers makes CPython's default GC the largest cost of a route.
"""

from provider_router.service._access import ANONYMOUS, Access, Anonymous, Caller, OpenAccess
from provider_router.service._app import (
    ErrorShape,
    Readiness,
    RouteService,
    create_app,
    no_provider_available,
    unknown_policy,
)
from provider_router.service._errors import ApiError
from provider_router.service._http import (
    JSON,
    Answer,
    Handler,
    Headers,
    Reply,
    Request,
    Response,
    Stream,
    error_response,
    json_response,
    status_of,
)
from provider_router.service._metrics import CIRCUIT_VALUES, ServiceMetrics
from provider_router.service._models import (
    ErrorOut,
    PoliciesOut,
    ProvidersOut,
    ReportInput,
    ReportOut,
    RouteInput,
    RouteOut,
)
from provider_router.service._openapi import openapi_document
from provider_router.service._parsing import parse_route_body, parse_route_query
from provider_router.service._server import Server, bind_socket, serve, tune_gc

__all__ = [
    "ANONYMOUS",
    "CIRCUIT_VALUES",
    "JSON",
    "Access",
    "Anonymous",
    "Answer",
    "ApiError",
    "Caller",
    "ErrorOut",
    "ErrorShape",
    "Handler",
    "Headers",
    "OpenAccess",
    "PoliciesOut",
    "ProvidersOut",
    "Readiness",
    "Reply",
    "ReportInput",
    "ReportOut",
    "Request",
    "Response",
    "RouteInput",
    "RouteOut",
    "RouteService",
    "Server",
    "ServiceMetrics",
    "Stream",
    "bind_socket",
    "create_app",
    "error_response",
    "json_response",
    "no_provider_available",
    "openapi_document",
    "parse_route_body",
    "parse_route_query",
    "serve",
    "status_of",
    "tune_gc",
    "unknown_policy",
]
