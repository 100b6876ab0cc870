"""``RouterClient``: the blocking client for workloads (httpx.Client underneath)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

import httpx

from provider_router.client._auth import make_auth
from provider_router.client._common import CallBase, Requests, default_url
from provider_router.client._errors import RouterError, error_from_transport
from provider_router.client._types import Outcome, Route


class RouterClient:
    """Ask a running router where to send a request, and tell it how the request went.

    >>> with RouterClient("http://127.0.0.1:8080") as router:
    ...     with router.call(capabilities=["chat"]) as call:
    ...         reply = openai.OpenAI(base_url=call.provider.api_base).chat.completions.create(
    ...             model=call.provider.model, messages=[...])
    ...         call.tokens(reply.usage.prompt_tokens, reply.usage.completion_tokens)
    """

    def __init__(self, base_url: str | None = None, *, namespace: str | None = None,
                 policy: str | None = None, timeout: float = 5.0,
                 transport: httpx.BaseTransport | None = None,
                 headers: Mapping[str, str] | None = None,
                 api_key: str | None = None,
                 token_file: str | os.PathLike[str] | bool | None = True) -> None:
        """``base_url`` defaults to ``$PROVIDER_ROUTER_URL`` or ``http://127.0.0.1:8080``;
        ``namespace``/``policy`` are defaults for every request; ``transport`` is for tests.

        Credential: ``api_key`` (or ``$PROVIDER_ROUTER_API_KEY``) for a router with
        ``--auth keys``; else the token in ``token_file`` (default ``True``: the projected
        token at ``/var/run/secrets/provider-router/token`` or ``$PROVIDER_ROUTER_TOKEN_FILE``),
        read again whenever the kubelet rotates it, and nothing when there is no such file.
        ``token_file=None`` sends no credential."""
        self.base_url = (base_url or default_url()).rstrip("/")
        self._requests = Requests(namespace, policy)
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout,
                                  transport=transport, headers=dict(headers or {}),
                                  auth=make_auth(api_key, token_file))

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise error_from_transport(error, self.base_url) from error

    def route(self, policy: str | None = None, namespace: str | None = None,
              capabilities: str | Iterable[str] = (), model: str | None = None,
              session: str | None = None, explain: bool = False,
              lease: bool = True, stream: bool = False) -> Route:
        """Where to send a request; ``lease=False`` for a look that needs no report.
        ``stream=True`` for a call that streams: Latency policies then rank by time to first
        token.

        Raises ``NoProviderAvailableError`` (503, with reasons), ``NotFoundError`` (unknown
        policy), ``BadRequestError`` or ``RouterUnavailableError``."""
        params = self._requests.route_params(policy, namespace, capabilities, model, session,
                                             explain, lease, stream)
        return Requests.route_of(self._send("GET", "/v1/route", params=params))

    def report(self, lease_id: str | None = None, outcome: Outcome | str = Outcome.SUCCESS, *,
               provider: str | None = None, namespace: str | None = None,
               policy: str | None = None, latency_ms: float | None = None,
               status_code: int | None = None, retry_after_seconds: float | None = None,
               input_tokens: int | None = None,
               output_tokens: int | None = None,
               response: Any = None, ttft_ms: float | None = None) -> dict[str, Any]:
        """Report a call's outcome, by lease (which releases it) or by provider and namespace.

        ``ttft_ms``: for a streamed call, milliseconds until its first chunk arrived; Latency
        policies rank streamed routes by it.

        ``response``: the provider's answer, or the SDK error that carried it (a 429); its
        ``x-ratelimit-*`` / ``anthropic-ratelimit-*`` headers go along, so the router learns
        the provider's own remaining requests and reset."""
        body = self._requests.report_body(lease_id, outcome, provider, namespace, policy,
                                          latency_ms, status_code, retry_after_seconds,
                                          input_tokens, output_tokens, response, ttft_ms)
        data = Requests.json_of(self._send("POST", "/v1/report", json=body))
        return dict(data) if isinstance(data, Mapping) else {"result": data}

    def providers(self, namespace: str | None = None) -> list[dict[str, Any]]:
        """The live provider table: health, circuit, load, spend (never secret values)."""
        response = self._send("GET", "/v1/providers", params=Requests.listing_params(namespace))
        return Requests.items_of(response, "providers")

    def policies(self, namespace: str | None = None) -> list[dict[str, Any]]:
        response = self._send("GET", "/v1/policies", params=Requests.listing_params(namespace))
        return Requests.items_of(response, "policies")

    def ready(self) -> bool:
        """True when the router answers ``/readyz`` with 2xx."""
        try:
            return self._http.get("/readyz").is_success
        except httpx.HTTPError:
            return False

    def call(self, capabilities: str | Iterable[str] = (), *, policy: str | None = None,
             namespace: str | None = None, model: str | None = None,
             session: str | None = None, stream: bool = False) -> Call:
        """A context manager that routes on enter and reports the outcome on exit.

        ``stream=True`` for a streamed call: the route asks for it (Latency policies rank
        streamed routes by time to first token), and ``call.first_token()``, called when the
        first chunk arrives, has that time reported with the outcome."""
        return Call(self, policy=policy, namespace=namespace, capabilities=capabilities,
                    model=model, session=session, stream=stream)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RouterClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class Call(CallBase):
    """Routes on ``__enter__``; on ``__exit__`` reports success, or the outcome the exception
    implies (``timeout``, ``rate_limited`` with Retry-After for an HTTP 429, else ``error``),
    with the block's latency. Exceptions are never swallowed, and reporting never raises."""

    def __init__(self, client: RouterClient, **route_args: Any) -> None:
        super().__init__()
        self._client = client
        self._route_args = route_args

    def __enter__(self) -> Call:
        self._begin(self._client.route(**self._route_args))
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        kwargs = self._report_kwargs(exc)
        if kwargs is None:
            return
        try:
            self._client.report(**kwargs)
        except (RouterError, ValueError) as error:
            self._report_failed(error)
