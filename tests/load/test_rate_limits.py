"""Rate-limit headers: parsed in both spellings, carried by reports from a real SDK's answers
and errors, and acted on before the provider answers 429."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import openai
import pytest

from provider_router.api import LLMProviderSpec, RoutingPolicySpec
from provider_router.client import AsyncCall, AsyncRouterClient, rate_limit_headers
from provider_router.client._common import Requests
from provider_router.engine import (
    MAX_RESET_SECONDS,
    RateLimitInfo,
    RouteRequest,
    RoutingTable,
    parse_rate_limit_headers,
)
from provider_router.service import Server, create_app
from support.engine import FakeClock

from .conftest import FakeVllm, StartApp

NOW = 1_800_000_000.0


@pytest.mark.parametrize(("text", "seconds"), [
    ("1s", 1.0), ("6m0s", 360.0), ("20ms", 0.02), ("59m59.5s", 3599.5),
    ("1h2m3.5s", 3600.0),  # past the cap of an hour
    ("2m30s", 150.0), ("0.5", 0.5), ("17", 17.0)])
def test_openai_reset_durations(text: str, seconds: float) -> None:
    info = parse_rate_limit_headers({"x-ratelimit-remaining-requests": "3",
                                     "x-ratelimit-reset-requests": text}, now=NOW)
    assert info is not None
    assert info.reset_requests_seconds == pytest.approx(seconds)


def test_openai_spelling_in_any_case() -> None:
    headers = [("X-RateLimit-Limit-Requests", "500"), ("X-RateLimit-Remaining-Requests", "499"),
               ("X-RateLimit-Reset-Requests", "120ms"), ("x-ratelimit-limit-tokens", "30000"),
               ("x-ratelimit-remaining-tokens", "29000"), ("x-ratelimit-reset-tokens", "2s"),
               ("content-type", "application/json")]
    assert parse_rate_limit_headers(headers, now=NOW) == RateLimitInfo(
        remaining_requests=499, remaining_tokens=29000, reset_requests_seconds=0.12,
        reset_tokens_seconds=2.0, limit_requests=500, limit_tokens=30000)


def test_anthropic_spelling_with_rfc3339_resets() -> None:
    reset = datetime.fromtimestamp(NOW, UTC) + timedelta(seconds=42)
    headers = {"anthropic-ratelimit-requests-limit": "50",
               "anthropic-ratelimit-requests-remaining": "0",
               "anthropic-ratelimit-requests-reset": reset.isoformat().replace("+00:00", "Z"),
               "anthropic-ratelimit-tokens-remaining": "1000"}
    info = parse_rate_limit_headers(headers, now=NOW)
    assert info is not None
    assert info.remaining_requests == 0
    assert info.limit_requests == 50
    assert info.remaining_tokens == 1000
    assert info.reset_requests_seconds == pytest.approx(42.0)


def test_resets_are_capped_and_garbage_is_ignored() -> None:
    far = datetime.fromtimestamp(NOW + 7 * 86400, UTC).isoformat()
    info = parse_rate_limit_headers({"anthropic-ratelimit-requests-remaining": "0",
                                     "anthropic-ratelimit-requests-reset": far}, now=NOW)
    assert info is not None
    assert info.reset_requests_seconds == MAX_RESET_SECONDS
    bad = parse_rate_limit_headers({"x-ratelimit-remaining-requests": "lots",
                                    "x-ratelimit-reset-requests": "soon",
                                    "x-ratelimit-remaining-tokens": "-4"}, now=NOW)
    assert bad is None
    assert parse_rate_limit_headers({"retry-after": "3"}, now=NOW) is None


def test_a_stated_zero_excludes_until_the_reset(table: RoutingTable, clock: FakeClock) -> None:
    for name in ("a", "b"):
        table.upsert_provider("ns", name, LLMProviderSpec.model_validate(
            {"baseURL": f"http://{name}:1", "healthCheck": {"enabled": False}}))
    table.upsert_policy("ns", "p", RoutingPolicySpec.model_validate({"default": True}))
    table.record_rate_limit("ns", "a", RateLimitInfo(remaining_requests=0,
                                                     reset_requests_seconds=30.0))
    candidates = {c.name: c for c in table.explain(RouteRequest(namespace="ns"))}
    assert candidates["a"].reasons == ("ProviderRequestsExhausted",)
    assert "retry in 30.0s" in candidates["a"].detail
    clock.advance(29.9)
    assert {table.route(RouteRequest(namespace="ns", lease=False)).target.provider.name
            for _ in range(4)} == {"b"}
    clock.advance(0.2)  # the reset has passed: back without any other event
    assert {table.route(RouteRequest(namespace="ns", lease=False)).target.provider.name
            for _ in range(4)} == {"a", "b"}


# -- end to end: a real openai SDK against a provider that sends the headers ---------------


@pytest.fixture
async def router(table: RoutingTable) -> AsyncIterator[tuple[Server, AsyncRouterClient]]:
    async with Server(create_app(table), "127.0.0.1", 0) as server, \
            AsyncRouterClient(server.url, namespace="ns", timeout=10.0) as client:
        yield server, client


def openai_spec(url: str, **extra: Any) -> LLMProviderSpec:
    return LLMProviderSpec.model_validate({"baseURL": url, "healthCheck": {"enabled": False},
                                           **extra})


async def test_an_sdk_429_with_remaining_zero_excludes_until_the_reset(
        start_app: StartApp, table: RoutingTable, clock: FakeClock,
        router: tuple[Server, AsyncRouterClient]) -> None:
    limited, spare = FakeVllm(models=("m",)), FakeVllm(models=("m",))
    limited.rate_headers = {"x-ratelimit-limit-requests": "60",
                            "x-ratelimit-remaining-requests": "0",
                            "x-ratelimit-reset-requests": "6m0s"}
    table.upsert_provider("ns", "limited", openai_spec(await start_app(limited.app),
                                                       priority=10))
    table.upsert_provider("ns", "spare", openai_spec(await start_app(spare.app)))
    table.upsert_policy("ns", "p", RoutingPolicySpec.model_validate(
        {"strategy": "Priority", "default": True, "failover": {"cooldownSeconds": 1}}))
    _, client = router

    async def ask() -> AsyncCall:
        async with client.call() as call:
            assert call.provider.name == "limited"
            sdk = openai.AsyncOpenAI(base_url=call.provider.api_base, api_key="sk-test",
                                     max_retries=0, timeout=10.0)
            await sdk.chat.completions.create(model="m", messages=[
                {"role": "user", "content": "hi"}])
        return call

    with pytest.raises(openai.RateLimitError) as raised:
        await ask()
    assert raised.value.status_code == 429
    # The 429's own cooldown (no Retry-After: the policy's 1 s) ends long before the stated
    # reset; the stated reset keeps it out.
    clock.advance(2.0)
    listed = {p["name"]: p for p in await client.providers("ns")}
    assert listed["limited"]["reasons"] == ["ProviderRequestsExhausted"]
    assert listed["limited"]["load"]["remainingRequests"] == 0
    assert (await client.route()).provider.name == "spare"
    clock.advance(360.0)
    assert (await client.route()).provider.name == "limited"


async def test_capability_uses_the_stated_headroom_of_a_successful_answer(
        start_app: StartApp, table: RoutingTable,
        router: tuple[Server, AsyncRouterClient]) -> None:
    cheap, dear = FakeVllm(models=("m",)), FakeVllm(models=("m",))
    cheap.rate_headers = {"x-ratelimit-limit-requests": "1000",
                          "x-ratelimit-remaining-requests": "10",
                          "x-ratelimit-reset-requests": "40s"}
    table.upsert_provider("ns", "cheap", openai_spec(await start_app(cheap.app),
                                                     costPer1kTokens=0.1))
    table.upsert_provider("ns", "dear", openai_spec(await start_app(dear.app),
                                                    costPer1kTokens=1.0))
    table.upsert_policy("ns", "p", RoutingPolicySpec.model_validate(
        {"strategy": "Capability", "default": True}))
    _, client = router
    async with client.call() as call:
        assert call.provider.name == "cheap"  # same headroom by our count: cheaper first
        sdk = openai.AsyncOpenAI(base_url=call.provider.api_base, api_key="sk-test",
                                 max_retries=0, timeout=10.0)
        raw = await sdk.chat.completions.with_raw_response.create(
            model="m", messages=[{"role": "user", "content": "hi"}])
        call.observe(raw)
        assert raw.parse().choices[0].message.content == "hi"
    assert call.report_error is None
    # cheap says 1% of its requests are left: dear's untouched minute is more headroom.
    assert (await client.route()).provider.name == "dear"


def test_the_client_forwards_rate_limit_headers_only() -> None:
    class Response:
        def __init__(self) -> None:
            self.headers = {"X-RateLimit-Remaining-Requests": "4",
                            "Authorization": "Bearer nope",
                            "anthropic-ratelimit-tokens-reset": "2026-12-01T00:00:00Z"}

    class Wrapped(Exception):
        pass

    error = Wrapped("workload error")
    error.__cause__ = type("E", (Exception,), {"response": Response(), "status_code": 429})()
    expected = {"x-ratelimit-remaining-requests": "4",
                "anthropic-ratelimit-tokens-reset": "2026-12-01T00:00:00Z"}
    assert rate_limit_headers(Response()) == expected
    assert rate_limit_headers(error) == expected
    assert rate_limit_headers({"content-type": "text/plain"}) is None


async def test_report_fields_and_headers(table: RoutingTable, clock: FakeClock,
                                         router: tuple[Server, AsyncRouterClient]) -> None:
    for name in ("a", "b"):
        table.upsert_provider("ns", name, openai_spec(f"http://{name}.test:1"))
    table.upsert_policy("ns", "p", RoutingPolicySpec.model_validate({"default": True}))
    server, _ = router
    async with httpx.AsyncClient(base_url=server.url, timeout=10.0) as http:
        # Figures as numbers; where headers give the same figure, the numbers win.
        answer = await http.post("/v1/report", json={
            "provider": "a", "namespace": "ns", "outcome": "success",
            "rateLimit": {"remainingRequests": 0, "resetRequestsSeconds": 10},
            "rateLimitHeaders": {"x-ratelimit-remaining-requests": "50",
                                 "x-ratelimit-remaining-tokens": "9000",
                                 "content-type": "application/json"}})
        assert answer.status_code == 200, answer.text
        live = table.provider("ns", "a").live
        assert live is not None
        assert live.rate == RateLimitInfo(remaining_requests=0, remaining_tokens=9000,
                                          reset_requests_seconds=10.0)
        assert table.provider("ns", "a").blocks  # excluded: ProviderRequestsExhausted
        bad = await http.post("/v1/report", json={
            "provider": "b", "namespace": "ns", "outcome": "success",
            "rateLimit": {"remainingRequests": -1}})
        assert bad.status_code == 400
        assert bad.json()["error"]["details"]["field"] == "rateLimit.remainingRequests"
    clock.advance(10.0)
    assert {table.route(RouteRequest(namespace="ns", lease=False)).target.provider.name
            for _ in range(4)} == {"a", "b"}  # the reset has passed


def test_a_manual_report_takes_the_headers_of_an_httpx_response() -> None:
    response = httpx.Response(200, headers={"x-ratelimit-remaining-requests": "3",
                                            "x-ratelimit-reset-requests": "1s",
                                            "set-cookie": "no"})
    body = Requests("ns", None).report_body(None, "success", "a", None, None, None, None,
                                            None, None, None, response)
    assert body["rateLimitHeaders"] == {"x-ratelimit-remaining-requests": "3",
                                        "x-ratelimit-reset-requests": "1s"}
