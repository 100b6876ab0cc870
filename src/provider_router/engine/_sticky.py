"""Rendezvous (highest-random-weight) hashing for session keys.

Every replica computes the same owner for a key without sharing state, and adding or removing a
provider moves only the sessions that belong to it. Weights bias ownership in proportion, so a
Weighted policy's A/B split holds per session. Hashes are blake2b, not ``hash()``, because
Python salts ``hash()`` per process.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from functools import lru_cache
from hashlib import blake2b

_MASK = (1 << 64) - 1


@lru_cache(maxsize=65536)
def seed_of(text: str) -> int:
    return int.from_bytes(blake2b(text.encode(), digest_size=8).digest(), "little")


def _mix(value: int) -> int:
    """splitmix64's finaliser: spreads one 64-bit value over all bits."""
    value = (value ^ (value >> 30)) * 0xBF58476D1CE4E5B9 & _MASK
    value = (value ^ (value >> 27)) * 0x94D049BB133111EB & _MASK
    return value ^ (value >> 31)


Score = tuple[int, float]
"""Comparable: any member with a weight beats every member without one."""


def score(key: int, name: str, weight: int) -> Score:
    """How strongly the member ``name`` claims the session whose seed is ``key``."""
    draw = _mix(key ^ seed_of(name))
    if weight > 0:
        unit = (draw + 0.5) / 18446744073709551616.0  # in (0, 1)
        return 1, -weight / math.log(unit)
    return 0, float(draw)


def owner(session: str, members: Iterable[tuple[int, str, int]]) -> tuple[int, Score] | None:
    """The slot that owns ``session`` among ``(slot, name, weight)`` members, and its score.

    Weighted members compete by ``-weight / ln(u)``; if every weight is zero, by ``u`` alone.
    """
    key = seed_of(session)
    best: tuple[int, Score] | None = None
    for slot, name, weight in members:
        claim = score(key, name, weight)
        if best is None or claim > best[1]:
            best = slot, claim
    return best
