"""Turning an exception raised around a provider call into the outcome to report.

Workloads call providers with httpx, the ``openai`` SDK, requests or aiohttp; the router needs
to know only whether it was a timeout, a 429 (and for how long to back off), or another error.
This is done by duck typing, so no SDK is imported: an exception with ``status_code`` or a
``response`` carrying one (httpx.HTTPStatusError, openai.APIStatusError, requests.HTTPError)
gives the status and the ``Retry-After`` header; timeout classes are recognised by type or by
name (openai.APITimeoutError, requests.Timeout). The ``__cause__`` chain is followed, so a
workload's own exception raised ``from`` the HTTP error is classified by its cause.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from provider_router.client._types import Outcome

_TIMEOUT_STATUSES = frozenset({408, 504})

RATE_LIMIT_HEADER_PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-")
"""The OpenAI and Anthropic rate-limit headers. Only these are forwarded to the router, which
parses them (the client stays free of server code; the router has one parser for reports and
proxied answers alike)."""
MAX_FORWARDED_HEADERS = 32


@dataclass(frozen=True, slots=True)
class Classified:
    outcome: Outcome
    status_code: int | None = None
    retry_after_seconds: float | None = None
    rate_limit_headers: dict[str, str] | None = None


def rate_limit_headers(source: Any) -> dict[str, str] | None:
    """The rate-limit headers of a provider's answer: ``source`` is a response (httpx,
    requests, an SDK's raw response: anything with ``.headers``), a headers mapping, or an
    exception carrying a response (an SDK's 429 error), whose ``__cause__`` chain is
    followed. None if there are none."""
    seen: set[int] = set()
    current: Any = source
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, BaseException):
            headers = _status_and_headers(current)[1]
            found = _pick(headers) if headers is not None else None
            if found:
                return found
            current = current.__cause__
            continue
        headers = current if isinstance(current, Mapping) else getattr(current, "headers", None)
        return _pick(headers) if headers is not None else None
    return None


def _pick(headers: Any) -> dict[str, str] | None:
    try:
        items = list(headers.items())
    except Exception:
        return None
    found = {str(k).lower(): str(v) for k, v in items
             if str(k).lower().startswith(RATE_LIMIT_HEADER_PREFIXES)}
    return dict(list(found.items())[:MAX_FORWARDED_HEADERS]) or None


def parse_retry_after(headers: Mapping[str, str] | Any) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or an HTTP date) or ``retry-after-ms``."""
    try:
        millis = headers.get("retry-after-ms")
        value = headers.get("retry-after")
    except Exception:
        return None
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000.0)
        except (TypeError, ValueError):
            pass
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        pass
    try:
        when = email.utils.parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _status_and_headers(error: BaseException) -> tuple[int | None, Any]:
    response: Any = None
    try:
        response = getattr(error, "response", None)
    except Exception:  # httpx raises RuntimeError for a request/response not set
        response = None
    status = getattr(error, "status_code", None)
    if not isinstance(status, int) and response is not None:
        status = getattr(response, "status_code", None) or getattr(response, "status", None)
    headers = getattr(response, "headers", None) if response is not None else None
    if headers is None:
        headers = getattr(error, "headers", None)
    return (status if isinstance(status, int) else None), headers


def _is_timeout(error: BaseException) -> bool:
    if isinstance(error, TimeoutError | httpx.TimeoutException):
        return True
    return any("Timeout" in cls.__name__ for cls in type(error).__mro__)


def classify(error: BaseException) -> Classified:
    """The outcome to report for ``error``; see the module docstring."""
    seen: set[int] = set()
    current: BaseException | None = error
    fallback: Classified | None = None
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        status, headers = _status_and_headers(current)
        if status == 429:
            retry = parse_retry_after(headers) if headers is not None else None
            if retry is None:
                explicit = getattr(current, "retry_after", None)
                retry = float(explicit) if isinstance(explicit, int | float) else None
            return Classified(Outcome.RATE_LIMITED, 429, retry, _pick(headers)
                              if headers is not None else None)
        if _is_timeout(current) or status in _TIMEOUT_STATUSES:
            return Classified(Outcome.TIMEOUT, status)
        if status is not None and fallback is None:
            fallback = Classified(Outcome.ERROR, status,
                                  rate_limit_headers=_pick(headers) if headers is not None
                                  else None)
        current = current.__cause__
    return fallback or Classified(Outcome.ERROR)
