"""What the sync and async clients share: request building, answer parsing, call bookkeeping.

Kept free of I/O so that ``RouterClient`` and ``AsyncRouterClient`` differ only in how they send
a request, and cannot drift apart in what they send or how they read the answer.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Mapping
from typing import Any

import httpx

from provider_router.client._classify import classify, rate_limit_headers
from provider_router.client._errors import RouterError, error_from_response
from provider_router.client._types import Outcome, Route, RouteProvider

log = logging.getLogger("provider_router.client")

from provider_router._defaults import DEFAULT_URL  # noqa: E402  (after the logger, on purpose)

URL_ENV = "PROVIDER_ROUTER_URL"


def default_url() -> str:
    """``$PROVIDER_ROUTER_URL``, else the standalone router's default address."""
    return os.environ.get(URL_ENV) or DEFAULT_URL


def capability_list(capabilities: str | Iterable[str] | None) -> list[str]:
    if capabilities is None:
        return []
    if isinstance(capabilities, str):
        return [capabilities]
    return [str(c) for c in capabilities]


class Requests:
    """Builds route API requests and reads its answers."""

    def __init__(self, namespace: str | None, policy: str | None) -> None:
        self.namespace = namespace
        self.policy = policy

    def route_params(self, policy: str | None, namespace: str | None,
                     capabilities: str | Iterable[str] | None, model: str | None,
                     session: str | None, explain: bool,
                     lease: bool = True, stream: bool = False) -> list[tuple[str, str]]:
        params: list[tuple[str, str]] = []
        chosen_policy = policy or self.policy
        chosen_namespace = namespace or self.namespace
        if chosen_policy:
            params.append(("policy", chosen_policy))
        if chosen_namespace:
            params.append(("namespace", chosen_namespace))
        params.extend(("capability", c) for c in capability_list(capabilities))
        if model:
            params.append(("model", model))
        if session:
            params.append(("session", session))
        if explain:
            params.append(("explain", "true"))
        if not lease:
            params.append(("lease", "false"))
        if stream:
            params.append(("stream", "true"))
        return params

    def report_body(self, lease_id: str | None, outcome: Outcome | str, provider: str | None,
                    namespace: str | None, policy: str | None, latency_ms: float | None,
                    status_code: int | None, retry_after_seconds: float | None,
                    input_tokens: int | None, output_tokens: int | None,
                    response: Any = None, ttft_ms: float | None = None) -> dict[str, Any]:
        """The report's JSON body. ``response``: the provider's answer (or the SDK error
        carrying it), whose rate-limit headers go along for the router to read."""
        if lease_id is None and provider is None:
            raise ValueError("report() needs a lease_id, or a provider (and its namespace)")
        body: dict[str, Any] = {"outcome": Outcome(outcome).value}
        # With a lease, the provider (when known) goes too: a replica that does not hold the
        # lease still applies the outcome instead of answering 404.
        optional: dict[str, Any] = {
            "leaseId": lease_id,
            "provider": provider,
            "namespace": (namespace or self.namespace) if provider is not None else None,
            "policy": (policy or self.policy) if provider is not None else None,
            "latencyMs": latency_ms, "ttftMs": ttft_ms, "statusCode": status_code,
            "retryAfterSeconds": retry_after_seconds,
            "inputTokens": input_tokens, "outputTokens": output_tokens,
            "rateLimitHeaders": rate_limit_headers(response) if response is not None else None,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        return body

    @staticmethod
    def listing_params(namespace: str | None) -> dict[str, str]:
        return {"namespace": namespace} if namespace else {}

    @staticmethod
    def json_of(response: httpx.Response) -> Any:
        if not response.is_success:
            raise error_from_response(response)
        try:
            return response.json()
        except ValueError as error:
            raise RouterError("InvalidResponse", f"the router answered HTTP "
                              f"{response.status_code} with a body that is not JSON",
                              None, response.status_code) from error

    @staticmethod
    def route_of(response: httpx.Response) -> Route:
        data = Requests.json_of(response)
        try:
            return Route.from_wire(data)
        except (ValueError, TypeError, AttributeError) as error:
            raise RouterError("InvalidResponse", f"unexpected route answer: {error}", None,
                              response.status_code) from error

    @staticmethod
    def items_of(response: httpx.Response, key: str) -> list[dict[str, Any]]:
        data = Requests.json_of(response)
        if isinstance(data, Mapping):
            data = data.get(key, data.get("items", []))
        if not isinstance(data, list):
            raise RouterError("InvalidResponse", f"expected a list of {key}", None,
                              response.status_code)
        return [dict(item) for item in data if isinstance(item, Mapping)]


class CallBase:
    """A routed call in progress; see ``RouterClient.call``. Shared by the sync and async
    flavours."""

    def __init__(self) -> None:
        self.route: Route | None = None
        self._started = 0.0
        self._explicit: tuple[Outcome, int | None, float | None] | None = None
        self._input_tokens: int | None = None
        self._output_tokens: int | None = None
        self.outcome: Outcome | None = None
        """The outcome that was reported, once the block has exited."""
        self.report_error: Exception | None = None
        """Why reporting failed, if it did (reporting never raises out of the block)."""
        self.elapsed_ms: float | None = None
        self.ttft_ms: float | None = None
        """Milliseconds from the route to ``first_token()``: reported as the time to first
        token."""
        self._response: Any = None

    def observe(self, response: Any) -> None:
        """Hand over the provider's answer (an httpx response, an SDK raw response: anything
        with ``.headers``) so that its rate-limit headers are reported with the outcome. An
        SDK error raised out of the block is read the same way without this."""
        self._response = response

    @property
    def provider(self) -> RouteProvider:
        """The provider to call: ``.api_base`` and ``.model`` go straight into an SDK."""
        if self.route is None:
            raise RuntimeError("the call has not been routed yet: use it in a with block")
        return self.route.provider

    @property
    def lease_id(self) -> str | None:
        return self.route.lease_id if self.route is not None else None

    def rate_limited(self, retry_after: float | None = None, status_code: int = 429) -> None:
        """Report the call as rate limited (with the provider's Retry-After, in seconds)."""
        self._explicit = (Outcome.RATE_LIMITED, status_code, retry_after)

    def failed(self, outcome: Outcome | str = Outcome.ERROR,
               status_code: int | None = None) -> None:
        """Report a failure although the block exits normally (the error was handled)."""
        self._explicit = (Outcome(outcome), status_code, None)

    def first_token(self) -> None:
        """Mark that the first chunk of a streamed answer arrived; call it from the loop over
        the stream (only the first call counts). The time since the route is reported as the
        call's time to first token."""
        if self.ttft_ms is None and self.route is not None:
            self.ttft_ms = round((time.perf_counter() - self._started) * 1000.0, 3)

    def tokens(self, input: int = 0, output: int = 0) -> None:
        """Token counts to report, for spend, budgets and TPM limits."""
        self._input_tokens, self._output_tokens = int(input), int(output)

    def _begin(self, route: Route) -> None:
        self.route = route
        self._started = time.perf_counter()

    def _report_kwargs(self, error: BaseException | None) -> dict[str, Any] | None:
        """The report for the block's end; None when nothing should be reported (a
        cancellation or interrupt is not the provider's doing: the lease expires instead)."""
        assert self.route is not None
        self.elapsed_ms = (time.perf_counter() - self._started) * 1000.0
        if self._explicit is not None:
            outcome, status, retry = self._explicit
        elif error is None:
            outcome, status, retry = Outcome.SUCCESS, None, None
        elif not isinstance(error, Exception):
            log.debug("call to %s interrupted by %s; not reported", self.route.provider.name,
                      type(error).__name__)
            return None
        else:
            verdict = classify(error)
            outcome, status, retry = (verdict.outcome, verdict.status_code,
                                      verdict.retry_after_seconds)
        self.outcome = outcome
        route = self.route
        return {
            "lease_id": route.lease_id,
            "outcome": outcome,
            "provider": route.provider.name,
            "namespace": route.provider.namespace,
            "policy": route.policy,
            "latency_ms": round(self.elapsed_ms, 3),
            "ttft_ms": self.ttft_ms,
            "status_code": status,
            "retry_after_seconds": retry,
            "input_tokens": self._input_tokens,
            "output_tokens": self._output_tokens,
            "response": self._response if self._response is not None else error,
        }

    def _report_failed(self, error: Exception) -> None:
        self.report_error = error
        log.warning("could not report the outcome of a call to %s: %s",
                    self.route.provider.name if self.route else "?", error)
