"""Each of the seven strategies, driven through ``/v1/route``, picks what the README says."""

from __future__ import annotations

from collections import Counter

from .conftest import Api


async def test_round_robin_takes_every_provider_in_turn(api: Api) -> None:
    for name in ("a", "b", "c"):
        api.add_provider(name)
    api.add_policy("rr", strategy="RoundRobin", default=True)
    picks = [await api.pick() for _ in range(6)]
    assert picks == ["a", "b", "c", "a", "b", "c"]


async def test_least_loaded_picks_the_lowest_share_of_max_concurrent(api: Api) -> None:
    api.add_provider("big", maxConcurrent=10)
    api.add_provider("small", maxConcurrent=2)
    api.add_provider("mid", maxConcurrent=4)
    api.add_policy("ll", strategy="LeastLoaded", default=True)
    in_flight = {"big": 0, "small": 0, "mid": 0}
    capacity = {"big": 10, "small": 2, "mid": 4}
    for _ in range(8):
        chosen = (await api.route_ok())["provider"]["name"]  # holds its lease
        loads = {n: in_flight[n] / capacity[n] for n in in_flight}
        assert loads[chosen] == min(loads.values()), (chosen, loads)
        in_flight[chosen] += 1
    for name, count in in_flight.items():
        assert (await api.provider(name))["inFlight"] == count


async def test_capability_prefers_headroom_then_cost_among_capable_providers(api: Api) -> None:
    api.add_provider("cheap", capabilities=["chat", "vision"], rateLimitRPM=100,
                     costPer1kTokens=0.1)
    api.add_provider("textonly", capabilities=["chat"], costPer1kTokens=0.0)
    api.add_provider("roomy", capabilities=["chat", "vision"], rateLimitRPM=1000,
                     costPer1kTokens=0.5)
    api.add_provider("unlimited", capabilities=["chat", "vision"], costPer1kTokens=0.9)
    api.add_policy("cap", strategy="Capability", default=True)
    # Headroom is the number of requests left this minute; no limit is unlimited.
    assert await api.pick(capability="vision") == "unlimited"
    assert await api.pick(capability="vision") == "unlimited"
    api.add_provider("unlimited", capabilities=["chat", "vision"], costPer1kTokens=0.9,
                     disabled=True)
    # Then roomy's ~1,000 left beat cheap's 100, though roomy costs more.
    assert await api.pick(capability="vision") == "roomy"
    # Cut roomy to 100 a minute, one of them used: cheap has more left (names compare
    # case-insensitively).
    api.add_provider("roomy", capabilities=["chat", "vision"], rateLimitRPM=100,
                     costPer1kTokens=0.5)
    assert await api.pick(capability="VISION") == "cheap"
    explained = await api.route_ok(capability="vision", explain=True, lease=False)
    reasons = {c["name"]: c["reasons"] for c in explained["candidates"]}
    assert reasons["textonly"] == ["MissingCapability"]


async def test_cost_picks_the_cheapest_and_orders_fallbacks_by_price(api: Api) -> None:
    api.add_provider("pricey", costPer1kTokens=0.5)
    api.add_provider("cheapest", costPer1kTokens=0.1)
    api.add_provider("middle", pricing={"input": 0.2, "output": 0.4})
    api.add_policy("cost", strategy="Cost", default=True)
    for _ in range(3):
        body = await api.route_ok(lease=False)
        assert body["provider"]["name"] == "cheapest"
        assert [f["name"] for f in body["fallbacks"]] == ["middle", "pricey"]
        assert body["strategy"] == "Cost"


async def test_latency_follows_measured_latency_over_the_prior(api: Api) -> None:
    api.add_provider("slow", avgLatencyMs=300)
    api.add_provider("fast", avgLatencyMs=100)
    api.add_provider("medium", avgLatencyMs=200)
    api.add_policy("lat", strategy="Latency", default=True)
    assert await api.pick() == "fast"
    # A workload measures "fast" at 900 ms: the measurement replaces the prior.
    response = await api.report(provider="fast", outcome="success", latencyMs=900)
    assert response.status_code == 200, response.text
    assert await api.pick() == "medium"
    assert (await api.provider("fast"))["latencyMs"] == 900


async def test_latency_ranks_streamed_routes_by_reported_time_to_first_token(api: Api) -> None:
    api.add_provider("steady", avgLatencyMs=100)
    api.add_provider("bursty", avgLatencyMs=500)
    api.add_policy("lat", strategy="Latency", default=True)
    assert (await api.provider("bursty"))["ttftMs"] is None
    response = await api.report(provider="bursty", outcome="success", latencyMs=4000,
                                ttftMs=40)
    assert response.status_code == 200, response.text
    assert (await api.provider("bursty"))["ttftMs"] == 40
    assert await api.pick() == "steady", "a whole answer: by latency"
    assert await api.pick(stream=True) == "bursty", "a stream: by time to first token"
    posted = await api.client.post("/v1/route", json={"stream": True, "lease": False})
    assert posted.json()["provider"]["name"] == "bursty"


async def test_priority_prefers_the_highest_and_round_robins_ties(api: Api) -> None:
    api.add_provider("low", priority=1)
    api.add_provider("high1", priority=10)
    api.add_provider("high2", priority=10)
    api.add_policy("prio", strategy="Priority", default=True)
    picks = [await api.pick() for _ in range(4)]
    assert picks == ["high1", "high2", "high1", "high2"]
    body = await api.route_ok(lease=False)
    assert body["fallbacks"][-1]["name"] == "low"


async def test_weighted_splits_by_weight_and_is_stable_per_session(api: Api) -> None:
    api.add_provider("a", weight=3)
    api.add_provider("b", weight=1)
    api.add_provider("never", weight=0)
    api.add_policy("ab", strategy="Weighted", default=True)
    counts = Counter([await api.pick() for _ in range(400)])
    assert counts["never"] == 0
    assert 0.65 < counts["a"] / 400 < 0.85, counts
    # The same session key always lands on the same provider...
    for session in ("user-1", "user-2", "user-3"):
        first = await api.pick(session=session)
        assert {await api.pick(session=session) for _ in range(5)} == {first}
    # ...and session keys split by weight too.
    owners = Counter([await api.pick(session=f"s-{i}") for i in range(200)])
    assert owners["never"] == 0
    assert owners["a"] > owners["b"] > 0


async def test_post_route_takes_the_same_fields_as_json(api: Api) -> None:
    api.add_provider("chat-only", capabilities=["chat"], models=["m1"])
    api.add_provider("vision", capabilities=["chat", "vision"], models=["m1", "m2"])
    api.add_policy("p", strategy="RoundRobin")
    response = await api.client.post("/v1/route", json={
        "policy": "p", "namespace": "default", "capabilities": ["vision"], "model": "m2",
        "explain": True, "lease": False})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["provider"] == {
        "name": "vision", "namespace": "default", "baseURL": "http://vision.llm.test:8000",
        "apiBase": "http://vision.llm.test:8000/v1", "model": "m2", "apiFormat": "openai"}
    assert body["leaseId"] is None
    assert body["policy"] == "p"
    assert body["namespace"] == "default"
    assert body["sticky"] is False
    assert {c["name"]: c["role"] for c in body["candidates"]} == {
        "chat-only": "excluded", "vision": "primary"}
