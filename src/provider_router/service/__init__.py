"""The HTTP route API (DESIGN section 4) around the routing engine.

One ASGI application, mounted by standalone mode and by the operator in their own event loop:
``create_app(table)`` builds it, ``serve(app, host, port)`` or ``Server`` runs it, and
``ServiceMetrics`` is its Prometheus registry, which the prober (``observe_probe``) and the
operator (``set_table_stale``) also write to. ``tune_gc`` is for the process entry points:
a routing table of a thousand providers makes CPython's default GC the largest cost of a route.
"""

from provider_router.service._app import (
    ASGIApp,
    Readiness,
    RouteService,
    create_app,
    parse_route_body,
    parse_route_query,
)
from provider_router.service._errors import ApiError
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
from provider_router.service._server import (
    Backend,
    Server,
    bind_socket,
    serve,
    tune_gc,
    uvicorn_config,
)

__all__ = [
    "CIRCUIT_VALUES",
    "ASGIApp",
    "ApiError",
    "Backend",
    "ErrorOut",
    "PoliciesOut",
    "ProvidersOut",
    "Readiness",
    "ReportInput",
    "ReportOut",
    "RouteInput",
    "RouteOut",
    "RouteService",
    "Server",
    "ServiceMetrics",
    "bind_socket",
    "create_app",
    "openapi_document",
    "parse_route_body",
    "parse_route_query",
    "serve",
    "tune_gc",
    "uvicorn_config",
]
