"""Wire shapes of the route API: the request bodies it validates and the answers it returns.

The input models are what every request is validated with, and all of them are also where the
OpenAPI document's schemas come from, so the document cannot drift from what the server
accepts and sends. Inputs are strict (no ``"5"`` for a number, no unknown keys): a typo in a
field name must be a 400 that names it, not a silently ignored preference.
"""

from __future__ import annotations

from dataclasses import astuple
from typing import Annotated, Any, Final

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic.json_schema import SkipJsonSchema

from provider_router._defaults import DEFAULT_NAMESPACE
from provider_router.api import ApiFormat, CircuitState, Strategy
from provider_router.engine import (
    MAX_RESET_SECONDS,
    Health,
    OutcomeKind,
    RateLimitInfo,
    Role,
    RouteRequest,
    parse_rate_limit_headers,
)

OBJECT_NAME: Final = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
"""A Kubernetes object name (DNS-1123 subdomain), as LLMProvider and RoutingPolicy names are."""
NAMESPACE: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
"""A Kubernetes namespace name (DNS-1123 label)."""

MAX_LATENCY_MS: Final = 86_400_000.0
MAX_RETRY_AFTER_SECONDS: Final = 86_400.0
MAX_TOKENS: Final = 1_000_000_000

ObjectName = Annotated[str, Field(min_length=1, max_length=253, pattern=OBJECT_NAME)]
Namespace = Annotated[str, Field(min_length=1, max_length=63, pattern=NAMESPACE)]
Capability = Annotated[str, Field(min_length=1, max_length=63)]
ModelName = Annotated[str, Field(min_length=1, max_length=253)]
SessionKey = Annotated[str, Field(min_length=1, max_length=1024)]
LeaseId = Annotated[str, Field(min_length=1, max_length=256)]


def _integral(value: Any) -> Any:
    # JSON Schema counts 1.0 as an integer, and so do some JSON encoders; "1" stays refused.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


StatusCode = Annotated[int, Field(ge=100, le=599), BeforeValidator(_integral)]
TokenCount = Annotated[int, Field(ge=0, le=MAX_TOKENS), BeforeValidator(_integral)]


class _Input(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid",
                              strict=True, frozen=True, allow_inf_nan=False)


class RouteInput(_Input):
    """A route request: ``POST /v1/route``'s body, and ``GET /v1/route``'s query parameters."""

    policy: ObjectName | None = Field(
        default=None, description="RoutingPolicy name; unset means the namespace's default.")
    namespace: Namespace | None = Field(
        default=None, description="Namespace of the policy. Unset: the caller's namespace (its "
        "ServiceAccount's, or its API key Secret's) if it has the policy, else 'default'.")
    capabilities: Annotated[list[Capability], Field(max_length=64)] = Field(
        default_factory=list, description="Capabilities the provider must have, in addition "
        "to the policy's own requirements.")
    model: ModelName | None = Field(default=None, description="Model the provider must serve.")
    session: SessionKey | None = Field(
        default=None, description="Session key: the same key reaches the same provider while "
        "it is eligible (sticky policies and Weighted splits).")
    explain: bool = Field(default=False, description="Add each candidate's reasons.")
    lease: bool = Field(default=True, description="Take a lease that a report releases.")
    stream: bool = Field(default=False, description="The call will stream its answer: under "
                         "the Latency strategy, providers rank by their measured time to "
                         "first token (ttftMs) where reports gave one.")

    def to_request(self) -> RouteRequest:
        return RouteRequest(namespace=self.namespace or DEFAULT_NAMESPACE, policy=self.policy,
                            capabilities=tuple(self.capabilities), model=self.model,
                            session=self.session, explain=self.explain, lease=self.lease,
                            stream=self.stream)


def _report_schema(schema: dict[str, Any]) -> None:
    # "leaseId or provider" is part of the contract, so the document says it too: a client
    # generated from it (or a fuzzer) knows that a body with neither is invalid.
    schema["anyOf"] = [
        {"required": ["leaseId"], "properties": {"leaseId": {"type": "string"}}},
        {"required": ["provider"], "properties": {"provider": {"type": "string"}}},
    ]


RequestCount = Annotated[int, Field(ge=0, le=MAX_TOKENS), BeforeValidator(_integral)]
ResetSeconds = Annotated[float, Field(ge=0, le=MAX_RETRY_AFTER_SECONDS)]
HeaderName = Annotated[str, Field(min_length=1, max_length=64)]
HeaderValue = Annotated[str, Field(max_length=256)]


class RateLimitInput(_Input):
    """What the provider's answer said about its limits (its rate-limit headers), as numbers.
    Resets are seconds from the answer; longer than an hour counts as an hour."""

    remaining_requests: RequestCount | None = None
    remaining_tokens: RequestCount | None = None
    reset_requests_seconds: ResetSeconds | None = None
    reset_tokens_seconds: ResetSeconds | None = None
    limit_requests: RequestCount | None = None
    limit_tokens: RequestCount | None = None

    def to_info(self) -> RateLimitInfo:
        def cap(seconds: float | None) -> float | None:
            return None if seconds is None else min(seconds, MAX_RESET_SECONDS)
        return RateLimitInfo(
            remaining_requests=self.remaining_requests, remaining_tokens=self.remaining_tokens,
            reset_requests_seconds=cap(self.reset_requests_seconds),
            reset_tokens_seconds=cap(self.reset_tokens_seconds),
            limit_requests=self.limit_requests, limit_tokens=self.limit_tokens)


class ReportInput(_Input):
    """A workload's report of how a routed call went (``POST /v1/report``)."""

    model_config = _Input.model_config | ConfigDict(json_schema_extra=_report_schema)

    lease_id: LeaseId | None = Field(
        default=None, description="The route answer's leaseId; reporting releases it.")
    provider: ObjectName | None = Field(
        default=None, description="The provider called, with its namespace. Required without "
        "a leaseId. With one, the outcome still counts when another replica (or this router "
        "before a restart) issued the lease: leaseReleased is then false.")
    namespace: Namespace = Field(default="default", description="Namespace of the provider.")
    policy: ObjectName | None = Field(
        default=None, description="Policy to charge the spend to when no lease held here "
        "names it.")
    outcome: OutcomeKind
    latency_ms: Annotated[float, Field(ge=0, le=MAX_LATENCY_MS)] | None = None
    ttft_ms: Annotated[float, Field(ge=0, le=MAX_LATENCY_MS)] | None = Field(
        default=None, description="Time to first token of a streamed call: milliseconds "
        "until its first chunk arrived. Ranks the provider for streamed routes under the "
        "Latency strategy; counted for successes, like latencyMs.")
    status_code: StatusCode | None = None
    retry_after_seconds: Annotated[float, Field(ge=0, le=MAX_RETRY_AFTER_SECONDS)] | None = \
        Field(default=None, description="From the provider's Retry-After, for rate_limited.")
    input_tokens: TokenCount = 0
    output_tokens: TokenCount = 0
    rate_limit: RateLimitInput | None = Field(
        default=None, description="The provider's stated limits, from its answer's headers. "
        "remainingRequests 0 excludes it until the reset.")
    rate_limit_headers: Annotated[dict[HeaderName, HeaderValue], Field(max_length=32)] | None = \
        Field(default=None, description="The answer's headers as received, parsed by the "
              "router: x-ratelimit-* and anthropic-ratelimit-* are read, others ignored. "
              "rateLimit wins where both give a figure.")

    def stated_limits(self, now: float) -> RateLimitInfo | None:
        """The provider's stated limits from either field (``now``: epoch seconds, for
        headers that give a reset as an instant); None if the report carries none."""
        parsed = (parse_rate_limit_headers(self.rate_limit_headers, now=now)
                  if self.rate_limit_headers else None)
        given = self.rate_limit.to_info() if self.rate_limit is not None else None
        if parsed is None or given is None:
            info = given or parsed
        else:
            info = RateLimitInfo(*(mine if mine is not None else theirs for mine, theirs
                                   in zip(astuple(given), astuple(parsed), strict=True)))
        return None if info is None or info.empty else info


# -- answers -------------------------------------------------------------------------------


class _Output(BaseModel):
    # Closed shapes: the document then promises no undeclared keys, and the fuzz tests check
    # that the server keeps that promise.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class TargetOut(_Output):
    """A provider to call, in the shape an SDK needs: ``apiBase`` goes to ``base_url``."""

    name: str
    namespace: str
    base_url: str = Field(alias="baseURL")
    api_base: str
    model: str | None
    api_format: ApiFormat


class CandidateOut(_Output):
    name: str
    namespace: str
    role: Role
    reasons: list[str]
    detail: str


class RouteOut(_Output):
    provider: TargetOut
    fallbacks: list[TargetOut]
    lease_id: str | None
    policy: str
    namespace: str
    strategy: Strategy
    sticky: bool
    candidates: list[CandidateOut] | SkipJsonSchema[None] = Field(
        default=None, description="Only with explain=true.")


class ReportOut(_Output):
    provider: str
    namespace: str
    lease_released: bool
    circuit: str = Field(description="Closed, Open or HalfOpen; Unknown if the provider left.")
    cost_usd: float = Field(alias="costUSD")


class ProviderOut(_Output):
    """One provider's live state. Carries no credential: the engine never holds one."""

    name: str
    namespace: str
    base_url: str = Field(alias="baseURL")
    api_base: str
    api_format: ApiFormat
    labels: dict[str, str]
    capabilities: list[str]
    models: list[str]
    priority: int
    weight: int
    cost_per1k_tokens: float = Field(alias="costPer1kTokens")
    disabled: bool
    health: Health
    health_message: str
    circuit: CircuitState
    available: bool
    reasons: list[str] = Field(description="Why it is excluded from routing, if it is.")
    in_flight: int
    max_concurrent: int | None
    latency_ms: float = Field(description="Measured (reports, then probes), else the prior.")
    ttft_ms: float | None = Field(description="Time to first token of streamed calls, as "
                                  "reports measured it; null until one did.")
    rpm_used: float = Field(alias="rpmUsed")
    rpm_limit: int | None = Field(alias="rpmLimit")
    tpm_used: float = Field(alias="tpmUsed")
    tpm_limit: int | None = Field(alias="tpmLimit")
    spend_usd: float = Field(alias="spendUSD")
    routed: int
    outcomes: dict[str, int]
    consecutive_failures: int
    last_error: str | None
    last_probe_at: str | None = Field(description="RFC 3339, UTC.")
    retry_at: str | None = Field(description="RFC 3339, UTC: when an open circuit or a "
                                 "cooldown ends.")
    retry_in_seconds: float | None
    discovered_models: list[str] = Field(
        description="Models it listed when probed; it serves these if models is empty.")
    load: LoadOut | None = Field(description="Its own figures; null until it gave any.")


class LoadOut(_Output):
    """What the provider said about itself: its own load and its stated limits."""

    fresh: bool = Field(description="Whether the load figures are recent enough to rank by.")
    age_seconds: float | None
    running: float | None
    waiting: float | None
    kv_cache_usage: float | None = Field(description="Fraction of the KV cache in use.")
    loaded_models: list[str]
    queue_load: float | None = Field(
        description="(running + waiting + routed since) / capacity, while fresh.")
    saturated: bool
    remaining_requests: int | None
    remaining_tokens: int | None
    requests_exhausted: bool


class ProviderCountsOut(_Output):
    selected: int
    healthy: int
    available: int


class SpendOut(_Output):
    window: float | None = Field(description="Spend in the budget's window; null without one.")
    total: float


class BudgetOut(_Output):
    limit_usd: float = Field(alias="limitUSD")
    window: str
    throttled: bool
    over_budget: bool


class PolicyOut(_Output):
    name: str
    namespace: str
    strategy: Strategy
    default: bool
    providers: ProviderCountsOut
    spend_usd: SpendOut = Field(alias="spendUSD")
    budget: BudgetOut | None
    routed: int
    unrouted: int


class ProvidersOut(_Output):
    providers: list[ProviderOut]


class PoliciesOut(_Output):
    policies: list[PolicyOut]


class ErrorBody(_Output):
    code: str
    message: str
    details: dict[str, Any]


class ErrorOut(_Output):
    error: ErrorBody


class HealthOut(_Output):
    status: str


class ReadyOut(_Output):
    ready: bool
    details: dict[str, Any]
