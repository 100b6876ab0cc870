"""Ordered sets of eligible providers, kept up to date as providers change, never rebuilt per
request.

A pool holds the eligible members of one (policy, requirements) pair, addressed by slot number.
``RankedPool`` keeps them sorted by a strategy's rank and rotates among the best-ranked ties, so
RoundRobin (every rank equal), Priority, Cost, Latency, LeastLoaded and Capability are one
structure with different rank functions. ``WeightedPool`` samples by weight through
prefix sums. Both pick in O(log n) with C-level bisects.
"""

from __future__ import annotations

import random
import sys
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterator
from itertools import accumulate
from typing import Protocol

Rank = tuple[float, ...]


class Pool(Protocol):
    def put(self, slot: int, rank: Rank, weight: int) -> None: ...
    def drop(self, slot: int) -> None: ...
    def __contains__(self, slot: int) -> bool: ...
    def __len__(self) -> int: ...
    def members(self) -> Iterator[int]: ...
    def pick(self, count: int) -> list[int]: ...
    def resume(self, cursor: int) -> None: ...
    def order_after(self, first: int, count: int) -> list[int]: ...


class RankedPool:
    """Eligible slots sorted by rank; the best-ranked ties take turns.

    A plain sorted list with ``bisect``: inserting shifts memory in C, which at the sizes a
    policy selects (up to some 10,000 providers) costs less than a balanced structure's Python
    bookkeeping, and every read on the hot path is a C-level bisect or slice.
    """

    __slots__ = ("_cursor", "_rank_of", "_sorted")

    def __init__(self) -> None:
        # Flat (*rank, slot) tuples: comparing flat tuples is cheaper than nested ones.
        self._sorted: list[tuple[float, ...]] = []
        self._rank_of: dict[int, Rank] = {}
        self._cursor = 0

    def put(self, slot: int, rank: Rank, weight: int = 1) -> None:
        old = self._rank_of.get(slot)
        if old == rank:
            return
        ordered = self._sorted
        if old is not None:
            del ordered[bisect_left(ordered, (*old, slot))]
        insort(ordered, (*rank, slot))
        self._rank_of[slot] = rank

    def drop(self, slot: int) -> None:
        old = self._rank_of.pop(slot, None)
        if old is not None:
            ordered = self._sorted
            del ordered[bisect_left(ordered, (*old, slot))]

    def __contains__(self, slot: int) -> bool:
        return slot in self._rank_of

    def __len__(self) -> int:
        return len(self._rank_of)

    def members(self) -> Iterator[int]:
        return (int(entry[-1]) for entry in self._sorted)

    def resume(self, cursor: int) -> None:
        """Continue the rotation from ``cursor``, where a replaced pool left off."""
        self._cursor = cursor

    def pick(self, count: int) -> list[int]:
        """The next ``count`` slots in turn: the rotated best tie group, then the rest by rank."""
        ordered = self._sorted
        if not ordered or count <= 0:
            return []
        top = ordered[0][:-1]
        group_end = bisect_right(ordered, (*top, sys.maxsize))
        start = bisect_left(ordered, (*top, self._cursor), 0, group_end)
        if start >= group_end:
            start = 0
        self._cursor = int(ordered[start][-1]) + 1
        chosen = [int(e[-1]) for e in ordered[start:min(group_end, start + count)]]
        if len(chosen) < count and start > 0:
            chosen += [int(e[-1]) for e in ordered[:min(start, count - len(chosen))]]
        if len(chosen) < count:
            chosen += [int(e[-1]) for e in ordered[group_end:group_end + count - len(chosen)]]
        return chosen

    def order_after(self, first: int, count: int) -> list[int]:
        """Up to ``count`` slots other than ``first``, in rank order, without taking a turn."""
        return [int(e[-1]) for e in self._sorted[:count + 1] if e[-1] != first][:count]


class WeightedPool:
    """Eligible slots drawn at random in proportion to their weights.

    Draws bisect a prefix-sum array in C. The array is rebuilt (``itertools.accumulate``, also
    in C) only on the first draw after a weight or eligibility changed, which in steady state
    is rare; a Python-level tree would cost more on every draw than the rebuild does. The
    eligible members are also kept sorted heaviest first, for orders that are not drawn: a
    session's fallbacks, and the rest when draws keep hitting members already taken.

    A weight of 0 takes no share of the split but can still serve as a fallback, and serves
    when nothing with a positive weight is eligible.
    """

    __slots__ = ("_cumulative", "_eligible", "_heaviest", "_last_positive", "_rng", "_stale",
                 "_total", "_weights")

    def __init__(self, size: int, rng: random.Random) -> None:
        # Floats, so that bisecting a float target compares like with like (several times
        # cheaper in CPython than float against int). Weights are small integers: the sums
        # stay exact up to 2**53.
        self._cumulative: list[float] = [0.0] * size
        self._last_positive = 0
        self._stale = False
        self._weights = [0] * size
        self._eligible: set[int] = set()
        self._heaviest: list[tuple[int, int]] = []
        """``(-weight, slot)`` of every eligible member, sorted: heaviest first, then by slot."""
        self._total = 0
        self._rng = rng

    def put(self, slot: int, rank: Rank = (), weight: int = 1) -> None:
        old = self._weights[slot]
        if slot in self._eligible:
            if old == weight:
                return  # the usual case: a provider touched with nothing changed here
            del self._heaviest[bisect_left(self._heaviest, (-old, slot))]
        else:
            self._eligible.add(slot)
        insort(self._heaviest, (-weight, slot))
        self._set_weight(slot, weight)

    def drop(self, slot: int) -> None:
        if slot in self._eligible:
            self._eligible.discard(slot)
            del self._heaviest[bisect_left(self._heaviest, (-self._weights[slot], slot))]
            self._set_weight(slot, 0)

    def __contains__(self, slot: int) -> bool:
        return slot in self._eligible

    def __len__(self) -> int:
        return len(self._eligible)

    def members(self) -> Iterator[int]:
        return iter(sorted(self._eligible))

    def weight(self, slot: int) -> int:
        return self._weights[slot]

    def pick(self, count: int) -> list[int]:
        """``count`` distinct slots drawn by weight, without replacement."""
        if count <= 0 or not self._eligible:
            return []
        chosen: list[int] = []
        if self._total > 0:
            # Rejection sampling: redraw a slot already taken. Cheaper than taking weights out
            # of the array and putting them back, and bounded, so a dominant weight cannot spin.
            random, find, total = self._rng.random, self._find, self._total
            for _ in range(4 * count):
                slot = find(random() * total)
                if slot not in chosen:
                    chosen.append(slot)
                    if len(chosen) == count:
                        return chosen
        else:
            # Nothing with a share is eligible: every zero-weight member is equally good.
            chosen.append(self._heaviest[self._rng.randrange(len(self._heaviest))][1])
        # The rest heaviest first (zero weights last, by slot): at most ``count`` are skipped.
        for _, slot in self._heaviest:
            if len(chosen) == count:
                break
            if slot not in chosen:
                chosen.append(slot)
        return chosen

    def resume(self, cursor: int) -> None:
        """Draws are independent; there is no turn to resume."""

    def order_after(self, first: int, count: int) -> list[int]:
        """Fallbacks after a session-pinned ``first``: heaviest first, so they are stable too."""
        return [s for _, s in self._heaviest[:count + 1] if s != first][:count]

    def _set_weight(self, slot: int, weight: int) -> None:
        delta = weight - self._weights[slot]
        if delta:
            self._weights[slot] = weight
            self._total += delta
            self._stale = True

    def _find(self, target: float) -> int:
        """The slot whose cumulative weight range holds ``target`` (0 <= target <= total)."""
        if self._stale:
            self._rebuild()
        # Zero-weight slots repeat their predecessor's sum, so bisect_right never lands on one;
        # the upper bound keeps a target rounded up to the total on the last weighted slot.
        return bisect_right(self._cumulative, target, 0, self._last_positive)

    def _rebuild(self) -> None:
        cumulative = self._cumulative = list(accumulate(self._weights, initial=0.0))[1:]
        # The first slot whose running sum reaches the total is the last with a weight.
        self._last_positive = bisect_left(cumulative, self._total) if cumulative else 0
        self._stale = False
