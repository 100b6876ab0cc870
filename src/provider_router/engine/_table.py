"""The routing table: providers, policies and their pools, and the one place that mutates them.

Every public method takes the current time from the injected clock, first applies whatever
became due since the last call (circuits turning half-open, cooldowns and rate windows ending,
leases expiring), then does its work. Nothing here performs I/O, so the same table serves the
embedded API, standalone mode and the operator, and tests drive time by hand.
"""

from __future__ import annotations

import heapq
import itertools
import random
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from provider_router.api import CircuitState, LLMProviderSpec, RoutingPolicySpec, Strategy
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
    UnknownLease,
    UnknownPolicy,
    UnknownProvider,
)
from provider_router.engine._fleet import Fleet
from provider_router.engine._policy import MAX_POOLS_PER_POLICY, PolicyState, PoolEntry
from provider_router.engine._reasons import (
    MISSING_CAPABILITY,
    MODEL_NOT_SERVED,
    Block,
    reasons,
)
from provider_router.engine._state import Health, ProviderKey, ProviderState

Clock = Callable[[], float]

DEFAULT_LEASE_TTL = 120.0
MAX_EXPIRED_REMEMBERED = 20_000
"""Expired leases whose late reports still count: minutes of long calls at any sane rate."""
DEFAULT_MAX_LEASES = 200_000
"""About 48 MB of leases (some 240 bytes each): a workload that routes without ever reporting,
at thousands of routes a second, must not grow the router until it is killed."""
DEFAULT_BREAKER = (3, 30.0)
MAX_EXPLAINED_UNAVAILABLE = 20
"""Providers explained one by one in an unavailable answer; the rest are counted by reason."""


@dataclass(slots=True)
class Lease:
    """A route not yet reported. It holds the provider's prices, not the provider: a replaced
    or deleted provider is then freed at once, not a lease TTL later."""

    lease_id: str
    provider: ProviderKey
    prices: tuple[float, float]
    """The provider's prices when leased: they still apply if it has left since."""
    incarnation: int
    policy: tuple[str, str]
    expires_at: float
    trial: bool


class RoutingTable:
    """Providers and policies by namespace, with the live state that routing depends on."""

    def __init__(self, clock: Clock = time.monotonic, rng: random.Random | None = None,
                 lease_ttl: float = DEFAULT_LEASE_TTL,
                 max_leases: int = DEFAULT_MAX_LEASES) -> None:
        if max_leases < 1:
            raise ValueError(f"max_leases must be at least 1, not {max_leases}")
        self.clock = clock
        self._lease_ttl = float(lease_ttl)
        self.max_leases = max_leases
        """Outstanding leases kept at most; taking one more releases the oldest early."""
        self.leases_evicted = 0
        """Leases released before their TTL because ``max_leases`` were out."""
        self._rng = rng or random.Random()
        self._providers: dict[ProviderKey, ProviderState] = {}
        self._policies: dict[tuple[str, str], PolicyState] = {}
        self._providers_in: dict[str, set[ProviderKey]] = {}
        self._policies_in: dict[str, set[tuple[str, str]]] = {}
        self._default_policy: dict[str, PolicyState] = {}
        """Per namespace, the policy a request naming none gets; cleared on policy changes."""
        self._entries_of: dict[ProviderKey, set[PoolEntry]] = {}
        self._timers: list[tuple[float, ProviderKey]] = []
        self._scheduled: dict[ProviderKey, float] = {}
        self._leases: dict[str, Lease] = {}
        # Every lease lives for the same TTL and the clock does not go back, so leases expire
        # in the order they were taken: a FIFO queue, not a heap. A reported lease stays
        # queued until its turn; _forget_reported keeps those from piling up.
        self._lease_queue: deque[Lease] = deque()
        self._expired: dict[str, Lease] = {}
        """Leases that expired unreported, the most recent ``MAX_EXPIRED_REMEMBERED``: a late
        report still counts its outcome and spend, once."""
        self._expired_order: deque[str] = deque()
        self._lease_prefix = secrets.token_hex(4) + "-"
        """Starts every lease id this table issues: tells its own leases from other tables'."""
        self._lease_seq = itertools.count(1)
        self._incarnations = itertools.count(1)
        self._incarnation_of: dict[ProviderKey, int] = {}
        self.version = 0
        """Bumped on every change to the set of resources; lets edges cache derived views."""
        self.fleet = Fleet(self._providers, self._policies, self._touch)
        """The other replicas' totals and this replica's share of each limit."""

    @property
    def lease_ttl(self) -> float:
        """Seconds after which an unreported lease is released; fixed for the table's life."""
        return self._lease_ttl

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
                self._drop_entries(policy)
        self._configure_breaker(state)
        self._touch(state, self.clock())
        return True

    def remove_provider(self, namespace: str, name: str) -> bool:
        key = (namespace, name)
        if self._providers.pop(key, None) is None:
            return False
        self._incarnation_of.pop(key, None)
        self._scheduled.pop(key, None)
        self._providers_in[namespace].discard(key)
        self.version += 1
        for policy in self._namespace_policies(namespace):
            if key in policy.selected:
                policy.selected.discard(key)
                self._drop_entries(policy)
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
            self._drop_entries(old)
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
        self._drop_entries(state)
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
                self._explain(policy, entry, capabilities, model, [], MAX_EXPLAINED_UNAVAILABLE),
                self._exclusion_counts(entry, capabilities), len(entry.selected))
        members, targets = entry.members, entry.targets
        primary = members[slots[0]]
        # A half-open provider takes exactly one trial, as a primary, never as a fallback.
        fallbacks = tuple([targets[s] for s in slots[1:]
                           if members[s].breaker.open_until is None
                           or members[s].breaker.state(now) is not CircuitState.HALF_OPEN])
        lease_id = self._acquire(primary, policy, now) if request.lease else None
        primary.requests.add(now)
        primary.routed += 1
        policy.routed += 1
        policy.last_pick[entry.key] = primary.key
        if primary.route_sensitive or (lease_id is not None and primary.breaker.trial):
            # Only limits, load-ranked pools and a circuit trial change with a route; skipping
            # the recomputation otherwise halves the cost of a decision.
            self._touch(primary, now)
        return RouteDecision(
            target=targets[slots[0]], fallbacks=fallbacks, policy=policy.key[1],
            namespace=policy.key[0], strategy=entry.strategy, lease_id=lease_id, sticky=sticky,
            candidates=(self._explain(policy, entry, capabilities, model, slots)
                        if request.explain else None))

    def explain(self, request: RouteRequest) -> tuple[Candidate, ...]:
        """Why each selected provider would or would not take ``request`` now; changes nothing."""
        policy, capabilities, model, entry = self._prepare(request, self.clock())
        return self._explain(policy, entry, capabilities, model, [])

    def _prepare(self, request: RouteRequest, now: float
                 ) -> tuple[PolicyState, frozenset[str], str | None, PoolEntry]:
        """Bring the table up to ``now``, then find the request's policy, requirements and
        pool: what ``route`` and ``explain`` share."""
        self._advance(now)
        policy = self._resolve_policy(request.namespace, request.policy)
        capabilities, model = policy.requirements_for(request.capabilities, request.model)
        return policy, capabilities, model, self._entry_for(policy, capabilities, model, now)

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

    def _entry_for(self, policy: PolicyState, capabilities: frozenset[str], model: str | None,
                   now: float) -> PoolEntry:
        key = (capabilities, model)
        over, throttled = policy.budget_state(now)
        entry = policy.entries.get(key)
        if entry is not None and entry.over_budget == over and entry.throttled == throttled:
            return entry
        if entry is not None:
            self._drop_entry(entry)
        members = [self._providers[k] for k in sorted(policy.selected)
                   if self._providers[k].serves(capabilities, model)]
        entry = PoolEntry(policy, key, members, now, over, throttled, self._rng)
        policy.entries[key] = entry
        for member in members:
            self._entries_of.setdefault(member.key, set()).add(entry)
            if entry.load_ranked:
                member.set_load_ranked_pools(member.load_ranked_pools + 1)
        if len(policy.entries) > MAX_POOLS_PER_POLICY:
            self._drop_entry(next(iter(policy.entries.values())))
            if len(policy.last_pick) > MAX_POOLS_PER_POLICY * 8:
                policy.last_pick.clear()
        return entry

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

    def _explain(self, policy: PolicyState, entry: PoolEntry, capabilities: frozenset[str],
                 model: str | None, chosen: list[int],
                 limit: int | None = None) -> tuple[Candidate, ...]:
        """Each selected provider's role and reasons, by name; the first ``limit`` only."""
        now = self.clock()
        roles = {s: (Role.PRIMARY if i == 0 else Role.FALLBACK) for i, s in enumerate(chosen)}
        out: list[Candidate] = []
        for key in entry.selected[:limit]:
            state = self._providers[key]
            slot = entry.slot_of.get(key)
            if slot is None:
                reason, detail = self._unmet(state, capabilities, model)
                out.append(Candidate(key[1], key[0], Role.EXCLUDED, (reason,), detail))
                continue
            blocks = entry.blocks_of(state)
            if blocks:
                out.append(Candidate(key[1], key[0], Role.EXCLUDED, tuple(reasons(blocks)),
                                     self._detail(state, blocks, now)))
            else:
                out.append(Candidate(key[1], key[0], roles.get(slot, Role.STANDBY), (),
                                     f"ranked by {entry.strategy.value}"))
        return tuple(out)

    def _exclusion_counts(self, entry: PoolEntry, capabilities: frozenset[str]) -> dict[str, int]:
        """How many selected providers each reason excludes, remembered until a member
        changes: a burst of unavailable answers then costs one pass, not one each."""
        cached = entry.exclusion_counts
        if cached is not None and cached[0] == entry.touches:
            return cached[1]
        by_blocks: dict[int, int] = {}
        counts: dict[str, int] = {}
        providers, slot_of = self._providers, entry.slot_of
        for key in entry.selected:
            state = providers[key]
            if key in slot_of:
                blocks = entry.blocks_of(state)
                by_blocks[blocks] = by_blocks.get(blocks, 0) + 1
            else:
                reason = self._unmet(state, capabilities, None)[0]
                counts[reason] = counts.get(reason, 0) + 1
        for blocks, count in by_blocks.items():
            for reason in reasons(blocks):
                counts[reason] = counts.get(reason, 0) + count
        entry.exclusion_counts = (entry.touches, counts)
        return counts

    @staticmethod
    def _unmet(state: ProviderState, capabilities: frozenset[str],
               model: str | None) -> tuple[str, str]:
        """Why a selected provider is not in a pool at all: the reason and its detail."""
        missing = sorted(capabilities - state.capabilities)
        if missing:
            return MISSING_CAPABILITY, f"lacks {', '.join(missing)}"
        return MODEL_NOT_SERVED, f"does not serve model {model}"

    @staticmethod
    def _detail(state: ProviderState, blocks: int, now: float) -> str:
        parts: list[str] = []
        if blocks & (Block.UNHEALTHY | Block.UNAUTHORIZED) and state.health_message:
            parts.append(state.health_message)
        retry = state.retry_at(now)
        if retry is not None:
            parts.append(f"retry in {retry - now:.1f}s")
        # Counts and limits as compared: with the other replicas' totals, at this one's share.
        share = state.share
        if blocks & Block.AT_CAPACITY:
            parts.append(f"{state.in_flight + state.others_in_flight}/"
                         f"{(state.spec.max_concurrent or 0) * share:g} in flight")
        if blocks & Block.RPM_EXHAUSTED:
            parts.append(f"{state.requests.total(now) + state.others_requests:.0f}/"
                         f"{(state.spec.rate_limit_rpm or 0) * share:g} rpm")
        if blocks & Block.TPM_EXHAUSTED:
            parts.append(f"{state.tokens.total(now) + state.others_tokens:.0f}/"
                         f"{(state.spec.rate_limit_tpm or 0) * share:g} tpm")
        if blocks & Block.OVER_BUDGET:
            parts.append("policy budget spent")
        return "; ".join(parts)

    # -- leases and outcomes -----------------------------------------------------------------

    def _acquire(self, state: ProviderState, policy: PolicyState, now: float) -> str:
        if len(self._leases) >= self.max_leases:
            self._evict_oldest_lease(now)
        lease_id = f"{self._lease_prefix}{next(self._lease_seq)}"
        trial = state.breaker.state(now) is CircuitState.HALF_OPEN
        if trial:
            state.breaker.begin_trial(lease_id)
        lease = Lease(lease_id, state.key, state.prices, self._incarnation_of[state.key],
                      policy.key, now + self._lease_ttl, trial)
        self._leases[lease_id] = lease
        self._lease_queue.append(lease)
        state.in_flight += 1
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
            lease = self._leases.pop(lease_id, None)
            if lease is not None:
                self._forget_reported()
                return self._report_lease(lease, outcome, now, released=True)
            late = self._expired.pop(lease_id, None)
            if late is not None:
                return self._report_lease(late, outcome, now, released=False)
            if outcome.provider is None or lease_id.startswith(self._lease_prefix):
                raise UnknownLease(lease_id)
        if outcome.provider is None:
            raise ValueError("a report needs a leaseId, or a provider and its namespace")
        state = self.provider(outcome.namespace, outcome.provider)
        policy = (self._policies.get((outcome.namespace, outcome.policy))
                  if outcome.policy is not None else None)
        if lease_id is None:
            state.requests.add(now)  # a call made without asking us
        return self._conclude(state, policy, outcome, now, released=False)

    def _report_lease(self, lease: Lease, outcome: Outcome, now: float,
                      released: bool) -> ReportResult:
        policy = self._policies.get(lease.policy)
        state = self._release(lease) if released else self._holder(lease)
        if state is None:
            cost = self._record_spend(None, lease.prices, policy, outcome, now)
            return ReportResult(lease.provider[1], lease.provider[0], released, "Unknown", cost)
        if released and lease.trial and outcome.outcome is OutcomeKind.RATE_LIMITED:
            state.breaker.end_trial(lease.lease_id)
        return self._conclude(state, policy, outcome, now, released)

    def _conclude(self, state: ProviderState, policy: PolicyState | None, outcome: Outcome,
                  now: float, released: bool) -> ReportResult:
        cost = self._apply_outcome(state, policy, outcome, now)
        self._touch(state, now)
        return ReportResult(state.key[1], state.key[0], released,
                            state.breaker.state(now).value, cost)

    def _apply_outcome(self, state: ProviderState, policy: PolicyState | None,
                       outcome: Outcome, now: float) -> float:
        kind = outcome.outcome
        state.outcomes[kind.value] = state.outcomes.get(kind.value, 0) + 1
        if kind is OutcomeKind.SUCCESS:
            state.breaker.record_success()
            if outcome.latency_ms is not None:
                state.update_latency(outcome.latency_ms)
        elif kind is OutcomeKind.RATE_LIMITED:
            cooldown = (outcome.retry_after_seconds if outcome.retry_after_seconds is not None
                        else float(policy.spec.failover.cooldown_seconds) if policy is not None
                        else state.breaker.cooldown)
            until = now + cooldown
            state.cooling_until = max(state.cooling_until or until, until)
            state.last_error = "rate limited" + (f" (HTTP {outcome.status_code})"
                                                 if outcome.status_code else "")
        else:
            state.breaker.record_failure(now)
            code = f" (HTTP {outcome.status_code})" if outcome.status_code else ""
            state.last_error = f"{kind.value}{code} reported by a workload"
        return self._record_spend(state, state.prices, policy, outcome, now)

    @staticmethod
    def _record_spend(state: ProviderState | None, prices: tuple[float, float],
                      policy: PolicyState | None, outcome: Outcome, now: float) -> float:
        """Charge an outcome's tokens to the provider (None: it has left) and the policy."""
        tokens = outcome.input_tokens + outcome.output_tokens
        if tokens <= 0:
            return 0.0
        cost = (outcome.input_tokens * prices[0] + outcome.output_tokens * prices[1]) / 1000.0
        if state is not None:
            state.tokens.add(now, tokens)
            state.spend_usd += cost
        if policy is not None:
            policy.spend_total += cost
            if policy.spend is not None:
                policy.spend.add(now, cost)
        return cost

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
        self._touch(state, now)
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
        self._touch(state, now)

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
        self._touch(state, now)

    def in_flight_leases(self) -> int:
        self._advance(self.clock())
        return len(self._leases)

    # -- bookkeeping -------------------------------------------------------------------------

    def _advance(self, now: float) -> None:
        timers = self._timers
        while timers and timers[0][0] <= now:
            due, key = heapq.heappop(timers)
            if self._scheduled.get(key) == due:
                del self._scheduled[key]
                state = self._providers.get(key)
                if state is not None:
                    self._touch(state, now)
        queue = self._lease_queue
        while queue and queue[0].expires_at <= now:
            self._expire(queue.popleft(), now)

    def _expire(self, lease: Lease, now: float) -> bool:
        """End a lease nobody reported; False if it was reported already (the queue keeps
        reported leases until their turn comes)."""
        if self._leases.pop(lease.lease_id, None) is None:
            return False
        self._remember_expired(lease)
        state = self._release(lease)
        if state is not None:
            if lease.trial:
                state.breaker.end_trial(lease.lease_id)
                self._touch(state, now)
            elif state.route_sensitive:  # else a lease's end changes nothing ranked
                self._touch(state, now)
        return True

    def _remember_expired(self, lease: Lease) -> None:
        expired, order = self._expired, self._expired_order
        expired[lease.lease_id] = lease
        order.append(lease.lease_id)
        if len(order) > MAX_EXPIRED_REMEMBERED:
            expired.pop(order.popleft(), None)  # may have been reported late already

    def _forget_reported(self) -> None:
        """Rebuild the queue from the outstanding leases once reported ones make up most of it.

        Workloads report most leases long before their TTL, and each would otherwise stay
        queued (some 200 bytes) for the whole TTL: over 200 MB at 10k routes a second with the
        default two minutes. The dict keeps leases in the order taken, which is their order of
        expiry, so the rebuild is a copy; it happens after at least as many reports as it
        copies, so it costs O(1) per report.
        """
        queue = self._lease_queue
        if len(queue) > 2 * len(self._leases) + 1024:
            self._lease_queue = deque(self._leases.values())

    def _evict_oldest_lease(self, now: float) -> None:
        queue = self._lease_queue
        while queue:
            if self._expire(queue.popleft(), now):
                self.leases_evicted += 1
                return

    def _touch(self, state: ProviderState, now: float) -> None:
        """Recompute one provider's eligibility and push it into every pool that holds it."""
        state.blocks = state.compute_blocks(now)
        for entry in self._entries_of.get(state.key, ()):
            entry.update(state, now)
        wake = state.next_change(now)
        if wake is not None and wake > now:  # a time already past would spin _advance
            scheduled = self._scheduled.get(state.key)
            if scheduled is None or wake < scheduled:
                self._scheduled[state.key] = wake
                heapq.heappush(self._timers, (wake, state.key))

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

    def _drop_entries(self, policy: PolicyState) -> None:
        for entry in policy.entries_iter():
            self._drop_entry(entry)

    def _drop_entry(self, entry: PoolEntry) -> None:
        entry.policy.entries.pop(entry.key, None)
        for member in entry.members:
            if entry.load_ranked:
                member.set_load_ranked_pools(member.load_ranked_pools - 1)
            holders = self._entries_of.get(member.key)
            if holders is not None:
                holders.discard(entry)
                if not holders:
                    del self._entries_of[member.key]

