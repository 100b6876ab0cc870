"""The routing table: providers, policies and their pools, and the one place that mutates them.

Every public method takes the current time from the injected clock, first applies whatever
became due since the last call (circuits turning half-open, cooldowns and rate windows ending,
leases expiring), then does its work. Nothing here performs I/O, so the same table serves the
embedded API, standalone mode and the operator, and tests drive time by hand.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable

from provider_router._defaults import DEFAULT_LEASE_TTL
from provider_router.api import CircuitState, LLMProviderSpec, RoutingPolicySpec, Strategy
from provider_router.engine._availability import (
    Availability,
    PolicyAvailability,
    ignored_blocks,
    policy_availability,
    policy_blocks,
    provider_availability,
)
from provider_router.engine._decision import (
    Candidate,
    NoProviderAvailable,
    Outcome,
    OutcomeKind,
    ProbeResult,
    ProviderUnavailable,
    ReportResult,
    RouteDecision,
    RouteRequest,
    UnknownLease,
    UnknownPolicy,
    UnknownProvider,
)
from provider_router.engine._explain import exclusion_counts
from provider_router.engine._explain import explain as explain_candidates
from provider_router.engine._fleet import Fleet
from provider_router.engine._index import PoolIndex
from provider_router.engine._leases import DEFAULT_MAX_LEASES, Lease, LeaseBook
from provider_router.engine._load import LoadSample, live_load, normalise_models
from provider_router.engine._outcomes import apply_outcome, record_spend
from provider_router.engine._policy import PolicyState, PoolEntry
from provider_router.engine._ratelimit import RateLimitInfo
from provider_router.engine._reasons import reasons
from provider_router.engine._state import Health, ProviderKey, ProviderState

Clock = Callable[[], float]

DEFAULT_BREAKER = (3, 30.0)
MAX_EXPLAINED_UNAVAILABLE = 20
"""Providers explained one by one in an unavailable answer; the rest are counted by reason."""


class RoutingTable:
    """Providers and policies by namespace, with the live state that routing depends on."""

    def __init__(self, clock: Clock = time.monotonic, rng: random.Random | None = None,
                 lease_ttl: float = DEFAULT_LEASE_TTL,
                 max_leases: int = DEFAULT_MAX_LEASES) -> None:
        self.clock = clock
        self._leases = LeaseBook(lease_ttl, max_leases)
        self._index = PoolIndex(rng or random.Random())
        self._providers: dict[ProviderKey, ProviderState] = {}
        self._policies: dict[tuple[str, str], PolicyState] = {}
        self._providers_in: dict[str, set[ProviderKey]] = {}
        self._policies_in: dict[str, set[tuple[str, str]]] = {}
        self._default_policy: dict[str, PolicyState] = {}
        """Per namespace, the policy a request naming none gets; cleared on policy changes."""
        self._incarnations = itertools.count(1)
        self._incarnation_of: dict[ProviderKey, int] = {}
        self.version = 0
        """Bumped on every change to the set of resources; lets edges cache derived views."""
        self.fleet = Fleet(self._providers, self._policies, self._index.touch)
        """The other replicas' totals and this replica's share of each limit."""

    @property
    def lease_ttl(self) -> float:
        """Seconds after which an unreported lease is released; fixed for the table's life."""
        return self._leases.ttl

    @property
    def max_leases(self) -> int:
        """Outstanding leases kept at most; taking one more releases the oldest early."""
        return self._leases.max_leases

    @property
    def leases_evicted(self) -> int:
        """Leases released before their TTL because ``max_leases`` were out."""
        return self._leases.evicted

    # -- resources ---------------------------------------------------------------------------

    def upsert_provider(self, namespace: str, name: str, spec: LLMProviderSpec,
                        labels: dict[str, str] | None = None,
                        generation: int | None = None) -> bool:
        """Add or replace a provider; returns False when nothing routing-relevant changed."""
        key = (namespace, name)
        old = self._providers.get(key)
        new_labels = dict(labels or {})
        if old is not None and old.spec == spec and dict(old.labels) == new_labels:
            old.generation = generation
            return False
        state = ProviderState(key, spec, new_labels, generation)
        if old is not None:
            state.adopt_runtime(old)
        else:
            self._incarnation_of[key] = next(self._incarnations)
        self.fleet.adopt_provider(state, old)
        self._providers[key] = state
        self._providers_in.setdefault(namespace, set()).add(key)
        self.version += 1
        for policy in self._namespace_policies(namespace):
            was = key in policy.selected
            now_selected = policy.spec.provider_selector.matches(state.labels)
            if now_selected:
                policy.selected.add(key)
            else:
                policy.selected.discard(key)
            if was or now_selected:
                self._index.drop_policy(policy)
        self._configure_breaker(state)
        self._index.touch(state, self.clock())
        return True

    def remove_provider(self, namespace: str, name: str) -> bool:
        key = (namespace, name)
        if self._providers.pop(key, None) is None:
            return False
        self._incarnation_of.pop(key, None)
        self._index.forget(key)
        self._providers_in[namespace].discard(key)
        self.version += 1
        for policy in self._namespace_policies(namespace):
            if key in policy.selected:
                policy.selected.discard(key)
                self._index.drop_policy(policy)
        return True

    def upsert_policy(self, namespace: str, name: str, spec: RoutingPolicySpec,
                      generation: int | None = None) -> bool:
        key = (namespace, name)
        old = self._policies.get(key)
        if old is not None and old.spec == spec:
            old.generation = generation
            return False
        state = PolicyState(key, spec, generation)
        if old is not None:
            state.spend_total, state.routed, state.unrouted = (
                old.spend_total, old.routed, old.unrouted)
            if old.spend is not None and state.spend is not None and (
                    old.spend.span == state.spend.span):
                state.spend = old.spend
            self._index.drop_policy(old)
        self.fleet.adopt_policy(state, old)
        self._policies[key] = state
        self._policies_in.setdefault(namespace, set()).add(key)
        self._default_policy.pop(namespace, None)
        self.version += 1
        selector = spec.provider_selector
        state.selected = {k for k in self._providers_in.get(namespace, ())
                          if selector.matches(self._providers[k].labels)}
        for provider_key in state.selected | (old.selected if old else set()):
            self._configure_breaker(self._providers[provider_key])
        return True

    def remove_policy(self, namespace: str, name: str) -> bool:
        state = self._policies.pop((namespace, name), None)
        if state is None:
            return False
        self._index.drop_policy(state)
        self._policies_in[namespace].discard(state.key)
        self._default_policy.pop(namespace, None)
        self.version += 1
        for provider_key in state.selected:
            self._configure_breaker(self._providers[provider_key])
        return True

    def provider(self, namespace: str, name: str) -> ProviderState:
        state = self._providers.get((namespace, name))
        if state is None:
            raise UnknownProvider(namespace, name)
        return state

    def policy(self, namespace: str, name: str) -> PolicyState:
        state = self._policies.get((namespace, name))
        if state is None:
            raise UnknownPolicy(namespace, name)
        return state

    def providers(self) -> list[ProviderState]:
        self._advance(self.clock())
        return [self._providers[k] for k in sorted(self._providers)]

    def policies(self) -> list[PolicyState]:
        self._advance(self.clock())
        return [self._policies[k] for k in sorted(self._policies)]

    def policies_selecting(self, key: ProviderKey) -> list[PolicyState]:
        return [p for p in self._namespace_policies(key[0]) if key in p.selected]

    def provider_availability(self, namespace: str, name: str) -> Availability:
        """Whether provider ``namespace/name`` may take a request now, on its own."""
        return provider_availability(self.provider(namespace, name), self.clock())

    def availability(self, namespace: str, name: str) -> PolicyAvailability:
        """Every provider policy ``namespace/name`` selects, as that policy sees it: the view
        its routes decide by (circuits ignored without failover, costly providers blocked over
        budget)."""
        policy = self.policy(namespace, name)
        now = self.clock()
        states = [self._providers[k] for k in policy.selected if k in self._providers]
        return policy_availability(policy.key, policy.spec, policy.budget_state(now), states,
                                   now)

    def probe_interval(self, namespace: str, name: str) -> float:
        """The provider's own interval, capped by every policy that selects it."""
        state = self.provider(namespace, name)
        caps = [p.spec.health_check_interval_seconds for p in self.policies_selecting(state.key)]
        return float(min([state.spec.health_check.interval_seconds, *caps]))

    # -- routing -----------------------------------------------------------------------------

    def route(self, request: RouteRequest) -> RouteDecision:
        now = self.clock()
        policy, capabilities, model, entry = self._prepare(request, now)
        slots, sticky = self._choose(policy, entry, request.session, policy.want, now)
        if not slots:
            policy.unrouted += 1
            raise NoProviderAvailable(
                policy.key[1], policy.key[0],
                explain_candidates(self._providers, entry, capabilities, model, [], now,
                        MAX_EXPLAINED_UNAVAILABLE),
                exclusion_counts(self._providers, entry, capabilities), len(entry.selected))
        members, targets = entry.members, entry.targets
        primary = members[slots[0]]
        # A half-open provider takes exactly one trial, as a primary, never as a fallback.
        fallbacks = tuple([targets[s] for s in slots[1:]
                           if members[s].breaker.open_until is None
                           or members[s].breaker.state(now) is not CircuitState.HALF_OPEN])
        lease_id = self._take_call(primary, policy, now, request.lease)
        policy.routed += 1
        policy.last_pick[entry.key] = primary.key
        return RouteDecision(
            target=targets[slots[0]], fallbacks=fallbacks, policy=policy.key[1],
            namespace=policy.key[0], strategy=entry.strategy, lease_id=lease_id, sticky=sticky,
            candidates=(explain_candidates(self._providers, entry, capabilities, model, slots,
                                           now)
                        if request.explain else None))

    def acquire(self, namespace: str, policy: str, provider: str) -> str:
        """Take a lease on ``provider`` for one call under ``policy`` now; its id.

        For a caller that tries a route's fallback after the primary failed: taken at the
        moment the fallback is tried, the lease counts toward its ``maxConcurrent`` and rate
        window while the call runs, and a half-open fallback's call is its circuit's one
        trial. Admission is a route's, as the policy sees the provider (circuit, cooldown,
        capacity, rate windows, budget); requirements are not asked again, the route that
        named the fallback matched them. Raises ``ProviderUnavailable`` when it may not take
        the call now (it filled up since the route, say): the caller skips it. Also raises
        ``UnknownPolicy`` and ``UnknownProvider``."""
        now = self.clock()
        self._advance(now)
        chosen = self.policy(namespace, policy)
        state = self.provider(namespace, provider)
        if state.key not in chosen.selected:
            raise ProviderUnavailable(namespace, provider, policy, ())
        blocks = policy_blocks(state, ignored_blocks(chosen.spec), chosen.budget_state(now)[0])
        if blocks:
            raise ProviderUnavailable(namespace, provider, policy, tuple(reasons(blocks)))
        lease_id = self._take_call(state, chosen, now, True)
        assert lease_id is not None
        return lease_id

    def explain(self, request: RouteRequest) -> tuple[Candidate, ...]:
        """Why each selected provider would or would not take ``request`` now; changes nothing."""
        now = self.clock()
        _, capabilities, model, entry = self._prepare(request, now)
        return explain_candidates(self._providers, entry, capabilities, model, [], now)

    def _prepare(self, request: RouteRequest, now: float
                 ) -> tuple[PolicyState, frozenset[str], str | None, PoolEntry]:
        """Bring the table up to ``now``, then find the request's policy, requirements and
        pool: what ``route`` and ``explain`` share."""
        self._advance(now)
        policy = self._resolve_policy(request.namespace, request.policy)
        capabilities, model = policy.requirements_for(request.capabilities, request.model)
        return policy, capabilities, model, self._index.entry_for(
            policy, capabilities, model, request.stream, now, self._providers)

    def resolve_policy(self, namespace: str, name: str | None) -> PolicyState:
        """The policy a request naming ``name`` (or none: the default) in ``namespace`` uses.

        Raises ``UnknownPolicy``."""
        return self._resolve_policy(namespace, name)

    def lease_policy(self, lease_id: str) -> tuple[str, str] | None:
        """The policy an outstanding (or recently expired) lease was taken under, or None."""
        return self._leases.policy_of(lease_id)

    def _resolve_policy(self, namespace: str, name: str | None) -> PolicyState:
        if name:
            state = self._policies.get((namespace, name))
            if state is None:
                raise UnknownPolicy(namespace, name)
            return state
        chosen = self._default_policy.get(namespace)
        if chosen is None:
            # Several defaults in one namespace: the first by name wins, on every replica.
            defaults = sorted(k for k in self._policies_in.get(namespace, ())
                              if self._policies[k].spec.default)
            if not defaults:
                raise UnknownPolicy(namespace, None)  # not cached: clients name namespaces
            chosen = self._default_policy[namespace] = self._policies[defaults[0]]
        return chosen

    def _choose(self, policy: PolicyState, entry: PoolEntry, session: str | None, want: int,
                now: float) -> tuple[list[int], bool]:
        sticky_enabled = policy.sticky_enabled
        if session and (sticky_enabled or entry.strategy is Strategy.WEIGHTED):
            slot: int | None = None
            if sticky_enabled:
                remembered = policy.sticky.get(session)
                if remembered is not None and remembered[1] > now:
                    candidate = entry.slot_of.get(remembered[0])
                    if candidate is not None and candidate in entry.pool:
                        slot = candidate
            if slot is None:
                slot = entry.session_slot(session)
            if slot is not None:
                if sticky_enabled:
                    policy.remember_session(session, entry.members[slot].key, now)
                return [slot, *entry.pool.order_after(slot, want - 1)], True
        return entry.pool.pick(want), False

    # -- leases and outcomes -----------------------------------------------------------------

    def _take_call(self, state: ProviderState, policy: PolicyState, now: float,
                   lease: bool) -> str | None:
        """Count one call sent to ``state`` under ``policy`` (a route's primary, or a fallback
        acquired): a request in its rate window, and a lease on it when ``lease`` (its id),
        else a lease-less call. One method for both, as a route's every call pays for it."""
        lease_id: str | None = None
        if lease:
            leases = self._leases
            if len(leases.active) >= leases.max_leases:
                evicted = leases.evict_oldest()
                if evicted is not None:
                    self._expired_lease(evicted, now)
            breaker = state.breaker
            # A closed circuit (open_until None, the usual case) cannot be half-open: read
            # inline, as state() is a call.
            trial = (breaker.open_until is not None
                     and breaker.state(now) is CircuitState.HALF_OPEN)
            lease_id = leases.issue(state.key, state.prices, self._incarnation_of[state.key],
                                    policy.key, now, trial).lease_id
            if trial:
                breaker.begin_trial(lease_id, now, leases.ttl)
            state.in_flight += 1
        else:
            state.unleased.append(now)
        state.requests.add(now)
        state.routed += 1
        if state.route_sensitive or (lease_id is not None and state.breaker.trial):
            # Only limits, load-ranked pools and a circuit trial change with a call; skipping
            # the recomputation otherwise halves the cost of a decision.
            self._index.touch(state, now)
        return lease_id

    def _holder(self, lease: Lease) -> ProviderState | None:
        """The provider a lease was taken on, unless it left (or left and came back) since."""
        state = self._providers.get(lease.provider)
        if state is None or self._incarnation_of.get(lease.provider) != lease.incarnation:
            return None
        return state

    def _release(self, lease: Lease) -> ProviderState | None:
        state = self._holder(lease)
        if state is not None:
            state.in_flight = max(0, state.in_flight - 1)
        return state

    def report(self, outcome: Outcome) -> ReportResult:
        """Apply how a routed call went, releasing its lease if it names one held here.

        A report that comes after its lease expired (a call longer than the TTL) still counts,
        for the last ``MAX_EXPIRED_REMEMBERED`` expired leases. A report may also name its
        provider next to the lease: if another table issued the lease (another replica, or
        this router before a restart), the outcome then counts against the provider, as a
        report without lease would, except that the call is not counted as a new request: its
        route was. A lease this table issued and no longer knows (reported already, or expired
        long ago) raises ``UnknownLease``, so a repeated report never counts twice.
        """
        now = self.clock()
        self._advance(now)
        lease_id = outcome.lease_id
        if lease_id is not None:
            lease = self._leases.take(lease_id)
            if lease is not None:
                return self._report_lease(lease, outcome, now, released=True)
            late = self._leases.take_late(lease_id)
            if late is not None:
                return self._report_lease(late, outcome, now, released=False)
            if outcome.provider is None or self._leases.issued_here(lease_id):
                raise UnknownLease(lease_id)
        if outcome.provider is None:
            raise ValueError("a report needs a leaseId, or a provider and its namespace")
        state = self.provider(outcome.namespace, outcome.provider)
        policy = (self._policies.get((outcome.namespace, outcome.policy))
                  if outcome.policy is not None else None)
        if lease_id is None:
            state.count_unleased_report(now)
        return self._conclude(state, policy, outcome, now, released=False)

    def _report_lease(self, lease: Lease, outcome: Outcome, now: float,
                      released: bool) -> ReportResult:
        policy = self._policies.get(lease.policy)
        state = self._release(lease) if released else self._holder(lease)
        if state is None:
            cost = record_spend(None, lease.prices, policy, outcome, now)
            return ReportResult(lease.provider[1], lease.provider[0], released, "Unknown", cost)
        if released and lease.trial and outcome.outcome is OutcomeKind.RATE_LIMITED:
            state.breaker.end_trial(lease.lease_id)
        return self._conclude(state, policy, outcome, now, released)

    def _conclude(self, state: ProviderState, policy: PolicyState | None, outcome: Outcome,
                  now: float, released: bool) -> ReportResult:
        cost = apply_outcome(state, policy, outcome, now)
        self._index.touch(state, now)
        return ReportResult(state.key[1], state.key[0], released,
                            state.breaker.state(now).value, cost)

    def record_probe(self, namespace: str, name: str, result: ProbeResult) -> ProviderState:
        now = self.clock()
        self._advance(now)
        state = self.provider(namespace, name)
        check = state.spec.health_check
        state.last_probe_at = now
        state.health_reason = result.reason
        if result.ok:
            state.probe_failures = 0
            state.probe_successes += 1
            if result.latency_ms is not None:
                state.update_probe_latency(result.latency_ms)
            if state.probe_successes >= check.success_threshold:
                state.health, state.health_message = Health.HEALTHY, result.message
            if state.breaker.state(now) is not CircuitState.OPEN:
                state.breaker.record_success()
            if result.models is not None:
                self._set_discovered(state, normalise_models(result.models))
        else:
            state.probe_successes = 0
            state.probe_failures += 1
            state.last_error = result.message or result.reason
            if result.unauthorized:
                state.health, state.health_message = Health.UNAUTHORIZED, result.message
            else:
                # Once probes have marked it Unhealthy, health alone keeps the provider out;
                # feeding every further failed probe to the breaker would only cycle it
                # Open -> HalfOpen -> Open, each cycle a status write, until it recovers.
                if state.health is not Health.UNHEALTHY:
                    state.breaker.record_failure(now)
                if state.probe_failures >= check.failure_threshold:
                    state.health, state.health_message = Health.UNHEALTHY, result.message
        self._index.touch(state, now)
        return state

    def restore_health(self, namespace: str, name: str, health: Health, reason: str = "",
                       message: str = "") -> None:
        """Adopt a verdict reached elsewhere: the status a previous run (or the leading replica)
        wrote. A restarted operator then routes as before without waiting for new probes."""
        now = self.clock()
        state = self.provider(namespace, name)
        if not state.spec.health_check.enabled or state.health is health:
            return
        state.health, state.health_reason, state.health_message = health, reason, message
        self._index.touch(state, now)

    def set_metrics(self, namespace: str, name: str, *, avg_latency_ms: float | None = None,
                    error_rate: float | None = None, load: float | None = None) -> None:
        """Overwrite measured figures, for callers that measure outside the router."""
        now = self.clock()
        state = self.provider(namespace, name)
        if avg_latency_ms is not None:
            state.reported_latency_ms = avg_latency_ms
        if error_rate is not None:
            state.error_rate = error_rate
        if load is not None:
            state.external_load = load
        self._index.touch(state, now)

    # -- what providers say about themselves ------------------------------------------------

    def record_load(self, namespace: str, name: str, sample: LoadSample) -> bool:
        """Take a scrape of the provider's own load; True if its ``Saturated`` flipped.

        Fresh figures rank it under LeastLoaded and Capability until two of its
        ``loadMetrics`` intervals have passed without another sample."""
        now = self.clock()
        self._advance(now)
        state = self.provider(namespace, name)
        interval = float(state.spec.load_metrics.interval_seconds)
        flipped = live_load(state).record_sample(sample, now, interval, state.routed,
                                                  state.reported)
        self._index.touch(state, now)
        return flipped

    def record_rate_limit(self, namespace: str, name: str, info: RateLimitInfo) -> None:
        """Take what a provider's answer said about its limits (``parse_rate_limit_headers``).

        Stated zero requests left excludes it (``ProviderRequestsExhausted``) until the stated
        reset; while the statement holds, Capability ranks by it instead of our own count."""
        now = self.clock()
        self._advance(now)
        state = self.provider(namespace, name)
        live_load(state).record_rate(info, now, state.routed)
        self._index.touch(state, now)

    def record_models(self, namespace: str, name: str, models: tuple[str, ...]) -> bool:
        """Adopt the models a provider listed (a probe's answer, or the status a previous run
        wrote); True if they changed. A provider whose spec lists none serves these."""
        state = self.provider(namespace, name)
        return self._set_discovered(state, normalise_models(models))

    def _set_discovered(self, state: ProviderState, models: tuple[str, ...]) -> bool:
        if models == state.discovered_models:
            return False
        served = state.models
        state.set_discovered_models(models)
        if state.models != served:
            # Which pools it belongs to depends on what it serves: rebuild them.
            self.version += 1
            for policy in self.policies_selecting(state.key):
                self._index.drop_policy(policy)
        return True

    def trial_timeout(self, namespace: str, name: str) -> float:
        """Seconds a half-open trial of this provider waits for its verdict before it counts
        as failed: its circuit's cooldown, at most the lease TTL."""
        return self.provider(namespace, name).breaker.trial_timeout(self.lease_ttl)

    def trial_claim_seconds(self, namespace: str, name: str) -> float:
        """How long the fleet's claim on this provider's half-open trial holds: until a trial
        begun as its circuit half-opens would have timed out. Claims are made while the
        circuit is still open, so the claim covers the rest of the cooldown too."""
        breaker = self.provider(namespace, name).breaker
        now = self.clock()
        wait = 0.0 if breaker.open_until is None else max(breaker.open_until - now, 0.0)
        return wait + breaker.trial_timeout(self.lease_ttl)

    def in_flight_leases(self) -> int:
        self._advance(self.clock())
        return len(self._leases)

    # -- bookkeeping -------------------------------------------------------------------------

    def _advance(self, now: float) -> None:
        # Every public call starts here, so the common case (nothing due) is two comparisons.
        index = self._index
        if index.next_due <= now:
            for key in index.due(now):
                state = self._providers.get(key)
                if state is not None:
                    if state.breaker.expire_trial(now):
                        state.last_error = (f"the half-open trial had no verdict within "
                                            f"{state.breaker.trial_timeout(self.lease_ttl):g} s")
                    index.touch(state, now)
        # Peeked before each call, so that the common cases (nothing due, or one lease) make
        # no call that finds nothing.
        leases = self._leases
        while (queue := leases.queue) and queue[0].expires_at <= now:
            lease = leases.next_due(now)
            if lease is not None:
                self._expired_lease(lease, now)

    def _expired_lease(self, lease: Lease, now: float) -> None:
        """Free the slot of a lease nobody reported in time."""
        state = self._release(lease)
        if state is not None:
            if lease.trial:
                state.breaker.end_trial(lease.lease_id)
                self._index.touch(state, now)
            elif state.route_sensitive:  # else a lease's end changes nothing ranked
                self._index.touch(state, now)

    def _namespace_policies(self, namespace: str) -> list[PolicyState]:
        return [self._policies[k] for k in self._policies_in.get(namespace, ())]

    def _configure_breaker(self, state: ProviderState) -> None:
        """A provider shared by several policies uses the strictest breaker among them: the
        lowest failure threshold and the longest cooldown."""
        failovers = [p.spec.failover for p in self.policies_selecting(state.key)
                     if p.spec.failover.enabled]
        if failovers:
            state.breaker.threshold = min(f.failure_threshold for f in failovers)
            state.breaker.cooldown = float(max(f.cooldown_seconds for f in failovers))
        else:
            state.breaker.threshold, state.breaker.cooldown = DEFAULT_BREAKER
