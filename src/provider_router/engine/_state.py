"""Live state of one provider: what the spec says plus what probes and outcomes have shown.

Everything here is plain data and arithmetic over an injected ``now``; the table decides when
to recompute it and which indexes to update.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from provider_router.api import ApiFormat, LLMProviderSpec
from provider_router.engine._circuit import CircuitBreaker
from provider_router.engine._load import LiveLoad
from provider_router.engine._reasons import Block
from provider_router.engine._windows import SlidingWindow
from provider_router.engine._wire import wire_capability

RATE_WINDOW_SECONDS: Final = 60.0
MAX_UNLEASED_REMEMBERED: Final = 10_000
"""Lease-less routes remembered per provider; beyond it, the oldest are forgotten (and a
report for one counts as a new request, the old behaviour, erring towards the limit)."""

ProviderKey = tuple[str, str]
"""``(namespace, name)``: how the table addresses a provider."""

DEFAULT_CAPACITY: Final = 100
"""In-flight leases that count as full load for a provider with no ``maxConcurrent``."""

DEFAULT_LATENCY_MS: Final = 1000.0
"""Latency assumed for a provider with neither a prior nor a measurement."""

LATENCY_ALPHA: Final = 0.2
"""Weight of the newest sample in the latency and time-to-first-token EWMAs."""


def ewma(previous: float | None, sample: float) -> float:
    """The moving average of the latency figures: the first sample, then ``LATENCY_ALPHA``
    of each new one."""
    return sample if previous is None else previous + LATENCY_ALPHA * (sample - previous)


class Health(StrEnum):
    UNKNOWN = "Unknown"
    HEALTHY = "Healthy"
    UNHEALTHY = "Unhealthy"
    UNAUTHORIZED = "Unauthorized"


@dataclass(frozen=True, slots=True)
class Target:
    """A provider and the model to ask it for: one entry of a route answer."""

    provider: ProviderView
    model: str | None


@dataclass(frozen=True, slots=True)
class ProviderView:
    """The public face of a provider in a route answer. Holds no credentials."""

    name: str
    namespace: str
    base_url: str
    api_base: str
    api_format: ApiFormat


def api_base_for(base_url: str) -> str:
    """The ``base_url`` an OpenAI-compatible SDK expects: the base URL ending in ``/v1``."""
    trimmed = base_url.rstrip("/")
    return trimmed if trimmed.endswith("/v1") else trimmed + "/v1"


def capability_set(names: Iterable[str]) -> frozenset[str]:
    """Capabilities in the one form they are compared in: case-folded, so a request for
    ``chat`` finds a provider declaring ``Chat`` (the seed library compares them that way)."""
    return frozenset(name.casefold() for name in names)


class ProviderState:
    """One provider's spec and runtime state."""

    def __init__(self, key: ProviderKey, spec: LLMProviderSpec,  # noqa: PLR0915 (plain fields)
                 labels: dict[str, str] | None = None, generation: int | None = None) -> None:
        self.key = key
        self.labels: MappingProxyType[str, str] = MappingProxyType(dict(labels or {}))
        self.generation = generation
        self.spec = spec
        self.view = ProviderView(
            name=key[1], namespace=key[0], base_url=spec.base_url,
            api_base=api_base_for(spec.base_url), api_format=spec.api_format)
        # The wire format is a capability too, so that a proxied call can require it.
        self.capabilities = capability_set([*spec.capabilities,
                                            wire_capability(spec.api_format)])
        self.models = frozenset(spec.models)
        """Models it serves: the spec's list, else the ones it listed when probed."""
        self.discovered_models: tuple[str, ...] = ()
        self.capacity = float(spec.max_concurrent or DEFAULT_CAPACITY)
        self.cost = spec.nominal_cost_per1k
        self.prices = (spec.input_cost_per1k, spec.output_cost_per1k)
        """Per 1,000 input and output tokens."""
        self.breaker = CircuitBreaker()
        self.health = Health.UNKNOWN if spec.health_check.enabled else Health.HEALTHY
        self.health_message = ""
        self.health_reason = ""
        self.probe_failures = 0
        self.probe_successes = 0
        self.last_probe_at: float | None = None
        self.probe_latency_ms: float | None = None
        self.reported_latency_ms: float | None = None
        self.reported_ttft_ms: float | None = None
        """Time to first token of streamed calls, as reports measured it (EWMA)."""
        self.cooling_until: float | None = None
        self.in_flight = 0
        self.requests = SlidingWindow(RATE_WINDOW_SECONDS)
        self.unleased: deque[float] = deque(maxlen=MAX_UNLEASED_REMEMBERED)
        """When routes without a lease went here, within the rate window: a lease-less report
        that follows is the same call, already counted as a request."""
        self.tokens = SlidingWindow(RATE_WINDOW_SECONDS)
        # The other replicas' latest totals, added when limits are compared, and the share of
        # each limit this replica enforces alone; kept by the table's Fleet.
        self.others_requests = 0.0
        self.others_tokens = 0.0
        self.others_in_flight = 0
        self.share = 1.0
        self.external_load = 0.0
        self.error_rate = 0.0
        self.spend_usd = 0.0
        self.routed = 0
        self.reported = 0
        """Outcomes reported, of every kind: with ``routed``, how many calls are still out."""
        self.outcomes: dict[str, int] = {}
        self.last_error: str | None = None
        self.blocks: int = Block.NONE
        self.live: LiveLoad | None = None
        """What the provider said about itself (load, rate limits); None until it said any."""
        self._targets: dict[str | None, Target] = {}
        self._limited = (spec.max_concurrent is not None or spec.rate_limit_rpm is not None
                         or spec.rate_limit_tpm is not None)
        self.load_ranked_pools = 0
        """Pools whose order depends on this provider's load or headroom (kept by the table)."""
        self.route_sensitive = self._limited
        """Whether routing to this provider can change its eligibility or rank. An attribute,
        not a property: every route and every lease expiry reads it."""

    def set_load_ranked_pools(self, count: int) -> None:
        self.load_ranked_pools = count
        self.route_sensitive = self._limited or count > 0

    def target_for(self, model: str | None) -> Target:
        """This provider as a route answer for ``model`` (its first model when none is asked)."""
        target = self._targets.get(model)
        if target is None:
            chosen = model if model is not None else (self.spec.models[0]
                                                      if self.spec.models else None)
            target = self._targets[model] = Target(self.view, chosen)
            if len(self._targets) > 64:
                self._targets.clear()
        return target

    def count_unleased_report(self, now: float) -> None:
        """A report without a lease: the call of an earlier lease-less route, or, if none is
        waiting, a call made without asking us, which counts as a request now."""
        unleased = self.unleased
        while unleased and unleased[0] <= now - RATE_WINDOW_SECONDS:
            unleased.popleft()
        if unleased:
            unleased.popleft()
        else:
            self.requests.add(now)

    def adopt_runtime(self, old: ProviderState) -> None:
        """Carry what was learned over to a new spec of the same provider."""
        self.breaker = old.breaker
        if self.spec.health_check.enabled and old.spec.health_check.enabled:
            self.health, self.health_message = old.health, old.health_message
            self.health_reason = old.health_reason
        self.probe_failures, self.probe_successes = old.probe_failures, old.probe_successes
        self.last_probe_at, self.probe_latency_ms = old.last_probe_at, old.probe_latency_ms
        self.reported_latency_ms = old.reported_latency_ms
        self.reported_ttft_ms = old.reported_ttft_ms
        self.cooling_until, self.in_flight = old.cooling_until, old.in_flight
        self.requests, self.tokens = old.requests, old.tokens
        self.unleased = old.unleased
        self.external_load, self.error_rate = old.external_load, old.error_rate
        self.spend_usd, self.routed, self.outcomes = old.spend_usd, old.routed, old.outcomes
        self.reported = old.reported
        self.last_error = old.last_error
        self.live = old.live
        self.set_discovered_models(old.discovered_models)

    def set_discovered_models(self, models: tuple[str, ...]) -> None:
        """Remember what the provider listed; it serves those only if its spec lists none."""
        self.discovered_models = models
        self.models = frozenset(self.spec.models or models)

    # -- derived figures ---------------------------------------------------------------------

    def compute_blocks(self, now: float) -> int:
        # On every route to a limited provider: plain attribute reads, no method calls where
        # a comparison will do.
        spec = self.spec
        blocks = Block.DISABLED if spec.disabled else Block.NONE
        health = self.health
        if health is Health.UNHEALTHY:
            blocks |= Block.UNHEALTHY
        elif health is Health.UNAUTHORIZED:
            blocks |= Block.UNAUTHORIZED
        breaker = self.breaker
        if breaker.open_until is not None:
            if now < breaker.open_until:
                blocks |= Block.CIRCUIT_OPEN
            elif breaker.trial is not None:
                blocks |= Block.HALF_OPEN_TRIAL
        if self.cooling_until is not None and now < self.cooling_until:
            blocks |= Block.COOLING_DOWN
        live = self.live
        if live is not None and live.exhausted_until is not None and now < live.exhausted_until:
            blocks |= Block.REQUESTS_EXHAUSTED
        limit = spec.max_concurrent
        share = self.share
        if limit is not None and self.in_flight + self.others_in_flight >= limit * share:
            blocks |= Block.AT_CAPACITY
        limit = spec.rate_limit_rpm
        if limit is not None and (self.requests.total(now) + self.others_requests
                                  >= limit * share):
            blocks |= Block.RPM_EXHAUSTED
        limit = spec.rate_limit_tpm
        if limit is not None and (self.tokens.total(now) + self.others_tokens
                                  >= limit * share):
            blocks |= Block.TPM_EXHAUSTED
        return blocks

    def next_change(self, now: float) -> float | None:
        """The next moment at which eligibility or headroom changes with no event."""
        times: list[float] = []
        breaker = self.breaker
        if breaker.open_until is not None:
            if now < breaker.open_until:
                times.append(breaker.open_until)
            else:  # half-open: when a trial in flight counts as failed
                expires = breaker.trial_expires_at()
                if expires is not None and now < expires:
                    times.append(expires)
        if self.cooling_until is not None and now < self.cooling_until:
            times.append(self.cooling_until)
        if self.spec.rate_limit_rpm is not None:
            expiry = self.requests.next_expiry(now)
            if expiry is not None:
                times.append(expiry)
        if self.spec.rate_limit_tpm is not None:
            expiry = self.tokens.next_expiry(now)
            if expiry is not None:
                times.append(expiry)
        if self.live is not None:
            change = self.live.next_change(now)
            if change is not None:
                times.append(change)
        return min(times) if times else None

    def latency_ms(self) -> float:
        """Measured latency if any: reported outcomes first, probes next, then the prior."""
        if self.reported_latency_ms is not None:
            return self.reported_latency_ms
        if self.probe_latency_ms is not None:
            return self.probe_latency_ms
        if self.spec.avg_latency_ms is not None:
            return self.spec.avg_latency_ms
        return DEFAULT_LATENCY_MS

    def stream_latency_ms(self) -> float:
        """What the Latency strategy ranks by for a streamed request: the time to first token
        once a report measured one (what a streaming caller waits for), else ``latency_ms``."""
        if self.reported_ttft_ms is not None:
            return self.reported_ttft_ms
        return self.latency_ms()

    def load(self) -> float:
        return max(self.in_flight / self.capacity, self.external_load)

    def headroom(self, now: float) -> float:
        """Requests left this minute: ``rateLimitRPM`` (this replica's share of it) minus the
        sliding minute's requests, the other replicas' included, so a provider allowed 500 a
        minute has more room than one allowed 100 (the seed library's meaning). No limit is
        unlimited (``inf``). TPM is not part of it: running out of tokens makes a provider
        ineligible, it does not rank it."""
        limit = self.spec.rate_limit_rpm
        if limit is None:
            return math.inf
        used = self.requests.total(now) + self.others_requests
        return max(float(limit * self.share - used), 0.0)

    def retry_at(self, now: float) -> float | None:
        """When a blocked provider may next be tried: the end of an open circuit or cooldown."""
        exhausted = self.live.exhausted_until if self.live is not None else None
        candidates = [t for t in (self.breaker.open_until, self.cooling_until, exhausted)
                      if t is not None and t > now]
        return max(candidates) if candidates else None

    def serves(self, capabilities: frozenset[str], model: str | None) -> bool:
        if not capabilities <= self.capabilities:
            return False
        return model is None or not self.models or model in self.models

    def update_latency(self, sample_ms: float) -> None:
        self.reported_latency_ms = ewma(self.reported_latency_ms, sample_ms)

    def update_ttft(self, sample_ms: float) -> None:
        self.reported_ttft_ms = ewma(self.reported_ttft_ms, sample_ms)

    def update_probe_latency(self, sample_ms: float) -> None:
        self.probe_latency_ms = ewma(self.probe_latency_ms, sample_ms)
