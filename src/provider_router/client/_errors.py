"""Typed errors for route API failures, so callers branch on a class or a code, not on text.

Every failure a workload can meet while talking to the router is a ``RouterError``: the API's
own ``{error: {code, message, details}}`` answers (subclassed by status: 400, 404, 503), and
not reaching the router at all (``RouterUnavailableError``). ``except RouterError`` is enough
to fall back to a static provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx


class RouterError(Exception):
    """The router refused or failed a request. ``code`` is the API's error code."""

    def __init__(self, code: str, message: str, details: Any = None,
                 status_code: int | None = None) -> None:
        self.code = code
        self.message = message
        self.details = details
        self.status_code = status_code
        super().__init__(f"{code}: {message}" if code else message)


class BadRequestError(RouterError):
    """400: a field of the request is wrong; ``details`` names it."""


class NotFoundError(RouterError):
    """404: an unknown policy (or no default policy in the namespace), or an unknown lease."""


class NoProviderAvailableError(RouterError):
    """503: nothing is eligible. ``excluded`` counts the reasons over every selected provider;
    ``candidates`` explains the first of them (20 at most) one by one."""

    @property
    def excluded(self) -> dict[str, int]:
        details = self.details
        found = details.get("excluded") if isinstance(details, Mapping) else None
        if not isinstance(found, Mapping):
            return {}
        return {str(k): v for k, v in found.items() if isinstance(v, int)}

    @property
    def candidates(self) -> list[Mapping[str, Any]]:
        details = self.details
        if isinstance(details, Mapping):
            found = details.get("candidates")
            if isinstance(found, list):
                return [c for c in found if isinstance(c, Mapping)]
        if isinstance(details, list):
            return [c for c in details if isinstance(c, Mapping)]
        return []


class RouterUnavailableError(RouterError):
    """The router could not be reached, or did not answer in time, or could not check the
    credential now (code ``auth_unavailable``: its API server is unreachable)."""


class UnauthorizedError(RouterError):
    """401: no credential, or one the router does not accept (a token for another audience,
    an expired or unknown one, a wrong API key)."""


class ForbiddenError(RouterError):
    """403: the credential is valid but may not use the policy. ``details`` names the policy
    and the permission, and ``grant`` says how to give it."""

    @property
    def grant(self) -> str | None:
        """The ``kubectl create rolebinding ...`` that would allow it (Kubernetes auth)."""
        details = self.details
        found = details.get("grant") if isinstance(details, Mapping) else None
        return found if isinstance(found, str) else None


_BY_STATUS: dict[int, type[RouterError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    422: BadRequestError,
    503: NoProviderAvailableError,
}


def error_from_response(response: httpx.Response) -> RouterError:
    """The typed error for a non-2xx answer of the route API."""
    status = response.status_code
    cls = _BY_STATUS.get(status, RouterError)
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, Mapping) else None
    if isinstance(error, Mapping):
        if status == 503 and error.get("code") == "auth_unavailable":
            cls = RouterUnavailableError
        return cls(str(error.get("code") or f"HTTP{status}"),
                   str(error.get("message") or response.reason_phrase),
                   error.get("details"), status)
    text = response.text[:500] if response.content else response.reason_phrase
    if status == 503 and cls is NoProviderAvailableError and error is None:
        cls = RouterError  # a 503 from a proxy in front of the router, not the router's own
    return cls(f"HTTP{status}", text or f"HTTP {status}", None, status)


def error_from_transport(error: httpx.HTTPError, base_url: str) -> RouterUnavailableError:
    kind = "timed out" if isinstance(error, httpx.TimeoutException) else "unreachable"
    return RouterUnavailableError("RouterUnavailable",
                                  f"router at {base_url} {kind}: {error or type(error).__name__}")
