"""Route answers have exactly the documented shape, whichever way they were encoded."""

from __future__ import annotations

import orjson

from provider_router.engine import RouteRequest
from provider_router.service import RouteOut
from provider_router.service._views import RouteEncoder, TargetCache, decision_view

from .conftest import Api


async def test_answers_match_the_documented_shape(api: Api) -> None:
    api.add_provider("any-model")  # serves any model: the answer names none unless asked
    api.add_provider("pinned", models=["m1", "m2"], apiFormat="vllm",
                     baseURL="http://pinned.llm.test:9000/v1/")
    api.add_policy("sticky", strategy="RoundRobin", default=True,
                   stickySessions={"enabled": True, "ttlSeconds": 60})
    answers = [
        await api.route_ok(),
        await api.route_ok(lease=False),
        await api.route_ok(model="m2", session="abc"),
        await api.route_ok(explain=True),
    ]
    for answer in answers:
        RouteOut.model_validate(answer)
    pinned = next(a["provider"] for a in answers if a["provider"]["name"] == "pinned")
    assert pinned["apiBase"] == "http://pinned.llm.test:9000/v1"
    assert pinned["apiFormat"] == "vllm"
    assert answers[2]["sticky"] is True
    assert answers[2]["provider"]["model"] == "m2"
    assert all(a["strategy"] == "RoundRobin" for a in answers)


async def test_the_fast_encoder_equals_the_plain_one(api: Api) -> None:
    api.add_provider("a", models=["m"])
    api.add_provider("b")
    api.add_provider("c", weight=0)
    api.add_policy("w", strategy="Weighted", default=True)
    encoder = RouteEncoder(TargetCache())
    for request in (RouteRequest(), RouteRequest(lease=False), RouteRequest(session="s1"),
                    RouteRequest(model="m"), RouteRequest(explain=True)):
        for _ in range(5):
            decision = api.table.route(request)
            expected = orjson.dumps(decision_view(decision, TargetCache()))
            assert encoder.encode(decision) == expected
