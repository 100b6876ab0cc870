"""Counters over time windows: sliding minutes for rate limits, bucketed sums for budgets.

Rate limits must honour a provider's quota, so a sliding window keeps its amounts with their
times, never lenient: amounts recorded within ``RESOLUTION`` seconds of each other share one
entry, which leaves the window when its newest amount does. A window then holds at most
``span / RESOLUTION`` entries (1,200 a minute) however busy the provider is; keeping every
request separately cost ~80 bytes each, over 100 MB a minute at 20k routes a second. Budgets
span up to 30 days, so spend is summed into buckets: a window of ``span`` seconds forgets a
bucket ``span`` seconds after it closes.
"""

from __future__ import annotations

import math
from collections import deque

RESOLUTION = 0.05
"""Seconds of amounts one sliding-window entry may merge: an amount stays counted at most this
much longer than exactly ``span`` seconds, and never less."""


class SlidingWindow:
    """Amounts recorded over the last ``span`` seconds, counted for at least ``span``."""

    __slots__ = ("_events", "_total", "span")

    def __init__(self, span: float = 60.0) -> None:
        self.span = span
        # [first stamp, last stamp, amount]: mutable, so a busy provider's route updates the
        # newest entry in place instead of allocating one.
        self._events: deque[list[float]] = deque()
        self._total = 0.0

    def add(self, now: float, amount: float = 1.0) -> None:
        self._prune(now)
        events = self._events
        if events:
            newest = events[-1]
            if now - newest[0] < RESOLUTION:
                newest[1] = now
                newest[2] += amount
                self._total += amount
                return
        events.append([now, now, amount])
        self._total += amount

    def total(self, now: float) -> float:
        self._prune(now)
        return self._total

    def next_expiry(self, now: float) -> float | None:
        """When the oldest entry still in the window leaves it (always after ``now``)."""
        self._prune(now)
        return self._events[0][1] + self.span if self._events else None

    def _prune(self, now: float) -> None:
        horizon = now - self.span
        events = self._events
        while events and events[0][1] <= horizon:
            self._total -= events.popleft()[2]
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
