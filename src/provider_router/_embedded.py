"""The embedded router: the seed's library API over the same engine the operator runs.

An application that wants routing in-process, with no cluster and no HTTP hop, builds a
``ProviderRouter``, registers ``ProviderInfo``s and asks ``route()``. Underneath is one
``RoutingTable`` with a single default policy whose spec comes from ``RouterConfig``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import httpx

from provider_router._defaults import DEFAULT_LEASE_TTL
from provider_router.api import (
    ApiFormat,
    Budget,
    BudgetWindow,
    CircuitState,
    Failover,
    LLMProviderSpec,
    Requirements,
    RoutingPolicySpec,
    StickySessions,
    Strategy,
)
from provider_router.engine import (
    Availability,
    Clock,
    Health,
    NoProviderAvailable,
    Outcome,
    OutcomeKind,
    ProbeResult,
    ProviderState,
    RouteDecision,
    RouteRequest,
    RoutingError,
    RoutingTable,
    reasons,
)
from provider_router.health import probe, probe_client

RoutingStrategy = Strategy
"""The seed's name for the strategies: ``RoutingStrategy.ROUND_ROBIN`` and so on."""

_NAMESPACE = "default"
_POLICY = "default"

T = TypeVar("T")


@dataclass
class ProviderInfo:
    """A provider as the embedded API registers it (the seed's ``ProviderInfo``)."""

    name: str
    base_url: str
    api_format: ApiFormat | str = ApiFormat.OPENAI
    capabilities: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    priority: int = 0
    weight: int = 1
    cost_per_1k_tokens: float = 0.0
    avg_latency_ms: float | None = None
    max_concurrent: int | None = None
    rate_limit_rpm: int | None = None
    rate_limit_tpm: int | None = None
    labels: dict[str, str] = field(default_factory=dict)
    credential: str | None = field(default=None, repr=False)
    disabled: bool = False

    def to_spec(self) -> LLMProviderSpec:
        """Validate into the API type; a bad field raises ``pydantic.ValidationError``."""
        return LLMProviderSpec.model_validate({
            "baseURL": self.base_url, "apiFormat": self.api_format,
            "capabilities": list(self.capabilities), "models": list(self.models),
            "priority": self.priority, "weight": self.weight,
            "costPer1kTokens": self.cost_per_1k_tokens, "avgLatencyMs": self.avg_latency_ms,
            "maxConcurrent": self.max_concurrent, "rateLimitRPM": self.rate_limit_rpm,
            "rateLimitTPM": self.rate_limit_tpm, "disabled": self.disabled,
        })


@dataclass
class RouterConfig:
    """The seed's ``RouterConfig``, plus the knobs the engine adds."""

    strategy: Strategy = Strategy.ROUND_ROBIN
    enable_failover: bool = True
    failover_threshold: int = 3
    cooldown_secs: int = 30
    max_fallbacks: int = 2
    health_check_interval_secs: int = 30
    sticky_sessions: bool = False
    sticky_ttl_secs: int = 3600
    budget_usd: float | None = None
    budget_window: BudgetWindow | str = BudgetWindow.DAY
    lease_ttl_secs: float = DEFAULT_LEASE_TTL

    def to_policy(self) -> RoutingPolicySpec:
        return RoutingPolicySpec(
            strategy=Strategy(self.strategy), default=True,
            failover=Failover(enabled=self.enable_failover,
                              failure_threshold=self.failover_threshold,
                              cooldown_seconds=self.cooldown_secs,
                              max_fallbacks=self.max_fallbacks),
            health_check_interval_seconds=self.health_check_interval_secs,
            sticky_sessions=StickySessions(enabled=self.sticky_sessions,
                                           ttl_seconds=self.sticky_ttl_secs),
            budget=(Budget(limit_usd=self.budget_usd, window=BudgetWindow(self.budget_window))
                    if self.budget_usd is not None else None),
            requirements=Requirements())


@dataclass
class RouteRequirements:
    capabilities: list[str] = field(default_factory=list)
    model: str | None = None
    session: str | None = None
    stream: bool = False
    """The call will stream: a Latency strategy ranks by time to first token (as
    ``report``'s ``ttft_ms`` measured it), where it knows one."""


@dataclass
class ProviderMetrics:
    """Figures measured outside the router, pushed in with ``update_metrics``."""

    avg_latency_ms: float | None = None
    error_rate: float | None = None
    load: float | None = None


@dataclass(frozen=True)
class ProviderStatus:
    health: Health
    avg_latency_ms: float
    load: float
    in_flight: int
    circuit: CircuitState
    error_rate: float
    available: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class HealthReport:
    name: str
    status: Health
    latency_ms: float | None
    reason: str
    message: str


class AllProvidersFailed(RoutingError):
    def __init__(self, errors: dict[str, BaseException]) -> None:
        self.errors = errors
        detail = "; ".join(f"{name}: {error!r}" for name, error in errors.items())
        super().__init__(f"every provider failed: {detail}")


class _Failover:
    """One decision's candidates tried in order, each outcome reported as it happens."""

    def __init__(self, router: ProviderRouter, decision: RouteDecision) -> None:
        self.router, self.decision = router, decision
        self.errors: dict[str, BaseException] = {}
        self._index = 0

    def candidates(self) -> Iterator[ProviderInfo]:
        for index, target in enumerate((self.decision.target, *self.decision.fallbacks)):
            self._index = index
            yield self.router._infos[target.provider.name]

    def failed(self, info: ProviderInfo, error: BaseException) -> None:
        self.errors[info.name] = error
        self._report(info.name, OutcomeKind.ERROR)

    def succeeded(self, info: ProviderInfo) -> None:
        self._report(info.name, OutcomeKind.SUCCESS)

    def exhausted(self) -> AllProvidersFailed:
        return AllProvidersFailed(self.errors)

    def _report(self, name: str, outcome: OutcomeKind) -> None:
        # The primary holds the decision's lease; a fallback is reported by name.
        if self._index == 0 and self.decision.lease_id is not None:
            self.router.table.report(Outcome(outcome, lease_id=self.decision.lease_id))
        else:
            self.router.table.report(Outcome(outcome, provider=name, namespace=_NAMESPACE,
                                             policy=_POLICY))


class ProviderRouter:
    """Route requests across registered providers, in-process."""

    def __init__(self, strategy: Strategy = Strategy.ROUND_ROBIN, *,
                 config: RouterConfig | None = None, clock: Clock | None = None,
                 rng: random.Random | None = None) -> None:
        self.config = config or RouterConfig(strategy=strategy)
        self.table = RoutingTable(clock=clock or time.monotonic, rng=rng,
                                  lease_ttl=self.config.lease_ttl_secs)
        self.table.upsert_policy(_NAMESPACE, _POLICY, self.config.to_policy())
        self._infos: dict[str, ProviderInfo] = {}

    @classmethod
    def with_config(cls, config: RouterConfig, *, clock: Clock | None = None,
                    rng: random.Random | None = None) -> ProviderRouter:
        return cls(config.strategy, config=config, clock=clock, rng=rng)

    # -- registration ------------------------------------------------------------------------

    def register(self, provider: ProviderInfo) -> None:
        spec = provider.to_spec()
        self.table.upsert_provider(_NAMESPACE, provider.name, spec, provider.labels)
        self._infos[provider.name] = provider

    def unregister(self, name: str) -> bool:
        self._infos.pop(name, None)
        return self.table.remove_provider(_NAMESPACE, name)

    # -- routing -----------------------------------------------------------------------------

    def decide(self, requirements: RouteRequirements | None = None, *, lease: bool = True,
               explain: bool = False) -> RouteDecision:
        """The full decision: primary, ordered fallbacks, lease and (optionally) reasons."""
        req = requirements or RouteRequirements()
        return self.table.route(RouteRequest(
            namespace=_NAMESPACE, policy=_POLICY, capabilities=tuple(req.capabilities),
            model=req.model, session=req.session, stream=req.stream, explain=explain,
            lease=lease))

    def route(self, requirements: RouteRequirements | None = None) -> ProviderInfo:
        """The provider to call; raises ``NoProviderAvailable`` with reasons if none is."""
        return self._infos[self.decide(requirements, lease=False).target.provider.name]

    def route_with_failover(self, requirements: RouteRequirements | None = None,
                            attempt: Callable[[ProviderInfo], T] | None = None
                            ) -> ProviderInfo | T:
        """Without ``attempt``: the provider to call. With it: call ``attempt`` on the primary,
        then on each fallback in order, reporting each outcome, and return the first result."""
        if attempt is None:
            return self.route(requirements)
        run = _Failover(self, self.decide(requirements))
        for info in run.candidates():
            try:
                result = attempt(info)
            except Exception as error:  # any failure moves on to the next candidate
                run.failed(info, error)
                continue
            run.succeeded(info)
            return result
        raise run.exhausted()

    async def aroute_with_failover(self, requirements: RouteRequirements | None,
                                   attempt: Callable[[ProviderInfo], Awaitable[T]]) -> T:
        """``route_with_failover`` for coroutine attempts."""
        run = _Failover(self, self.decide(requirements))
        for info in run.candidates():
            try:
                result = await attempt(info)
            except Exception as error:  # any failure moves on to the next candidate
                run.failed(info, error)
                continue
            run.succeeded(info)
            return result
        raise run.exhausted()

    def report(self, name: str, outcome: OutcomeKind | str, *, lease_id: str | None = None,
               latency_ms: float | None = None, retry_after_seconds: float | None = None,
               input_tokens: int = 0, output_tokens: int = 0,
               ttft_ms: float | None = None) -> None:
        """Tell the router how a call went: drives load, circuits, rate limits and spend.
        ``ttft_ms``: a streamed call's time to its first chunk (ranks streamed routes)."""
        self.table.report(Outcome(
            OutcomeKind(outcome), lease_id=lease_id, provider=None if lease_id else name,
            namespace=_NAMESPACE, policy=_POLICY, latency_ms=latency_ms, ttft_ms=ttft_ms,
            retry_after_seconds=retry_after_seconds, input_tokens=input_tokens,
            output_tokens=output_tokens))

    # -- metrics and health ------------------------------------------------------------------

    def update_metrics(self, name: str, metrics: ProviderMetrics) -> None:
        self.table.set_metrics(_NAMESPACE, name, avg_latency_ms=metrics.avg_latency_ms,
                               error_rate=metrics.error_rate, load=metrics.load)

    def status(self, name: str) -> ProviderStatus:
        return self.all_statuses()[self.table.provider(_NAMESPACE, name).key[1]]

    def all_statuses(self) -> dict[str, ProviderStatus]:
        """Every provider as routing sees it: through the router's policy, so that with
        failover disabled an open circuit does not make a provider unavailable."""
        seen = {a.provider: a for a in self.table.availability(_NAMESPACE, _POLICY).providers}
        return {s.key[1]: self._status_of(s, seen.get(s.key)) for s in self.table.providers()}

    def _status_of(self, state: ProviderState, seen: Availability | None) -> ProviderStatus:
        now = self.table.clock()
        blocks = state.blocks if seen is None else seen.blocks
        return ProviderStatus(
            health=state.health, avg_latency_ms=state.latency_ms(), load=state.load(),
            in_flight=state.in_flight, circuit=state.breaker.state(now),
            error_rate=state.error_rate, available=not blocks,
            reasons=tuple(reasons(blocks)))

    async def health_check(self, name: str, *,
                           client: httpx.AsyncClient | None = None) -> HealthReport:
        """Probe one provider now and feed the verdict to the router. Without ``client``, the
        probe goes through ``probe_client()``: never via an environment proxy, no redirects."""
        spec = self.table.provider(_NAMESPACE, name).spec  # raises UnknownProvider
        info = self._infos[name]
        if client is None:
            async with probe_client(1) as own:
                result = await probe(own, spec, info.credential)
        else:
            result = await probe(client, spec, info.credential)
        state = self.table.record_probe(_NAMESPACE, name, result)
        return HealthReport(name, state.health, result.latency_ms, result.reason,
                            result.message)


__all__ = [
    "AllProvidersFailed",
    "HealthReport",
    "NoProviderAvailable",
    "ProbeResult",
    "ProviderInfo",
    "ProviderMetrics",
    "ProviderRouter",
    "ProviderStatus",
    "RouteRequirements",
    "RouterConfig",
    "RoutingStrategy",
]
