"""Leases: routes not yet reported, held against their provider's concurrency until reported
or expired.

Every lease lives for the same TTL and the clock does not go back, so leases expire in the
order they were taken: a FIFO queue, not a heap. A reported lease stays queued until its turn
comes (removing it from the middle would cost more), and the queue is rebuilt from the
outstanding leases once reported ones make up most of it. Expired leases are remembered for a
while, so that the report of a call longer than the TTL still counts, once.
"""

from __future__ import annotations

import itertools
import secrets
from collections import deque
from dataclasses import dataclass

from provider_router.engine._state import ProviderKey

MAX_EXPIRED_REMEMBERED = 20_000
"""Expired leases whose late reports still count: minutes of long calls at any sane rate."""
DEFAULT_MAX_LEASES = 200_000
"""About 48 MB of leases (some 240 bytes each): a workload that routes without ever reporting,
at thousands of routes a second, must not grow the router until it is killed."""


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


class LeaseBook:
    """The outstanding leases of one table, and the recently expired ones."""

    __slots__ = (
        "_expired",
        "_expired_order",
        "_seq",
        "active",
        "evicted",
        "max_leases",
        "prefix",
        "queue",
        "ttl",
    )

    def __init__(self, ttl: float, max_leases: int = DEFAULT_MAX_LEASES) -> None:
        if max_leases < 1:
            raise ValueError(f"max_leases must be at least 1, not {max_leases}")
        self.ttl = float(ttl)
        self.max_leases = max_leases
        self.evicted = 0
        """Leases released before their TTL because ``max_leases`` were out."""
        self.active: dict[str, Lease] = {}
        self.queue: deque[Lease] = deque()
        """Leases in the order taken, which is their order of expiry (reported ones wait for
        their turn); read, never changed, outside this class."""
        self._expired: dict[str, Lease] = {}
        self._expired_order: deque[str] = deque()
        self.prefix = secrets.token_hex(4) + "-"
        """Starts every lease id this book issues: tells its own leases from other tables'."""
        self._seq = itertools.count(1)

    def __len__(self) -> int:
        return len(self.active)

    def __contains__(self, lease_id: object) -> bool:
        return lease_id in self.active

    @property
    def queued(self) -> int:
        """Queue entries, outstanding and reported-but-not-yet-dropped alike."""
        return len(self.queue)

    @property
    def full(self) -> bool:
        return len(self.active) >= self.max_leases

    def issue(self, provider: ProviderKey, prices: tuple[float, float], incarnation: int,
              policy: tuple[str, str], now: float, trial: bool) -> Lease:
        lease = Lease(f"{self.prefix}{next(self._seq)}", provider, prices, incarnation,
                      policy, now + self.ttl, trial)
        self.active[lease.lease_id] = lease
        self.queue.append(lease)
        return lease

    def issued_here(self, lease_id: str) -> bool:
        return lease_id.startswith(self.prefix)

    def take(self, lease_id: str) -> Lease | None:
        """The outstanding lease ``lease_id``, now reported (None if not outstanding)."""
        lease = self.active.pop(lease_id, None)
        if lease is not None:
            self._forget_reported()
        return lease

    def take_late(self, lease_id: str) -> Lease | None:
        """The expired lease ``lease_id``, reported late: once (None if not remembered)."""
        return self._expired.pop(lease_id, None)

    def policy_of(self, lease_id: str) -> tuple[str, str] | None:
        lease = self.active.get(lease_id) or self._expired.get(lease_id)
        return None if lease is None else lease.policy

    def next_due(self, now: float) -> Lease | None:
        """The oldest outstanding lease whose TTL has passed, removed and remembered; None
        when none is due. A loop of these, not a generator: in steady state a lease expires
        on nearly every route, and building a generator each time costs more than the
        expiry."""
        queue = self.queue
        while queue and queue[0].expires_at <= now:
            lease = queue.popleft()
            if self._end(lease):
                return lease
        return None

    def evict_oldest(self) -> Lease | None:
        """End the oldest outstanding lease early, to make room (counted in ``evicted``)."""
        queue = self.queue
        while queue:
            lease = queue.popleft()
            if self._end(lease):
                self.evicted += 1
                return lease
        return None

    def _end(self, lease: Lease) -> bool:
        """Expire ``lease``; False if it was reported already (it waited for its turn)."""
        if self.active.pop(lease.lease_id, None) is None:
            return False
        expired, order = self._expired, self._expired_order
        expired[lease.lease_id] = lease
        order.append(lease.lease_id)
        if len(order) > MAX_EXPIRED_REMEMBERED:
            expired.pop(order.popleft(), None)  # may have been reported late already
        return True

    def _forget_reported(self) -> None:
        """Rebuild the queue from the outstanding leases once reported ones make up most of it.

        Workloads report most leases long before their TTL, and each would otherwise stay
        queued (some 200 bytes) for the whole TTL: over 200 MB at 10k routes a second with the
        default two minutes. The dict keeps leases in the order taken, which is their order of
        expiry, so the rebuild is a copy; it happens after at least as many reports as it
        copies, so it costs O(1) per report.
        """
        if len(self.queue) > 2 * len(self.active) + 1024:
            self.queue = deque(self.active.values())


__all__ = ["DEFAULT_MAX_LEASES", "MAX_EXPIRED_REMEMBERED", "Lease", "LeaseBook"]
