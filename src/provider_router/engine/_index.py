"""The pools of every policy, indexed by the providers they hold, and the timers that wake a
provider when something about it becomes due.

A route never scans providers: it asks its pool, and the pool is kept current by ``touch``,
which recomputes one provider's eligibility and pushes it into every pool that holds it. What
changes with time alone (a circuit turning half-open, a cooldown or a rate window ending) is
put on a timer heap, so the table only wakes the providers whose time has come.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator, Mapping

from provider_router.engine._policy import MAX_POOLS_PER_POLICY, PolicyState, PoolEntry
from provider_router.engine._state import ProviderKey, ProviderState


class PoolIndex:
    """Every pool, by member; and one pending wake-up per provider."""

    __slots__ = ("_entries_of", "_rng", "_scheduled", "_timers", "next_due")

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._entries_of: dict[ProviderKey, set[PoolEntry]] = {}
        self._timers: list[tuple[float, ProviderKey]] = []
        self._scheduled: dict[ProviderKey, float] = {}
        self.next_due = math.inf
        """The earliest pending wake-up (or a time already handled): ``due`` is worth calling
        once the clock reaches it."""

    def touch(self, state: ProviderState, now: float) -> None:
        """Recompute one provider's eligibility and push it into every pool that holds it."""
        state.blocks = state.compute_blocks(now)
        for entry in self._entries_of.get(state.key, ()):
            entry.update(state, now)
        wake = state.next_change(now)
        if wake is not None and wake > now:  # a time already past would spin ``due``
            scheduled = self._scheduled.get(state.key)
            if scheduled is None or wake < scheduled:
                self._scheduled[state.key] = wake
                heapq.heappush(self._timers, (wake, state.key))
                self.next_due = min(self.next_due, wake)

    def due(self, now: float) -> Iterator[ProviderKey]:
        """The providers whose wake-up time has come, each once."""
        timers = self._timers
        while timers and timers[0][0] <= now:
            when, key = heapq.heappop(timers)
            if self._scheduled.get(key) == when:
                del self._scheduled[key]
                yield key
        self.next_due = timers[0][0] if timers else math.inf

    def forget(self, key: ProviderKey) -> None:
        """A provider left: no wake-up for it (its stale heap entries are skipped)."""
        self._scheduled.pop(key, None)

    def entry_for(self, policy: PolicyState, capabilities: frozenset[str], model: str | None,
                  stream: bool, now: float, providers: Mapping[ProviderKey, ProviderState]
                  ) -> PoolEntry:
        """The pool of ``policy`` for these requirements (and for streamed requests, if it
        ranks them apart), built on first use and rebuilt when the policy's budget state
        changed since."""
        key = (capabilities, model, stream and policy.stream_ranked)
        over, throttled = policy.budget_state(now)
        entry = policy.entries.get(key)
        if entry is not None and entry.over_budget == over and entry.throttled == throttled:
            return entry
        if entry is not None:
            self.drop(entry)
        members = [providers[k] for k in sorted(policy.selected)
                   if providers[k].serves(capabilities, model)]
        entry = PoolEntry(policy, key, members, now, over, throttled, self._rng)
        policy.entries[key] = entry
        for member in members:
            self._entries_of.setdefault(member.key, set()).add(entry)
            if entry.load_ranked:
                member.set_load_ranked_pools(member.load_ranked_pools + 1)
        if len(policy.entries) > MAX_POOLS_PER_POLICY:
            self.drop(next(iter(policy.entries.values())))
            if len(policy.last_pick) > MAX_POOLS_PER_POLICY * 8:
                policy.last_pick.clear()
        return entry

    def drop_policy(self, policy: PolicyState) -> None:
        """Forget every pool of ``policy`` (its spec or selection changed)."""
        for entry in policy.entries_iter():
            self.drop(entry)

    def drop(self, entry: PoolEntry) -> None:
        entry.policy.entries.pop(entry.key, None)
        for member in entry.members:
            if entry.load_ranked:
                member.set_load_ranked_pools(member.load_ranked_pools - 1)
            holders = self._entries_of.get(member.key)
            if holders is not None:
                holders.discard(entry)
                if not holders:
                    del self._entries_of[member.key]


__all__ = ["PoolIndex"]
