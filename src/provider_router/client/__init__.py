"""The workload's client for a running router (standalone or operator): route, then report.

``RouterClient`` (blocking) and ``AsyncRouterClient`` (asyncio) speak the route API
(``/v1/route``, ``/v1/report``; the README and ``/openapi.json`` describe it). Their
``call()`` context manager routes on enter and reports on exit, so a
workload gets failover, circuit breaking, 429 back-off and spend tracking by wrapping its
provider call in one ``with`` block. Against a router that checks who calls, they send the
projected ServiceAccount token (re-read when it rotates) or an API key.
"""

from provider_router._defaults import DEFAULT_URL
from provider_router.client._async import AsyncCall, AsyncRouterClient
from provider_router.client._auth import (
    API_KEY_ENV,
    DEFAULT_TOKEN_FILE,
    TOKEN_FILE_ENV,
    BearerAuth,
    TokenFile,
)
from provider_router.client._classify import (
    RATE_LIMIT_HEADER_PREFIXES,
    Classified,
    classify,
    parse_retry_after,
    rate_limit_headers,
)
from provider_router.client._common import URL_ENV
from provider_router.client._errors import (
    BadRequestError,
    ForbiddenError,
    NoProviderAvailableError,
    NotFoundError,
    RouterError,
    RouterUnavailableError,
    UnauthorizedError,
)
from provider_router.client._sync import Call, RouterClient
from provider_router.client._types import Outcome, Route, RouteCandidate, RouteProvider

__all__ = [
    "API_KEY_ENV",
    "DEFAULT_TOKEN_FILE",
    "DEFAULT_URL",
    "RATE_LIMIT_HEADER_PREFIXES",
    "TOKEN_FILE_ENV",
    "URL_ENV",
    "AsyncCall",
    "AsyncRouterClient",
    "BadRequestError",
    "BearerAuth",
    "Call",
    "Classified",
    "ForbiddenError",
    "NoProviderAvailableError",
    "NotFoundError",
    "Outcome",
    "Route",
    "RouteCandidate",
    "RouteProvider",
    "RouterClient",
    "RouterError",
    "RouterUnavailableError",
    "TokenFile",
    "UnauthorizedError",
    "classify",
    "parse_retry_after",
    "rate_limit_headers",
]
