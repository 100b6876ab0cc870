"""``AsyncRouterClient``: the asyncio client for workloads (httpx.AsyncClient underneath)."""

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


class AsyncRouterClient:
    """``RouterClient`` for asyncio code: the same methods, awaited, and ``async with``."""

    def __init__(self, base_url: str | None = None, *, namespace: str | None = None,
                 policy: str | None = None, timeout: float = 5.0,
                 transport: httpx.AsyncBaseTransport | None = None,
                 headers: Mapping[str, str] | None = None,
                 api_key: str | None = None,
                 token_file: str | os.PathLike[str] | bool | None = True) -> None:
        self.base_url = (base_url or default_url()).rstrip("/")
        self._requests = Requests(namespace, policy)
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout,
                                       transport=transport, headers=dict(headers or {}),
                                  auth=make_auth(api_key, token_file))

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise error_from_transport(error, self.base_url) from error

    async def route(self, policy: str | None = None, namespace: str | None = None,
                    capabilities: str | Iterable[str] = (), model: str | None = None,
                    session: str | None = None, explain: bool = False,
                    lease: bool = True, stream: bool = False) -> Route:
        params = self._requests.route_params(policy, namespace, capabilities, model, session,
                                             explain, lease, stream)
        return Requests.route_of(await self._send("GET", "/v1/route", params=params))

    async def report(self, lease_id: str | None = None,
                     outcome: Outcome | str = Outcome.SUCCESS, *, provider: str | None = None,
                     namespace: str | None = None, policy: str | None = None,
                     latency_ms: float | None = None, status_code: int | None = None,
                     retry_after_seconds: float | None = None, input_tokens: int | None = None,
                     output_tokens: int | None = None,
                     response: Any = None, ttft_ms: float | None = None) -> dict[str, Any]:
        body = self._requests.report_body(lease_id, outcome, provider, namespace, policy,
                                          latency_ms, status_code, retry_after_seconds,
                                          input_tokens, output_tokens, response, ttft_ms)
        data = Requests.json_of(await self._send("POST", "/v1/report", json=body))
        return dict(data) if isinstance(data, Mapping) else {"result": data}

    async def providers(self, namespace: str | None = None) -> list[dict[str, Any]]:
        response = await self._send("GET", "/v1/providers",
                                    params=Requests.listing_params(namespace))
        return Requests.items_of(response, "providers")

    async def policies(self, namespace: str | None = None) -> list[dict[str, Any]]:
        response = await self._send("GET", "/v1/policies",
                                    params=Requests.listing_params(namespace))
        return Requests.items_of(response, "policies")

    async def ready(self) -> bool:
        try:
            return (await self._http.get("/readyz")).is_success
        except httpx.HTTPError:
            return False

    def call(self, capabilities: str | Iterable[str] = (), *, policy: str | None = None,
             namespace: str | None = None, model: str | None = None,
             session: str | None = None, stream: bool = False) -> AsyncCall:
        """``async with client.call(...) as call:``; see ``RouterClient.call``."""
        return AsyncCall(self, policy=policy, namespace=namespace, capabilities=capabilities,
                         model=model, session=session, stream=stream)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncRouterClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()


class AsyncCall(CallBase):
    """The async twin of ``Call``. A cancelled block is not reported (not the provider's
    doing); its lease expires on the router after the lease TTL."""

    def __init__(self, client: AsyncRouterClient, **route_args: Any) -> None:
        super().__init__()
        self._client = client
        self._route_args = route_args

    async def __aenter__(self) -> AsyncCall:
        self._begin(await self._client.route(**self._route_args))
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        kwargs = self._report_kwargs(exc)
        if kwargs is None:
            return
        try:
            await self._client.report(**kwargs)
        except (RouterError, ValueError) as error:
            self._report_failed(error)
