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


def probe_url(spec: LLMProviderSpec) -> str:
    """The probe URL, without doubling a ``/v1`` that the base URL already ends in."""
    base = spec.base_url.rstrip("/")
    path = spec.probe_path
    if base.endswith("/v1") and (path == "/v1" or path.startswith("/v1/")):
        path = path[3:]
    return base + path


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
        return ProbeResult(True, latency_ms, "ProbeSucceeded", f"HTTP {code} from {url}")
    if code == 429:
        # Up and answering, merely throttled: not a health failure.
        return ProbeResult(True, latency_ms, "RateLimited", f"HTTP 429 from {url}")
    if code in (401, 403):
        return ProbeResult(False, latency_ms, "Unauthorized",
                           f"HTTP {code} from {url}: the credential was refused", True)
    reason = "ServerError" if code >= 500 else "UnexpectedStatus"
    return ProbeResult(False, latency_ms, reason, f"HTTP {code} from {url}")
