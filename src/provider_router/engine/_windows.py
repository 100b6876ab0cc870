"""Counters over time windows: exact sliding minutes for rate limits, bucketed sums for budgets.

Rate limits are small (a few thousand events a minute at most) and must be exact to honour a
provider's quota, so every event is kept. Budgets span up to 30 days, so spend is summed into
buckets: a window of ``span`` seconds forgets a bucket ``span`` seconds after it closes.
"""

from __future__ import annotations

import math
from collections import deque


class SlidingWindow:
    """Amounts recorded over the last ``span`` seconds, exactly."""

    __slots__ = ("_events", "_total", "span")

    def __init__(self, span: float = 60.0) -> None:
        self.span = span
        self._events: deque[tuple[float, float]] = deque()
        self._total = 0.0

    def add(self, now: float, amount: float = 1.0) -> None:
        self._prune(now)
        self._events.append((now, amount))
        self._total += amount

    def total(self, now: float) -> float:
        self._prune(now)
        return self._total

    def __len__(self) -> int:
        """Amounts recorded and not yet pruned (some may be older than the window)."""
        return len(self._events)

    def next_expiry(self, now: float) -> float | None:
        """When the oldest amount still in the window leaves it (always after ``now``)."""
        self._prune(now)
        return self._events[0][0] + self.span if self._events else None

    def frees_at(self, now: float, limit: float) -> float | None:
        """The earliest time at which the total drops below ``limit``; None if it already is."""
        self._prune(now)
        total = self._total
        if total < limit:
            return None
        for stamp, amount in self._events:
            total -= amount
            if total < limit:
                return stamp + self.span
        return now  # pragma: no cover - unreachable: the loop empties the total

    def _prune(self, now: float) -> None:
        horizon = now - self.span
        events = self._events
        while events and events[0][0] <= horizon:
            self._total -= events.popleft()[1]
        if not events:
            self._total = 0.0  # no float drift once the window is empty


class RollingSum:
    """A sum over a rolling window of ``span`` seconds, kept in ``buckets`` equal buckets."""

    __slots__ = ("_buckets", "_total", "_width", "buckets", "span")

    def __init__(self, span: float, buckets: int = 60) -> None:
        self.span = span
        self.buckets = buckets
        self._width = span / buckets
        self._buckets: deque[tuple[int, float]] = deque()
        self._total = 0.0

    def add(self, now: float, amount: float) -> None:
        self._prune(now)
        index = math.floor(now / self._width)
        if self._buckets and self._buckets[-1][0] == index:
            last = self._buckets.pop()
            self._buckets.append((index, last[1] + amount))
        else:
            self._buckets.append((index, amount))
        self._total += amount

    def total(self, now: float) -> float:
        self._prune(now)
        return self._total

    def next_expiry(self) -> float | None:
        if not self._buckets:
            return None
        return (self._buckets[0][0] + 1 + self.buckets) * self._width

    def _prune(self, now: float) -> None:
        oldest_kept = math.floor(now / self._width) - self.buckets + 1
        buckets = self._buckets
        while buckets and buckets[0][0] < oldest_kept:
            self._total -= buckets.popleft()[1]
        if not buckets:
            self._total = 0.0
