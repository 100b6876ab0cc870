"""The seed README's examples, translated to Python, work as written."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from provider_router import (
    AllProvidersFailed,
    NoProviderAvailable,
    ProviderInfo,
    ProviderMetrics,
    ProviderRouter,
    RouterConfig,
    RouteRequirements,
    RoutingStrategy,
)
from provider_router.engine import Health
from support.engine import FakeClock


def seed_router(strategy: RoutingStrategy = RoutingStrategy.ROUND_ROBIN) -> ProviderRouter:
    router = ProviderRouter(strategy)
    router.register(ProviderInfo(name="local", base_url="http://localhost:11434",
                                 capabilities=["chat", "embeddings"]))
    router.register(ProviderInfo(name="openai", base_url="https://api.openai.com",
                                 capabilities=["chat", "vision", "embeddings"],
                                 cost_per_1k_tokens=0.002))
    return router


def test_quick_start_routes_to_a_registered_provider() -> None:
    router = seed_router()
    provider = router.route(None)
    assert provider.name in {"local", "openai"}
    assert [router.route().name for _ in range(4)] == ["openai", "local", "openai", "local"]


def test_programmatic_configuration() -> None:
    config = RouterConfig(strategy=RoutingStrategy.LEAST_LOADED, enable_failover=True,
                          failover_threshold=3, health_check_interval_secs=30)
    router = ProviderRouter.with_config(config)
    router.register(ProviderInfo(
        name="local-fast", base_url="http://localhost:11434",
        capabilities=["chat", "embeddings"], models=["llama3.2:8b", "nomic-embed-text"],
        priority=10, cost_per_1k_tokens=0.0, avg_latency_ms=100, max_concurrent=4,
        rate_limit_rpm=1000))
    assert router.route().name == "local-fast"


def test_capability_and_model_requirements() -> None:
    router = seed_router(RoutingStrategy.CAPABILITY)
    vision = router.route(RouteRequirements(capabilities=["vision"]))
    assert vision.name == "openai"
    embedding = router.route(RouteRequirements(capabilities=["embeddings"]))
    assert embedding.name == "local"  # both can; the free one has the same headroom
    with pytest.raises(NoProviderAvailable) as caught:
        router.route(RouteRequirements(model="gpt-4", capabilities=["audio"]))
    assert {c.name for c in caught.value.candidates} == {"local", "openai"}


def test_cost_strategy_prefers_local() -> None:
    assert seed_router(RoutingStrategy.COST).route().name == "local"


def test_dynamic_registration_and_metrics() -> None:
    router = seed_router(RoutingStrategy.LATENCY)
    router.update_metrics("local", ProviderMetrics(avg_latency_ms=150, error_rate=0.01,
                                                   load=0.5))
    router.update_metrics("openai", ProviderMetrics(avg_latency_ms=400))
    assert router.route().name == "local"
    statuses = router.all_statuses()
    assert statuses["local"].avg_latency_ms == 150
    assert statuses["local"].load == 0.5
    assert statuses["local"].health is Health.UNKNOWN
    assert router.unregister("local")
    assert not router.unregister("local")
    assert router.route().name == "openai"


def test_streamed_requirements_rank_by_time_to_first_token() -> None:
    """A Latency router ranks whole answers by latency and streamed ones by the time to first
    token that reports measured, where it has one."""
    router = seed_router(RoutingStrategy.LATENCY)
    router.update_metrics("local", ProviderMetrics(avg_latency_ms=150))
    router.update_metrics("openai", ProviderMetrics(avg_latency_ms=400))
    router.report("local", "success", latency_ms=150, ttft_ms=120)
    router.report("openai", "success", latency_ms=400, ttft_ms=40)
    assert router.route(RouteRequirements()).name == "local"
    assert router.route(RouteRequirements(stream=True)).name == "openai"


def test_failover_after_threshold_failures() -> None:
    clock = FakeClock()
    config = RouterConfig(strategy=RoutingStrategy.PRIORITY, enable_failover=True,
                          failover_threshold=3)
    router = ProviderRouter.with_config(config, clock=clock)
    router.register(ProviderInfo(name="primary", base_url="http://a", priority=10))
    router.register(ProviderInfo(name="backup", base_url="http://b", priority=1))
    for _ in range(3):
        assert router.route_with_failover(None).name == "primary"  # type: ignore[union-attr]
        router.report("primary", "error")
    assert router.route_with_failover(None).name == "backup"  # type: ignore[union-attr]
    clock.advance(30)
    assert router.route().name == "primary"


def test_route_with_failover_tries_fallbacks_in_order_and_reports() -> None:
    router = ProviderRouter.with_config(RouterConfig(strategy=RoutingStrategy.PRIORITY))
    router.register(ProviderInfo(name="flaky", base_url="http://a", priority=10))
    router.register(ProviderInfo(name="steady", base_url="http://b", priority=1))
    tried: list[str] = []

    def call(info: ProviderInfo) -> str:
        tried.append(info.name)
        if info.name == "flaky":
            raise ConnectionError("boom")
        return f"answer from {info.name}"

    assert router.route_with_failover(None, call) == "answer from steady"
    assert tried == ["flaky", "steady"]
    assert router.status("flaky").in_flight == 0
    with pytest.raises(AllProvidersFailed):
        router.route_with_failover(None, lambda info: 1 / 0)


async def test_async_failover_and_health_check() -> None:
    router = seed_router(RoutingStrategy.PRIORITY)

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == "localhost":
            return httpx.Response(200, json={"models": []})
        return httpx.Response(401)

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        health = await router.health_check("local", client=client)
        assert health.status is Health.HEALTHY
        denied = await router.health_check("openai", client=client)
        assert denied.status is Health.UNAUTHORIZED
        assert denied.reason == "Unauthorized"

    async def attempt(info: ProviderInfo) -> str:
        return info.name

    assert await router.aroute_with_failover(None, attempt) == "local"


def test_bad_provider_info_names_the_field() -> None:
    router = ProviderRouter()
    with pytest.raises(ValidationError) as caught:
        router.register(ProviderInfo(name="bad", base_url="ftp://nope", weight=-1))
    fields = {str(error["loc"][0]) for error in caught.value.errors()}
    assert fields == {"baseURL", "weight"}
