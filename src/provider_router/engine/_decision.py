"""What the engine answers: requests, decisions, outcomes and the errors it raises."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from provider_router.api import Strategy
from provider_router.engine._ratelimit import RateLimitInfo
from provider_router.engine._state import Target

MAX_NAMED_IN_MESSAGE = 5


@dataclass(frozen=True, slots=True)
class RouteRequest:
    namespace: str = "default"
    policy: str | None = None
    capabilities: tuple[str, ...] = ()
    model: str | None = None
    session: str | None = None
    explain: bool = False
    lease: bool = True
    stream: bool = False
    """The call will stream its answer: the Latency strategy then ranks by time to first
    token where reports measured one."""


class Role(StrEnum):
    PRIMARY = "primary"
    FALLBACK = "fallback"
    STANDBY = "standby"
    EXCLUDED = "excluded"


@dataclass(frozen=True, slots=True)
class Candidate:
    """One selected provider and what became of it in this decision."""

    name: str
    namespace: str
    role: Role
    reasons: tuple[str, ...] = ()
    detail: str = ""


@dataclass(slots=True)
class RouteDecision:
    """One answer. Not frozen: a frozen dataclass's constructor costs a microsecond or two,
    and this one is built on every route."""

    target: Target
    fallbacks: tuple[Target, ...]
    policy: str
    namespace: str
    strategy: Strategy
    lease_id: str | None = None
    sticky: bool = False
    candidates: tuple[Candidate, ...] | None = None


class OutcomeKind(StrEnum):
    SUCCESS = "success"
    ERROR = "error"
    TIMEOUT = "timeout"
    RATE_LIMITED = "rate_limited"


@dataclass(frozen=True, slots=True)
class Outcome:
    """A workload's report: by lease, or by provider when it called one without a lease."""

    outcome: OutcomeKind
    lease_id: str | None = None
    provider: str | None = None
    namespace: str = "default"
    policy: str | None = None
    latency_ms: float | None = None
    status_code: int | None = None
    retry_after_seconds: float | None = None
    ttft_ms: float | None = None
    """Time to first token: for a streamed answer, until its first chunk arrived."""
    input_tokens: int = 0
    output_tokens: int = 0
    rate_limit: RateLimitInfo | None = None
    """What the provider's answer said about its limits (its rate-limit headers)."""


@dataclass(frozen=True, slots=True)
class ReportResult:
    provider: str
    namespace: str
    lease_released: bool
    circuit: str
    cost_usd: float


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One health probe's verdict, as the prober saw it."""

    ok: bool
    latency_ms: float | None = None
    reason: str = "ProbeSucceeded"
    message: str = ""
    unauthorized: bool = False
    models: tuple[str, ...] | None = None
    """The models the probe answer listed; None if it listed none we could read."""


class RoutingError(Exception):
    """Base of the engine's errors: each says what was asked and why it cannot be answered."""


class UnknownPolicy(RoutingError):
    def __init__(self, namespace: str, name: str | None) -> None:
        self.namespace, self.name = namespace, name
        what = f"policy {name!r}" if name else "a default policy"
        super().__init__(f"no {what} in namespace {namespace!r}")


class UnknownProvider(RoutingError):
    def __init__(self, namespace: str, name: str) -> None:
        self.namespace, self.name = namespace, name
        super().__init__(f"no provider {name!r} in namespace {namespace!r}")


class UnknownLease(RoutingError):
    def __init__(self, lease_id: str) -> None:
        self.lease_id = lease_id
        super().__init__(f"lease {lease_id!r} is unknown, already reported, or expired")


class ProviderUnavailable(RoutingError):
    """One named provider may not take a call under a policy now (``RoutingTable.acquire``):
    it filled up, its circuit opened or its trial is taken since it was named a fallback."""

    def __init__(self, namespace: str, name: str, policy: str,
                 reasons: tuple[str, ...]) -> None:
        self.namespace, self.name, self.policy, self.reasons = namespace, name, policy, reasons
        why = ", ".join(reasons) or "not selected by the policy"
        super().__init__(f"provider {namespace}/{name} cannot take a call under policy "
                         f"{namespace}/{policy} now: {why}")


class NoProviderAvailable(RoutingError):
    """Nothing is eligible. ``excluded`` counts the reasons over every selected provider;
    ``candidates`` says why for the first of them by name (all of them when ``selected`` is
    small). Bounded, because a policy over thousands of providers that are all at capacity
    answers many of these, exactly when the router must stay cheap."""

    def __init__(self, policy: str, namespace: str, candidates: tuple[Candidate, ...],
                 excluded: Mapping[str, int], selected: int) -> None:
        self.policy, self.namespace, self.candidates = policy, namespace, candidates
        self.excluded = dict(sorted(excluded.items()))
        self.selected = selected
        if self.selected:
            shown = "; ".join(f"{c.name}: {', '.join(c.reasons)}"
                              for c in candidates[:MAX_NAMED_IN_MESSAGE])
            more = "; ..." if self.selected > min(len(candidates), MAX_NAMED_IN_MESSAGE) else ""
            why = f"{shown}{more}" if shown else "none is eligible"
            if self.selected > 1:
                counts_text = ", ".join(f"{r} {n}" for r, n in self.excluded.items())
                why = f"{self.selected} selected, none eligible ({counts_text}): {why}"
        else:
            why = "the policy selects no providers"
        super().__init__(f"no provider available under policy {namespace}/{policy}: {why}")
