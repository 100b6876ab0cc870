"""Sliding windows: never lenient, bounded in size however busy a provider is."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from provider_router.engine._windows import RESOLUTION, SlidingWindow

SPAN = 60.0


@given(st.lists(st.tuples(st.floats(0.0, 5.0), st.integers(1, 50)), min_size=1, max_size=200),
       st.lists(st.floats(0.0, 90.0), max_size=20))
def test_an_amount_counts_for_the_whole_span_and_at_most_a_resolution_longer(
        steps: list[tuple[float, int]], probes: list[float]) -> None:
    window = SlidingWindow(SPAN)
    recorded: list[tuple[float, int]] = []
    now = 0.0
    for gap, amount in steps:
        now += gap
        window.add(now, amount)
        recorded.append((now, amount))
    for extra in sorted(probes):
        at = now + extra
        exact = sum(a for t, a in recorded if t > at - SPAN)
        generous = sum(a for t, a in recorded if t > at - SPAN - RESOLUTION)
        assert exact <= window.total(at) <= generous


def test_a_busy_window_keeps_one_entry_per_resolution() -> None:
    window = SlidingWindow(SPAN)
    for step in range(600_000):  # 10,000 a second for a minute
        window.add(step / 10_000)
    assert window.total(59.99999) == 600_000
    assert len(window._events) <= SPAN / RESOLUTION + 1


def test_the_next_expiry_follows_the_newest_amount_of_the_oldest_entry() -> None:
    window = SlidingWindow(SPAN)
    window.add(10.0)
    window.add(10.03)
    window.add(20.0)
    assert window.next_expiry(30.0) == 70.03
    assert window.total(70.0) == 3
    assert window.total(70.03) == 1
    assert window.next_expiry(70.03) == 80.0
