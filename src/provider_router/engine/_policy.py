"""A policy's live state and its pools: one pool per distinct set of requirements asked for.

A pool is built on the first request with its requirements and then kept current by the table,
which tells it about every provider change; it is dropped when the policy, or the set of
providers in its namespace, changes.
"""

from __future__ import annotations

import bisect
import random
from collections import OrderedDict
from collections.abc import Callable, Iterator

from provider_router.api import RoutingPolicySpec, Strategy
from provider_router.engine._availability import ignored_blocks, policy_blocks
from provider_router.engine._load import effective_load, headroom, kv_full
from provider_router.engine._pools import Pool, Rank, RankedPool, WeightedPool
from provider_router.engine._state import ProviderKey, ProviderState, capability_set
from provider_router.engine._sticky import Score, owner, score, seed_of
from provider_router.engine._windows import RollingSum

Requirements = tuple[frozenset[str], str | None]
"""Capabilities and model: what a request, merged with its policy, asks of a provider."""
PoolKey = tuple[frozenset[str], str | None, bool]
"""Requirements, and whether the pool ranks for streamed requests (Latency only: by time to
first token)."""

MAX_POOLS_PER_POLICY = 128
MAX_SESSIONS_PER_POLICY = 100_000
MAX_TRACKED_ADDITIONS = 4096
MAX_NEWCOMERS_CHECKED = 64


def _rank_fn(strategy: Strategy, kv_threshold: float, stream: bool
             ) -> Callable[[ProviderState, float], Rank]:
    match strategy:
        case Strategy.ROUND_ROBIN | Strategy.WEIGHTED:
            return lambda s, now: ()
        case Strategy.PRIORITY:
            return lambda s, now: (-s.spec.priority,)
        case Strategy.COST:
            return lambda s, now: (s.cost, -s.spec.priority)
        case Strategy.LATENCY:
            # Streamed requests rank by time to first token where measured; the choice is
            # made once per pool, so a route pays for no test.
            speed = ProviderState.stream_latency_ms if stream else ProviderState.latency_ms
            return lambda s, now: (round(speed(s), 1),)
        case Strategy.LEAST_LOADED:
            # A nearly full KV cache ranks last; then the provider's own queue while its
            # figures are fresh, our leases otherwise.
            return lambda s, now: (kv_full(s, now, kv_threshold), effective_load(s, now))
        case Strategy.CAPABILITY:
            return lambda s, now: (kv_full(s, now, kv_threshold), -round(headroom(s, now), 3),
                                   s.cost, effective_load(s, now))


class PoolEntry:
    """The eligible providers of one policy for one set of requirements."""

    def __init__(self, policy: PolicyState, key: PoolKey, members: list[ProviderState],
                 now: float, over_budget: bool, throttled: bool, rng: random.Random) -> None:
        self.policy = policy
        self.key = key
        self.members = members
        self.slot_of: dict[ProviderKey, int] = {m.key: i for i, m in enumerate(members)}
        self.selected = sorted(policy.selected)
        """Every provider the policy selects, by name: members and those lacking what is
        asked. The entry is rebuilt whenever the selection changes."""
        self.touches = 0
        """Member updates so far: tells whether a cached summary of exclusions still holds."""
        self.exclusion_counts: tuple[int, dict[str, int]] | None = None
        self.over_budget = over_budget
        self.throttled = throttled
        # Near the budget, traffic moves to the cheapest providers whatever the strategy.
        self.strategy = Strategy.COST if throttled else policy.spec.strategy
        self.ignore: int = ignored_blocks(policy.spec)
        self._rank = _rank_fn(self.strategy, policy.spec.kv_cache_threshold, key[2])
        self.load_ranked = self.strategy in (Strategy.LEAST_LOADED, Strategy.CAPABILITY)
        """Whether a route to a member changes its rank here (load or headroom)."""
        self.pool: Pool = (WeightedPool(len(members), rng) if self.strategy is Strategy.WEIGHTED
                           else RankedPool())
        # The answer for each member, resolved once: the pool's model is fixed.
        self.targets = [m.target_for(key[1]) for m in members]
        self._sessions: dict[str, tuple[int, Score, int]] = {}
        """Session -> (owner slot, its score, how much of ``_additions`` it has seen)."""
        self._additions: list[int] = []
        """Slots in the order they became eligible: a cached owner is checked against these
        newcomers only, since members leaving cannot take a session from an owner that
        stays."""
        for member in members:
            self.update(member, now)
        self._additions.clear()  # no session is remembered yet: nothing to check against
        last = policy.last_pick.get(key)
        if last is not None:
            # Slots follow provider names, so the turn resumes after the last provider picked.
            self.pool.resume(bisect.bisect_right([m.key for m in members], last))

    def blocks_of(self, state: ProviderState) -> int:
        return policy_blocks(state, self.ignore, self.over_budget)

    def update(self, state: ProviderState, now: float) -> None:
        self.touches += 1
        slot = self.slot_of[state.key]
        if self.blocks_of(state):
            if slot in self.pool:
                self.pool.drop(slot)
        else:
            if slot not in self.pool:
                self._additions.append(slot)
                if len(self._additions) > MAX_TRACKED_ADDITIONS:
                    self._additions.clear()
                    self._sessions.clear()
            self.pool.put(slot, self._rank(state, now), state.spec.weight)

    def session_slot(self, session: str) -> int | None:
        """The eligible member that owns ``session`` by rendezvous hashing.

        A full pass scores every member; a remembered owner that is still eligible only has to
        beat the members that became eligible since, which keeps sessions cheap while
        providers drop out and come back under load.
        """
        pool, members, additions = self.pool, self.members, self._additions
        hit = self._sessions.get(session)
        if hit is not None and hit[0] in pool:
            slot, best, seen = hit
            if len(additions) - seen <= MAX_NEWCOMERS_CHECKED:
                if len(additions) > seen:
                    key = seed_of(session)
                    for candidate in additions[seen:]:
                        if candidate in pool:
                            member = members[candidate]
                            claim = score(key, member.key[1], member.spec.weight)
                            if claim > best:
                                slot, best = candidate, claim
                    self._sessions[session] = (slot, best, len(additions))
                return slot
        found = owner(session, ((s, members[s].key[1], members[s].spec.weight)
                                for s in pool.members()))
        if found is None:
            return None
        if len(self._sessions) >= MAX_SESSIONS_PER_POLICY:
            self._sessions.clear()
        self._sessions[session] = (found[0], found[1], len(additions))
        return found[0]


class PolicyState:
    def __init__(self, key: tuple[str, str], spec: RoutingPolicySpec,
                 generation: int | None = None) -> None:
        self.key = key
        self.spec = spec
        self.generation = generation
        self.selected: set[ProviderKey] = set()
        self.base_capabilities = capability_set(spec.requirements.capabilities)
        # Read on every route; attribute reads on the pydantic spec cost more than these.
        self.want = 1 + (spec.failover.max_fallbacks if spec.failover.enabled else 0)
        """How many providers a decision names: the primary and its fallbacks."""
        self.sticky_enabled = spec.sticky_sessions.enabled
        self.stream_ranked = spec.strategy is Strategy.LATENCY
        """Whether streamed requests get pools of their own (ranked by time to first token)."""
        self.spend = RollingSum(spec.budget.window.seconds) if spec.budget else None
        self.spend_total = 0.0
        self.others_spend = 0.0
        """The other replicas' spend in their budget windows (kept by the table's Fleet)."""
        self.share = 1.0
        """The share of the budget this replica enforces alone."""
        self.routed = 0
        self.unrouted = 0
        self.entries: OrderedDict[PoolKey, PoolEntry] = OrderedDict()
        self.sticky: OrderedDict[str, tuple[ProviderKey, float]] = OrderedDict()
        """Session -> (provider, until), least recently routed first. An OrderedDict: evicting
        from the front of a plain dict rescans its deleted slots, tens of µs per new session
        once the map is full."""
        self.sticky_ttl = float(spec.sticky_sessions.ttl_seconds)
        self.last_pick: dict[PoolKey, ProviderKey] = {}
        self._requirements: dict[tuple[tuple[str, ...], str | None], Requirements] = {}

    def requirements_for(self, capabilities: tuple[str, ...], model: str | None
                         ) -> Requirements:
        """The policy's requirements merged with a request's, memoised per distinct request."""
        asked = (capabilities, model)
        merged = self._requirements.get(asked)
        if merged is None:
            merged = (self.base_capabilities | capability_set(capabilities),
                      model or self.spec.requirements.model)
            if len(self._requirements) >= MAX_POOLS_PER_POLICY * 8:
                self._requirements.clear()
            self._requirements[asked] = merged
        return merged

    def budget_state(self, now: float) -> tuple[bool, bool]:
        """``(over_budget, throttled)`` for the spend in the current window."""
        if self.spend is None:  # no budget
            return False, False
        budget = self.spec.budget
        assert budget is not None
        spent = self.spend.total(now) + self.others_spend
        limit = budget.limit_usd * self.share
        return spent >= limit, spent >= limit * budget.throttle_ratio

    def entries_iter(self) -> Iterator[PoolEntry]:
        return iter(list(self.entries.values()))

    def remember_session(self, session: str, provider: ProviderKey, now: float) -> None:
        sticky = self.sticky
        if session in sticky:
            sticky.move_to_end(session)
        elif len(sticky) >= MAX_SESSIONS_PER_POLICY:
            sticky.popitem(last=False)  # forget the least recently routed session
        sticky[session] = (provider, now + self.sticky_ttl)
