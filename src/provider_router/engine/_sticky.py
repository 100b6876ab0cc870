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


def owner(session: str, members: Iterable[tuple[int, str, int]]) -> int | None:
    """The slot that owns ``session`` among ``(slot, name, weight)`` members.

    Weighted members compete by ``-weight / ln(u)``; if every weight is zero, by ``u`` alone.
    """
    key = seed_of(session)
    best_slot: int | None = None
    best_score = -1.0
    fallback_slot: int | None = None
    fallback_score = -1
    for slot, name, weight in members:
        draw = _mix(key ^ seed_of(name))
        if weight > 0:
            unit = (draw + 0.5) / 18446744073709551616.0  # in (0, 1)
            score = -weight / math.log(unit)
            if score > best_score:
                best_slot, best_score = slot, score
        elif best_slot is None and draw > fallback_score:
            fallback_slot, fallback_score = slot, draw
    return best_slot if best_slot is not None else fallback_slot
