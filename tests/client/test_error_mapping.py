"""Narrow cases that a real router does not produce on demand: proxies answering for it,
broken bodies, and the exact requests the client sends. httpx.MockTransport only here."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import ClassVar

import httpx
import pytest

from provider_router.client import (
    NoProviderAvailableError,
    Outcome,
    RouterClient,
    RouterError,
    RouterUnavailableError,
    classify,
    parse_retry_after,
)
from provider_router.client._types import Route


def client_for(handler: httpx.MockTransport | None = None, **kwargs: object) -> RouterClient:
    return RouterClient("http://router.test", transport=handler, **kwargs)  # type: ignore[arg-type]


def test_route_request_shape() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"provider": {
            "name": "p", "namespace": "team", "baseURL": "http://p:1", "apiBase": "http://p:1/v1",
            "model": "m", "apiFormat": "openai"}, "fallbacks": [], "leaseId": None,
            "policy": "main", "namespace": "team", "strategy": "Cost", "sticky": False,
            "future": "ignored"})

    with client_for(httpx.MockTransport(handler), namespace="team") as client:
        route = client.route(capabilities=["chat", "vision"], model="m", session="s",
                             explain=True, lease=False)
    assert route.provider.model == "m"
    assert route.lease_id is None
    assert seen[0].url.path == "/v1/route"
    assert seen[0].url.params.multi_items() == [
        ("namespace", "team"), ("capability", "chat"), ("capability", "vision"),
        ("model", "m"), ("session", "s"), ("explain", "true"), ("lease", "false")]


def test_report_body_is_camel_case_without_nulls() -> None:
    bodies: list[object] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json={"leaseReleased": True})

    with client_for(httpx.MockTransport(handler)) as client:
        client.report("lease-1", "rate_limited", retry_after_seconds=2.5, status_code=429)
        client.report("lease-2", "success", provider="p", namespace="ns")
        client.report(provider="p", namespace="ns", outcome="error", input_tokens=3)
        with pytest.raises(ValueError, match="needs a lease_id"):
            client.report(outcome="success")
        with pytest.raises(ValueError, match="exploded"):
            client.report("lease-1", "exploded")
    assert bodies == [
        {"outcome": "rate_limited", "leaseId": "lease-1", "statusCode": 429,
         "retryAfterSeconds": 2.5},
        {"outcome": "success", "leaseId": "lease-2", "provider": "p", "namespace": "ns"},
        {"outcome": "error", "provider": "p", "namespace": "ns", "inputTokens": 3}]


def test_a_proxy_error_page_is_not_mistaken_for_the_api() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, text="<html>upstream connect error</html>")

    with client_for(httpx.MockTransport(handler)) as client, pytest.raises(RouterError) as err:
        client.route()
    assert type(err.value) is RouterError
    assert err.value.code == "HTTP503"
    assert "upstream connect error" in err.value.message


def test_api_503_maps_to_no_provider_available() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"error": {
            "code": "no_provider_available", "message": "nothing",
            "details": {"candidates": [{"name": "a", "reasons": ["CircuitOpen"]}],
                        "excluded": {"CircuitOpen": 1}, "selected": 1}}})

    with client_for(httpx.MockTransport(handler)) as client, \
            pytest.raises(NoProviderAvailableError) as err:
        client.route()
    assert err.value.candidates == [{"name": "a", "reasons": ["CircuitOpen"]}]
    assert err.value.excluded == {"CircuitOpen": 1}


def test_invalid_bodies() -> None:
    answers = iter([httpx.Response(200, text="not json"), httpx.Response(200, json={"x": 1}),
                    httpx.Response(200, json={"providers": "nope"})])

    def handler(request: httpx.Request) -> httpx.Response:
        return next(answers)

    with client_for(httpx.MockTransport(handler)) as client:
        for call in (client.route, client.route, client.providers):
            with pytest.raises(RouterError) as err:
                call()
            assert err.value.code == "InvalidResponse"


def test_transport_failures_are_router_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("slow", request=request)

    with client_for(httpx.MockTransport(handler)) as client, \
            pytest.raises(RouterUnavailableError, match="timed out"):
        client.providers()


def test_default_url_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVIDER_ROUTER_URL", "http://from-env:1234/")
    with RouterClient() as client:
        assert client.base_url == "http://from-env:1234"


def test_route_without_api_base_derives_it() -> None:
    route = Route.from_wire({"provider": {"name": "p", "baseURL": "http://h/v1/"}})
    assert route.provider.api_base == "http://h/v1"
    assert route.providers == (route.provider,)


# -- classifying exceptions ---------------------------------------------------------------------


def status_error(status: int, headers: dict[str, str] | None = None) -> httpx.HTTPStatusError:
    request = httpx.Request("POST", "http://p/v1/chat/completions")
    response = httpx.Response(status, headers=headers, request=request)
    return httpx.HTTPStatusError("boom", request=request, response=response)


def test_classify_http_errors() -> None:
    verdict = classify(status_error(429, {"Retry-After": "7"}))
    assert (verdict.outcome, verdict.status_code, verdict.retry_after_seconds) == (
        Outcome.RATE_LIMITED, 429, 7.0)
    assert classify(status_error(429)).retry_after_seconds is None
    assert classify(status_error(500)).outcome is Outcome.ERROR
    assert classify(status_error(500)).status_code == 500
    assert classify(status_error(504)).outcome is Outcome.TIMEOUT


def test_classify_timeouts() -> None:
    class APITimeoutError(Exception):
        """openai's name for it; not a TimeoutError subclass."""

    assert classify(TimeoutError()).outcome is Outcome.TIMEOUT
    assert classify(httpx.ReadTimeout("t")).outcome is Outcome.TIMEOUT
    assert classify(APITimeoutError()).outcome is Outcome.TIMEOUT
    assert classify(ConnectionError()).outcome is Outcome.ERROR


def test_classify_follows_the_cause_chain() -> None:
    class WorkloadError(Exception):
        pass

    try:
        try:
            raise status_error(429, {"retry-after": "3"})
        except httpx.HTTPStatusError as inner:
            raise WorkloadError("could not summarise") from inner
    except WorkloadError as outer:
        verdict = classify(outer)
    assert verdict.outcome is Outcome.RATE_LIMITED
    assert verdict.retry_after_seconds == 3.0


def test_classify_requests_style_errors() -> None:
    class Response:
        status_code = 429
        headers: ClassVar[dict[str, str]] = {"retry-after": "1.5"}

    class HTTPError(Exception):
        response = Response()

    verdict = classify(HTTPError())
    assert verdict.outcome is Outcome.RATE_LIMITED
    assert verdict.retry_after_seconds == 1.5


def test_parse_retry_after() -> None:
    later = datetime.now(UTC) + timedelta(seconds=60)
    assert 55 < (parse_retry_after({"retry-after": format_datetime(later, usegmt=True)})
                 or 0) <= 60
    assert parse_retry_after({"retry-after-ms": "250"}) == 0.25
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({"retry-after": "-3"}) == 0.0
    assert parse_retry_after({}) is None
