"""The routing engine: pure, synchronous, no I/O.

It holds providers and policies, answers route requests in microseconds from indexes that are
kept current as things change, and learns from probe results and reported outcomes. Time comes
from an injected clock, so every behaviour can be tested without sleeping.
"""

from provider_router._defaults import DEFAULT_LEASE_TTL
from provider_router.engine._availability import Availability, PolicyAvailability
from provider_router.engine._decision import (
    Candidate,
    NoProviderAvailable,
    Outcome,
    OutcomeKind,
    ProbeResult,
    ProviderUnavailable,
    ReportResult,
    Role,
    RouteDecision,
    RouteRequest,
    RoutingError,
    UnknownLease,
    UnknownPolicy,
    UnknownProvider,
)
from provider_router.engine._fleet import Fleet, FleetSnapshot, Flip, ProviderFigures
from provider_router.engine._load import (
    MAX_DISCOVERED_MODELS,
    SATURATED_ENTER,
    SATURATED_LEAVE,
    SATURATION_SAMPLES,
    LiveLoad,
    LoadSample,
    load_view,
    normalise_models,
)
from provider_router.engine._policy import PolicyState
from provider_router.engine._ratelimit import (
    HEADER_PREFIXES,
    MAX_RESET_SECONDS,
    RateLimitInfo,
    parse_rate_limit_headers,
)
from provider_router.engine._reasons import Block, reasons
from provider_router.engine._state import (
    Health,
    ProviderKey,
    ProviderState,
    ProviderView,
    Target,
    api_base_for,
)
from provider_router.engine._table import Clock, RoutingTable
from provider_router.engine._wire import WIRE_ANTHROPIC, WIRE_OPENAI, wire_capability

__all__ = [
    "DEFAULT_LEASE_TTL",
    "HEADER_PREFIXES",
    "MAX_DISCOVERED_MODELS",
    "MAX_RESET_SECONDS",
    "SATURATED_ENTER",
    "SATURATED_LEAVE",
    "SATURATION_SAMPLES",
    "WIRE_ANTHROPIC",
    "WIRE_OPENAI",
    "Availability",
    "Block",
    "Candidate",
    "Clock",
    "Fleet",
    "FleetSnapshot",
    "Flip",
    "Health",
    "LiveLoad",
    "LoadSample",
    "NoProviderAvailable",
    "Outcome",
    "OutcomeKind",
    "PolicyAvailability",
    "PolicyState",
    "ProbeResult",
    "ProviderFigures",
    "ProviderKey",
    "ProviderState",
    "ProviderUnavailable",
    "ProviderView",
    "RateLimitInfo",
    "ReportResult",
    "Role",
    "RouteDecision",
    "RouteRequest",
    "RoutingError",
    "RoutingTable",
    "Target",
    "UnknownLease",
    "UnknownPolicy",
    "UnknownProvider",
    "api_base_for",
    "load_view",
    "normalise_models",
    "parse_rate_limit_headers",
    "reasons",
    "wire_capability",
]
