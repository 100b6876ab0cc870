"""The pools' own contracts, below the table: boundaries a table-level test cannot reach."""

from __future__ import annotations

import random
from collections import Counter

from provider_router.engine._pools import WeightedPool


class _Edge(random.Random):
    """Draws the very top of the range, as rounding can when ``random() * total`` is formed."""

    def random(self) -> float:
        return 1.0


def test_a_draw_at_the_total_lands_on_the_last_weighted_slot() -> None:
    pool = WeightedPool(5, _Edge())
    for slot, weight in enumerate((1, 2, 3, 0, 4)):
        pool.put(slot, (), weight)
    pool.drop(4)  # the last slot leaves; slot 3 weighs nothing
    assert pool.pick(1) == [2]


def test_draws_follow_the_weights_after_eligibility_changes() -> None:
    pool = WeightedPool(4, random.Random(3))
    for slot, weight in enumerate((1, 3, 0, 6)):
        pool.put(slot, (), weight)
    pool.drop(3)
    pool.put(2, (), 4)
    counts = Counter(pool.pick(1)[0] for _ in range(8000))
    assert set(counts) == {0, 1, 2}
    for slot, share in ((0, 1 / 8), (1, 3 / 8), (2, 4 / 8)):
        assert abs(counts[slot] / 8000 - share) < 0.03


def test_zero_weights_serve_only_when_nothing_weighted_is_eligible() -> None:
    pool = WeightedPool(3, random.Random(1))
    pool.put(0, (), 0)
    pool.put(1, (), 0)
    pool.put(2, (), 5)
    assert {pool.pick(1)[0] for _ in range(200)} == {2}
    first, *rest = pool.pick(3)
    assert first == 2
    assert sorted(rest) == [0, 1]
    pool.drop(2)
    assert {pool.pick(1)[0] for _ in range(200)} == {0, 1}


def test_fallbacks_after_a_pinned_member_are_the_heaviest_others() -> None:
    pool = WeightedPool(6, random.Random(2))
    for slot, weight in enumerate((3, 9, 0, 9, 5, 1)):
        pool.put(slot, (), weight)
    assert pool.order_after(1, 3) == [3, 4, 0]
    assert pool.order_after(4, 2) == [1, 3]
    pool.put(5, (), 20)  # a weight change reorders
    pool.drop(1)
    assert pool.order_after(0, 3) == [5, 3, 4]
    assert pool.order_after(3, 10) == [5, 4, 0, 2]  # zero weights last


def test_a_dominant_weight_still_yields_distinct_members_in_weight_order() -> None:
    pool = WeightedPool(4, random.Random(5))
    for slot, weight in enumerate((1_000_000, 2, 0, 3)):
        pool.put(slot, (), weight)
    first, *rest = pool.pick(4)
    assert first == 0
    assert rest == [3, 1, 2]  # draws keep hitting slot 0; the rest follow by weight
