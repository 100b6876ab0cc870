"""One health probe of one provider over HTTP.

The verdict separates "the provider is down" from "our credential is wrong" (401/403), because
the fixes differ: one pages the provider's owner, the other the platform team. The credential is
sent only to the provider it belongs to and never appears in a verdict's message.
"""

from __future__ import annotations

import errno
import time

import httpx

from provider_router.api import LLMProviderSpec
from provider_router.engine import ProbeResult
from provider_router.health._credentials import auth_headers

USER_AGENT = "zoey-provider-router health-probe"


def probe_client(max_connections: int = 32) -> httpx.AsyncClient:
    """The HTTP client every probe should go through (the prober's and the embedded API's).

    Probes carry provider credentials, so this client ignores proxy environment variables
    (``HTTP_PROXY``, ``ALL_PROXY``, ``.netrc``: ``trust_env=False``) and never follows a redirect;
    either would hand the credential to a host other than the provider's."""
    return httpx.AsyncClient(
        limits=httpx.Limits(max_connections=max_connections,
                            max_keepalive_connections=max_connections),
        trust_env=False, follow_redirects=False, headers={"User-Agent": USER_AGENT})


def probe_url(spec: LLMProviderSpec) -> str:
    """The probe URL, without doubling a ``/v1`` that the base URL already ends in."""
    base = spec.base_url.rstrip("/")
    path = spec.probe_path
    if base.endswith("/v1") and (path == "/v1" or path.startswith("/v1/")):
        path = path[3:]
    return base + path


def models_in(body: object) -> tuple[str, ...] | None:
    """The model names in a models listing: OpenAI-style ``{"data": [{"id": ...}]}`` (OpenAI,
    Anthropic, vLLM and most compatible servers) or Ollama's ``{"models": [{"name": ...}]}``.
    None if ``body`` is no such listing (a custom health path, say)."""
    if not isinstance(body, dict):
        return None
    for key, field in (("data", "id"), ("models", "name")):
        entries = body.get(key)
        if isinstance(entries, list):
            return tuple(e[field] for e in entries
                         if isinstance(e, dict) and isinstance(e.get(field), str))
    return None


def _listed_models(response: httpx.Response) -> tuple[str, ...] | None:
    if "json" not in response.headers.get("content-type", ""):
        return None
    try:
        return models_in(response.json())
    except ValueError:
        return None


def _refused(error: BaseException) -> bool:
    """Whether a connect failure was a refusal, searching the exception chain: httpx reports
    "All connection attempts failed" and keeps the ``ConnectionRefusedError`` underneath."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError) or (
                isinstance(current, OSError) and current.errno == errno.ECONNREFUSED):
            return True
        current = current.__cause__ or current.__context__
    return "refused" in str(error).lower()


def _scrub(message: str, credential: str | None) -> str:
    return message.replace(credential, "***") if credential else message


async def probe(client: httpx.AsyncClient, spec: LLMProviderSpec,
                credential: str | None = None) -> ProbeResult:
    """GET the provider's probe path once and judge the answer."""
    url = probe_url(spec)
    timeout = float(spec.health_check.timeout_seconds)
    started = time.perf_counter()
    try:
        response = await client.get(url, headers=auth_headers(spec.api_format, credential),
                                    timeout=timeout)
    except httpx.TimeoutException:
        return ProbeResult(False, None, "Timeout", f"no answer from {url} within {timeout:g}s")
    except httpx.ConnectError as error:
        text = str(error) or type(error).__name__
        reason = "ConnectionRefused" if _refused(error) else "ConnectionFailed"
        if reason == "ConnectionRefused":
            text = "connection refused"
        return ProbeResult(False, None, reason, _scrub(f"cannot connect to {url}: {text}",
                                                       credential))
    except httpx.HTTPError as error:
        text = str(error) or type(error).__name__
        return ProbeResult(False, None, "ConnectionReset",
                           _scrub(f"{url} broke the connection: {text}", credential))
    latency_ms = (time.perf_counter() - started) * 1000.0
    code = response.status_code
    if 200 <= code < 300:
        return ProbeResult(True, latency_ms, "ProbeSucceeded", f"HTTP {code} from {url}",
                           models=_listed_models(response))
    if code == 429:
        # Up and answering, merely throttled: not a health failure.
        return ProbeResult(True, latency_ms, "RateLimited", f"HTTP 429 from {url}")
    if code in (401, 403):
        return ProbeResult(False, latency_ms, "Unauthorized",
                           f"HTTP {code} from {url}: the credential was refused", True)
    reason = "ServerError" if code >= 500 else "UnexpectedStatus"
    return ProbeResult(False, latency_ms, reason, f"HTTP {code} from {url}")
