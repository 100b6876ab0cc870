"""Proxied calls: route, call the provider with its credential, fail over, relay, report.

One call runs as one task of the route server. It resolves the policy (from the path's
``/proxy/NS/POLICY`` prefix, else the default policy of the caller's namespace, else of the
proxy's), asks the route server's access check, routes with the endpoint's wire format and the
body's model as requirements, then tries the decision's providers in order. An attempt that
fails before the answer has started (refused or broken connection, timeout, 5xx, 429) is
reported and the next provider is tried, while one deadline for the whole call lasts. Once the
answer has started (the status line of a non-streamed answer, the first event of a stream)
there is no retry: a stream that breaks is reported and ends with an error event the SDKs
raise.

Every attempt is reported to the engine like a workload's report would be (outcome, latency,
status, ``Retry-After``, tokens), so circuits, cooldowns, latency ranking, rate windows and
budgets learn from proxied traffic with no client code. A client that leaves cancels the
task; the attempt in flight is then closed and its lease released as a success without
latency or tokens (the provider did nothing wrong, and a lease must not wait for its TTL).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import inspect
import logging
import math
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Final

import orjson

from provider_router.engine import (
    WIRE_OPENAI,
    NoProviderAvailable,
    Outcome,
    OutcomeKind,
    PolicyState,
    ProviderUnavailable,
    RouteRequest,
    Target,
    UnknownLease,
    UnknownPolicy,
    UnknownProvider,
    parse_rate_limit_headers,
    wire_capability,
)
from provider_router.health import CredentialLookup, auth_headers, resolve_credential
from provider_router.proxy._formats import (
    ENDPOINTS,
    MAX_NAME_CHARS,
    PREFIX,
    Endpoint,
    error_body,
    shaped,
    stream_error_event,
)
from provider_router.proxy._metrics import Bound, ProxyMetrics
from provider_router.proxy._openapi import SCHEMAS, proxy_paths
from provider_router.proxy._options import ProxyOptions
from provider_router.proxy._upstream import (
    forwarded_headers,
    relayed_headers,
    stated_limits,
)
from provider_router.proxy._usage import EventRelay, Usage, ask_for_usage
from provider_router.service import (
    JSON,
    Answer,
    ApiError,
    Reply,
    Request,
    Response,
    RouteService,
    Stream,
    json_response,
    no_provider_available,
    unknown_policy,
)
from provider_router.upstream import Client, ConnectTimeout, UpstreamError, Url, parse_url
from provider_router.upstream import Response as Answered

log = logging.getLogger(__name__)

MAX_ERROR_BODY_BYTES: Final = 64 << 10
"""How much of a failed attempt's answer is kept, to relay if it is the last one."""
MAX_RETRY_AFTER_SECONDS: Final = 3600.0
CLIENT_CLOSED: Final = 499
"""The status reported for a call whose client left (nginx's convention)."""
_SSE: Final = "text/event-stream"
MAX_CACHED_URLS: Final = 4096


@dataclass(slots=True)
class _Call:
    """One parsed proxied request."""

    endpoint: Endpoint
    parsed: dict[str, Any]
    body: bytes
    model: str | None
    stream: bool
    strip_usage: bool
    """The router asked for stream usage that the client did not: edit it back out."""

    def body_for(self, model: str | None) -> bytes:
        """The body sent to a provider: as received, unless the router asked for usage or
        must name the model the route chose (the client named none)."""
        fill = self.model is None and model is not None
        if not (fill or self.strip_usage):
            return self.body
        if fill:
            self.parsed["model"] = model
        return orjson.dumps(self.parsed)


class _Failed:
    """An attempt that failed before its answer started: the answer to give if it is the
    last."""

    __slots__ = ("response",)

    def __init__(self, response: Response) -> None:
        self.response = response


class _Chunks:
    """A stream's body: the relay generator, and what to do if it is closed before it ever
    ran (closing an async generator that has not started runs none of its code)."""

    __slots__ = ("_abandon", "_chunks", "_started")

    def __init__(self, chunks: AsyncGenerator[bytes, None], abandon: Callable[[], None]
                 ) -> None:
        self._chunks = chunks
        self._abandon: Callable[[], None] | None = abandon
        self._started = False

    def __aiter__(self) -> _Chunks:
        return self

    async def __anext__(self) -> bytes:
        self._started = True
        return await self._chunks.__anext__()

    async def aclose(self) -> None:
        abandon, self._abandon = self._abandon, None
        if not self._started and abandon is not None:
            abandon()
        await self._chunks.aclose()


class Proxy:
    """The proxy endpoints on a ``RouteService``: ``mount()``, then ``await close()`` when
    the server has stopped."""

    def __init__(self, service: RouteService, *, credential_for: CredentialLookup | None,
                 options: ProxyOptions | None = None,
                 client: Client | None = None) -> None:
        self.service = service
        self.table = service.table
        self.options = options if options is not None else ProxyOptions()
        self.credential_for = credential_for
        self.metrics = ProxyMetrics(service.metrics.registry)
        self._client = client
        self._own_client = client is None
        self._urls: dict[tuple[str, str], Url] = {}

    def mount(self) -> None:
        """Serve the proxy paths at the root and under ``/proxy/NS/POLICY/``, and describe
        them in the server's ``/openapi.json``."""
        service, limit = self.service, self.options.max_body_bytes
        for path, endpoint in ENDPOINTS.items():
            service.add_route(path, endpoint.method, partial(self._root, endpoint))
            service.allow_body(path, limit)
            # The server's own refusals (405, 413) in the shape the path's SDK parses.
            service.shape_errors(path, _shape)
        service.add_prefix(PREFIX, self._prefixed)
        service.allow_body(PREFIX, limit, prefix=True)
        service.shape_errors(PREFIX, _shape, prefix=True)
        service.document(proxy_paths(), SCHEMAS)

    async def close(self) -> None:
        if self._own_client and self._client is not None:
            client, self._client = self._client, None
            await client.close()

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client(connect_seconds=self.options.connect_seconds)
        return self._client

    # -- paths --------------------------------------------------------------------------------

    def _root(self, endpoint: Endpoint, request: Request) -> Answer:
        return self._call(request, endpoint, None, None)

    def _prefixed(self, request: Request) -> Answer:
        parts, endpoint = _prefixed_endpoint(request.path)
        anthropic = endpoint is not None and endpoint.anthropic
        if (endpoint is None or not all(0 < len(p) <= MAX_NAME_CHARS for p in parts[:2])):
            return shaped(anthropic, ApiError(
                404, "not_found", f"no endpoint at {request.path[:200]}; proxied paths are "
                f"{PREFIX}NAMESPACE/POLICY{{{','.join(ENDPOINTS)}}}",
                {"path": request.path[:200]}))
        if request.method != endpoint.method:
            return shaped(anthropic, ApiError(
                405, "method_not_allowed", f"{request.method[:16]} is not allowed on "
                f"{request.path[:200]}; use {endpoint.method}", {"allow": [endpoint.method]},
                headers=((b"allow", endpoint.method.encode()),)))
        return self._call(request, endpoint, parts[0], parts[1])

    async def _call(self, request: Request, endpoint: Endpoint, namespace: str | None,
                    name: str | None) -> Reply:
        """One proxied request for policy ``namespace/name``; ``namespace`` None (the
        unprefixed paths): the default policy of the caller's namespace, else of the proxy's
        (``ProxyOptions.namespace``)."""
        try:
            if namespace is None:
                answer = self.service.guarded_for_caller(
                    request, None, self.options.namespace,
                    partial(self._then, request, endpoint))
            else:
                try:
                    policy = self.table.resolve_policy(namespace, name)
                except UnknownPolicy as error:
                    raise unknown_policy(error) from None
                answer = self.service.guarded(request, *policy.key,
                                              partial(self._then, request, endpoint, policy))
            if inspect.isawaitable(answer):
                return await answer
            return answer
        except ApiError as error:
            return shaped(endpoint.anthropic, error)

    def _then(self, request: Request, endpoint: Endpoint, policy: PolicyState) -> Answer:
        """What an allowed call does under ``policy``."""
        if endpoint.method == "GET":
            return self._models(policy)
        # The body is read after the access check: a refused caller learns nothing.
        return self._forward(request, endpoint, *policy.key)

    def _stated_limits(self, namespace: str, name: str,
                       headers: list[tuple[bytes, bytes]]) -> None:
        stated = stated_limits(headers)
        if not stated:
            return
        info = parse_rate_limit_headers(stated, now=time.time())
        if info is not None:
            with contextlib.suppress(UnknownProvider):  # removed while the call ran
                self.table.record_rate_limit(namespace, name, info)

    def _models(self, policy: PolicyState) -> Response:
        """``GET /v1/models``: the models the policy's OpenAI-format providers serve, as their
        specs list them or, for a spec that lists none, as their probes discovered."""
        owners: dict[str, str] = {}
        for key in sorted(policy.selected):
            try:
                state = self.table.provider(*key)
            except UnknownProvider:
                continue
            spec = state.spec
            if spec.disabled or wire_capability(spec.api_format) != WIRE_OPENAI:
                continue
            for model in sorted(state.models):
                owners.setdefault(model, key[1])
        return json_response({"object": "list", "data": [
            {"id": model, "object": "model", "created": 0, "owned_by": owner}
            for model, owner in sorted(owners.items())]})

    # -- calls --------------------------------------------------------------------------------

    async def _forward(self, request: Request, endpoint: Endpoint, namespace: str,
                       policy: str) -> Reply:
        call = _parse(request, endpoint)
        try:
            decision = self.table.route(RouteRequest(
                namespace=namespace, policy=policy, capabilities=(endpoint.wire,),
                model=call.model, stream=call.stream))
        except UnknownPolicy as error:
            raise unknown_policy(error) from None
        except NoProviderAvailable as error:
            self.service.metrics.count_unavailable(error.namespace, error.policy,
                                                   error.excluded)
            self.metrics.unrouted.labels(namespace, policy, "no_provider_available").inc()
            raise no_provider_available(error) from None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.deadline_seconds
        targets = (decision.target, *decision.fallbacks)
        failed: Response | None = None
        for index, target in enumerate(targets):
            if index and loop.time() >= deadline:
                break
            lease = decision.lease_id
            if index:
                try:  # a fallback's lease is taken as it is tried, and counts while it runs
                    lease = self.table.acquire(namespace, policy, target.provider.name)
                except (ProviderUnavailable, UnknownProvider, UnknownPolicy) as error:
                    log.info("proxy %s/%s: skipping fallback %s: %s", namespace, policy,
                             target.provider.name, error)
                    continue
            result = await self._attempt(request, call, namespace, policy, target, lease,
                                         deadline)
            if not isinstance(result, _Failed):
                return result
            failed = result.response
            if index + 1 < len(targets):
                log.info("proxy %s/%s: provider %s failed before its answer started (HTTP "
                         "%d); trying the next", namespace, policy, target.provider.name,
                         failed[0])
        assert failed is not None
        return failed

    async def _attempt(self, request: Request, call: _Call, namespace: str, policy: str,
                       target: Target, lease: str | None, deadline: float
                       ) -> Reply | _Failed:
        provider = target.provider
        name, anthropic = provider.name, call.endpoint.anthropic
        where = (b"x-router-provider", f"{namespace}/{name}".encode()), \
            (b"x-router-policy", f"{namespace}/{policy}".encode())
        report = partial(self._report, namespace, policy, name, lease)
        try:
            spec = self.table.provider(namespace, name).spec
        except UnknownProvider:
            return _Failed(_own_error(anthropic, 502, "provider_gone",
                                      f"provider {name} was removed", where))
        credential = resolve_credential(self.credential_for, namespace, name, spec)
        loop = asyncio.get_running_loop()
        started = loop.time()
        wait = max(min(self.options.first_byte_seconds, deadline - started), 0.001)
        response: Answered | None = None
        usage = Usage()
        try:
            headers = forwarded_headers(request.headers,
                                        auth_headers(spec.api_format, credential))
            url = self._url(provider.api_base, call.endpoint.suffix, request.query)
            async with asyncio.timeout(wait):
                response = await self.client.request(
                    b"POST", url, headers, call.body_for(target.model))
                status = response.status
                # What the provider says of its own limits counts before its status is
                # judged: a "0 left" excludes it for the next call, before it answers 429.
                self._stated_limits(namespace, name, response.headers)
                if status == 429 or status >= 500:
                    return await _refused(response, report, started, where)
                if call.stream and response.content_type == _SSE:
                    first = await response.read_chunk()
                else:
                    body = await response.read(self.options.max_upstream_body_bytes)
        except TimeoutError as error:
            _close(response)
            report(OutcomeKind.TIMEOUT, started, None, usage)
            said = (f"provider {name}: {error}" if isinstance(error, ConnectTimeout)
                    else f"provider {name} did not answer within {wait:.3g} s")
            return _Failed(_own_error(anthropic, 504, "upstream_timeout", said, where))
        except (UpstreamError, OSError, ValueError) as error:
            _close(response)
            report(OutcomeKind.ERROR, started, None, usage)
            return _Failed(_own_error(anthropic, 502, "upstream_unreachable",
                                      f"provider {name} failed: {type(error).__name__}",
                                      where))
        except asyncio.CancelledError:
            _close(response)
            report(OutcomeKind.SUCCESS, None, CLIENT_CLOSED, usage)
            raise
        first_at = loop.time()
        bound = self.metrics.bound(namespace, policy, name)
        bound.ttft.observe(first_at - started)
        answer_headers = (*relayed_headers(response.headers), *where)
        content_type = response.header(b"content-type") or JSON
        if not (call.stream and response.content_type == _SSE):
            response.release()
            usage.take_body(body)
            report(_judge(status), started, status, usage)
            return status, content_type, body, answer_headers
        report = partial(report, ttft=first_at - started)  # a stream's first chunk came
        relay = EventRelay(usage, call.strip_usage)
        bound.streams.inc()
        chunks = self._relay(response, relay, relay.feed(first) if first else b"", anthropic,
                             report, (namespace, policy, name), started)
        return Stream(status, content_type, answer_headers, _Chunks(chunks, partial(
            self._abandoned, response, bound, report, usage)), self.options.stall_seconds)

    @staticmethod
    def _abandoned(response: Answered, bound: Bound, report: Callable[..., None],
                   usage: Usage) -> None:
        """A stream whose client left before its body was asked for: what ``_relay``'s
        ``finally`` would have done."""
        response.close()
        bound.streams.dec()
        report(OutcomeKind.SUCCESS, None, CLIENT_CLOSED, usage)

    async def _relay(self, response: Answered, relay: EventRelay,
                     first: bytes, anthropic: bool, report: Callable[..., None],
                     labels: tuple[str, str, str], started: float
                     ) -> AsyncGenerator[bytes, None]:
        """The body of a stream that has started: chunks as they arrive, then its report."""
        namespace, policy, name = labels
        kind, status = OutcomeKind.SUCCESS, response.status
        idle = self.options.idle_seconds
        finished = False
        try:
            if first:
                yield first
            while True:
                try:
                    async with asyncio.timeout(idle):
                        chunk = await response.read_chunk()
                except TimeoutError:
                    kind = OutcomeKind.TIMEOUT
                    yield stream_error_event(anthropic, f"provider {name} sent nothing for "
                                             f"{idle:g} s; the stream was ended")
                    break
                except (UpstreamError, OSError, ValueError) as error:
                    kind = OutcomeKind.ERROR
                    yield stream_error_event(anthropic, f"provider {name} broke the stream: "
                                             f"{type(error).__name__}")
                    break
                if not chunk:
                    rest = relay.flush()
                    if rest:
                        yield rest
                    finished = True
                    break
                out = relay.feed(chunk)
                if out:
                    yield out
        except (GeneratorExit, asyncio.CancelledError):
            status = CLIENT_CLOSED  # the client left; the provider did nothing wrong
            raise
        finally:
            if finished:
                response.release()
            else:
                response.close()  # abandons the upstream connection: the provider stops
            self.metrics.bound(namespace, policy, name).streams.dec()
            report(kind, started if status != CLIENT_CLOSED else None, status, relay.usage)

    def _url(self, api_base: str, suffix: str, query: bytes) -> Url:
        """A provider endpoint's URL, parsed once (per provider and path) rather than per
        call."""
        key = (api_base, suffix)
        url = self._urls.get(key)
        if url is None:
            if len(self._urls) >= MAX_CACHED_URLS:
                self._urls.clear()
            url = self._urls[key] = parse_url(api_base + suffix)
        return url.with_query(query) if query else url

    def _report(self, namespace: str, policy: str, name: str, lease: str | None,
                kind: OutcomeKind, started: float | None, status: int | None, usage: Usage,
                retry_after: float | None = None, ttft: float | None = None) -> None:
        """Tell the engine how an attempt went, and count it."""
        elapsed = None if started is None else asyncio.get_running_loop().time() - started
        # UnknownProvider: removed meanwhile; UnknownLease: the lease expired long ago.
        with contextlib.suppress(UnknownLease, UnknownProvider):
            self.table.report(Outcome(
                kind, lease_id=lease, provider=name, namespace=namespace, policy=policy,
                latency_ms=None if elapsed is None else elapsed * 1000.0, status_code=status,
                retry_after_seconds=retry_after,
                ttft_ms=None if ttft is None else ttft * 1000.0, input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens))
        reports = self.service.metrics.reports
        key = (namespace, name, kind.value)
        reports[key] = reports.get(key, 0) + 1
        bound = self.metrics.bound(namespace, policy, name)
        bound.attempt(kind.value, elapsed)
        if usage.input_tokens:
            bound.input_tokens.inc(usage.input_tokens)
        if usage.output_tokens:
            bound.output_tokens.inc(usage.output_tokens)


def _prefixed_endpoint(path: str) -> tuple[list[str], Endpoint | None]:
    """A path under ``PREFIX`` as ``[namespace, policy, rest]``, and the endpoint it names."""
    parts = path[len(PREFIX):].split("/", 2)
    return parts, ENDPOINTS.get("/" + parts[2]) if len(parts) == 3 else None


def _shape(path: str, error: ApiError) -> Response:
    """One of the route server's own refusals on a proxy path, in that path's shape."""
    endpoint = ENDPOINTS.get(path)
    if endpoint is None and path.startswith(PREFIX):
        endpoint = _prefixed_endpoint(path)[1]
    return shaped(endpoint is not None and endpoint.anthropic, error)


def _parse(request: Request, endpoint: Endpoint) -> _Call:
    body = request.body
    if not body:
        raise ApiError(400, "invalid_json", "the body is required: a JSON object",
                       {"field": "body"})
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {error}",
                       {"field": "body"}) from None
    if not isinstance(parsed, dict):
        raise ApiError(400, "invalid_field", "body: must be a JSON object", {"field": "body"})
    model = parsed.get("model")
    if model is not None and (not isinstance(model, str) or not 0 < len(model) <= 253):
        raise ApiError(400, "invalid_field", "model: must be a string of 1 to 253 characters",
                       {"field": "model"})
    stream = parsed.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise ApiError(400, "invalid_field", "stream: must be true or false",
                       {"field": "stream"})
    strip = bool(stream) and endpoint.usage_in_stream and ask_for_usage(parsed)
    return _Call(endpoint, parsed, body, model, bool(stream), strip)


async def _refused(response: Answered, report: Callable[..., None],
                   started: float, where: tuple[tuple[bytes, bytes], ...]) -> _Failed:
    """A 429 or 5xx: reported (a 429 with its ``Retry-After``, which starts the provider's
    cooldown), and kept as the answer to give if no other provider does better."""
    status = response.status
    try:
        body = await response.read(MAX_ERROR_BODY_BYTES, truncate=True)
    finally:
        response.close()
    kind = OutcomeKind.RATE_LIMITED if status == 429 else OutcomeKind.ERROR
    stated = response.header(b"retry-after")
    report(kind, started, status, Usage(),
           _retry_after(None if stated is None else stated.decode("latin-1")))
    return _Failed((status, response.header(b"content-type") or JSON, body,
                    (*relayed_headers(response.headers), *where)))


def _close(response: Answered | None) -> None:
    if response is not None:
        response.close()


def _judge(status: int) -> OutcomeKind:
    """A provider's answer that is not retried, as an outcome: its own credential refused is
    its failure; a request it rightly refused is not."""
    return OutcomeKind.ERROR if status in (401, 403) else OutcomeKind.SUCCESS


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (a number, or an HTTP date), bounded; None if absent."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def _own_error(anthropic: bool, status: int, code: str, message: str,
               headers: tuple[tuple[bytes, bytes], ...]) -> Response:
    return status, JSON, error_body(anthropic, status, code, message), headers


__all__ = ["PREFIX", "Proxy"]
