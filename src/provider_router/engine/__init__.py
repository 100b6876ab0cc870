"""The routing engine: pure, synchronous, no I/O.

It holds providers and policies, answers route requests in microseconds from indexes that are
kept current as things change, and learns from probe results and reported outcomes. Time comes
from an injected clock, so every behaviour can be tested without sleeping.
"""

from provider_router.engine._decision import (
    Candidate,
    NoProviderAvailable,
    Outcome,
    OutcomeKind,
    ProbeResult,
    ReportResult,
    Role,
    RouteDecision,
    RouteRequest,
    RoutingError,
    UnknownLease,
    UnknownPolicy,
    UnknownProvider,
)
from provider_router.engine._policy import PolicyState
from provider_router.engine._reasons import Block, reasons
from provider_router.engine._state import (
    Health,
    ProviderKey,
    ProviderState,
    ProviderView,
    Target,
    api_base_for,
)
from provider_router.engine._table import DEFAULT_LEASE_TTL, Clock, RoutingTable
from provider_router.engine._wire import WIRE_ANTHROPIC, WIRE_OPENAI, wire_capability

__all__ = [
    "DEFAULT_LEASE_TTL",
    "WIRE_ANTHROPIC",
    "WIRE_OPENAI",
    "Block",
    "Candidate",
    "Clock",
    "Health",
    "NoProviderAvailable",
    "Outcome",
    "OutcomeKind",
    "PolicyState",
    "ProbeResult",
    "ProviderKey",
    "ProviderState",
    "ProviderView",
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
    "reasons",
    "wire_capability",
]
