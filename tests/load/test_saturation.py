"""``Saturated``'s hysteresis, in level (95% in, 85% out) and in time (3 samples in a row)."""

from __future__ import annotations

from provider_router.api import LLMProviderSpec
from provider_router.engine import LoadSample, RoutingTable
from provider_router.operator import saturation_verdict
from support.engine import FakeClock


def sample(kv: float) -> LoadSample:
    return LoadSample(running=1, waiting=0, kv_cache_usage=kv)


def test_saturation_needs_three_samples_each_way(table: RoutingTable,
                                                 clock: FakeClock) -> None:
    table.upsert_provider("ns", "v", LLMProviderSpec.model_validate({
        "baseURL": "http://v:1", "apiFormat": "vllm",
        "loadMetrics": {"enabled": True, "intervalSeconds": 1}}))
    state = table.provider("ns", "v")
    before = saturation_verdict(state, clock())
    assert before is not None
    assert before.status == "Unknown"
    flips: list[tuple[float, bool]] = []
    # Two high samples then a dip: the streak starts over. Then three in a row: a flip.
    # In between 85% and 95% nothing changes either way; three at or under 85% flip back.
    for kv in (0.97, 0.99, 0.90, 0.96, 0.95, 0.98, 0.90, 0.20, 0.86, 0.85, 0.80, 0.50, 0.99):
        clock.advance(1)
        if table.record_load("ns", "v", sample(kv)):
            live = state.live
            assert live is not None
            flips.append((kv, live.saturated))
    assert flips == [(0.98, True), (0.50, False)]
    verdict = saturation_verdict(state, clock())
    assert verdict is not None
    assert (verdict.status, verdict.reason) == ("False", "HasRoom")
    clock.advance(2.5)  # two intervals without a sample
    stale = saturation_verdict(state, clock())
    assert stale is not None
    assert (stale.status, stale.reason) == ("Unknown", "NoLoadFigures")


def test_no_condition_without_load_metrics(table: RoutingTable, clock: FakeClock) -> None:
    table.upsert_provider("ns", "plain", LLMProviderSpec.model_validate(
        {"baseURL": "http://p:1"}))
    assert saturation_verdict(table.provider("ns", "plain"), clock()) is None
