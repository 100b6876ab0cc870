"""One answer to "may this provider take a request now?", alone or as one policy sees it.

Routing, the route API's listings, the resources' status conditions, the metrics and the
embedded API all ask it, so it is decided here once. A provider on its own is blocked by every
bit of its ``blocks``. A policy sees it through two adjustments:

- with failover disabled, an open circuit does not block: the policy has nowhere else to go,
  so it keeps sending to its provider (and the circuit's trial decides when it heals);
- with the policy's budget spent, a provider that costs anything is blocked (``OverBudget``).

The views are read-only snapshots built on demand; the route path uses ``policy_blocks``
directly on its pools.
"""

from __future__ import annotations

from dataclasses import dataclass

from provider_router.api import RoutingPolicySpec
from provider_router.engine._reasons import CIRCUIT_BLOCKS, Block, reasons
from provider_router.engine._state import Health, ProviderKey, ProviderState

UNFIT = Block.UNHEALTHY | Block.UNAUTHORIZED
"""Blocks that say the provider itself is broken, as opposed to busy or paused."""


def ignored_blocks(spec: RoutingPolicySpec) -> int:
    """The blocks a policy routes through: circuits, when it has no failover."""
    return Block.NONE if spec.failover.enabled else CIRCUIT_BLOCKS


def policy_blocks(state: ProviderState, ignore: int, over_budget: bool) -> int:
    """What keeps ``state`` from a policy that ignores ``ignore`` and may be over budget."""
    blocks = state.blocks & ~ignore
    if over_budget and state.cost > 0:
        blocks |= Block.OVER_BUDGET
    return blocks


def is_healthy(state: ProviderState) -> bool:
    """Healthy or not probed yet, and not blocked as unfit."""
    return state.health in (Health.HEALTHY, Health.UNKNOWN) and not state.blocks & UNFIT


@dataclass(frozen=True, slots=True)
class Availability:
    """One provider, alone or as one policy sees it."""

    provider: ProviderKey
    blocks: int
    retry_at: float | None
    """When a blocked provider may next be tried (an open circuit's or a cooldown's end)."""
    healthy: bool

    @property
    def available(self) -> bool:
        return self.blocks == Block.NONE

    @property
    def reasons(self) -> list[str]:
        return reasons(self.blocks)


@dataclass(frozen=True, slots=True)
class PolicyAvailability:
    """Every provider a policy selects, as the policy sees it."""

    policy: tuple[str, str]
    over_budget: bool
    throttled: bool
    providers: tuple[Availability, ...]

    @property
    def selected(self) -> int:
        return len(self.providers)

    @property
    def healthy(self) -> int:
        return sum(a.healthy for a in self.providers)

    def available(self, hold: int = Block.NONE) -> int:
        """How many are available, counting those blocked only by ``hold`` as available
        (status holds load-driven blocks back until they last)."""
        return sum(not (a.blocks & ~hold) for a in self.providers)


def provider_availability(state: ProviderState, now: float) -> Availability:
    return Availability(state.key, state.blocks, state.retry_at(now), is_healthy(state))


def policy_availability(key: tuple[str, str], spec: RoutingPolicySpec,
                        budget: tuple[bool, bool], states: list[ProviderState],
                        now: float) -> PolicyAvailability:
    over, throttled = budget
    ignore = ignored_blocks(spec)
    return PolicyAvailability(key, over, throttled, tuple(
        Availability(s.key, policy_blocks(s, ignore, over), s.retry_at(now), is_healthy(s))
        for s in sorted(states, key=lambda s: s.key)))


__all__ = ["UNFIT", "Availability", "PolicyAvailability", "ignored_blocks", "is_healthy",
           "policy_availability", "policy_blocks", "provider_availability"]
