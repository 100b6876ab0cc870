"""The seam through which the route API asks "who is calling, and may they use this policy?".

The service does not know how callers are identified: Kubernetes tokens, API keys or nobody at
all are implementations of ``Access`` that live in their own package and are handed to
``RouteService``. The question comes in two steps, because a request that names no namespace
uses the caller's own: first *who* (``identify``, which gives a ``Caller`` with its namespace),
then *may they* use the policy that namespace leads to (``check``). Each step answers from what
is already known (a cached review, a key table) so that the common case costs no I/O; only when
it cannot does the handler await its slow half (``authenticate``, ``review``), which may call
the API server.
"""

from __future__ import annotations

from typing import Final, Protocol

from provider_router.service._http import Request


class Caller(Protocol):
    """Who a request comes from, as far as routing cares."""

    @property
    def namespace(self) -> str | None:
        """The caller's own namespace (a ServiceAccount's, an API key Secret's), or None for
        a caller that has none (a user that is not a ServiceAccount, an open router)."""
        ...


class Access(Protocol):
    """Decides who the caller of a request is and whether it may use a policy."""

    @property
    def open(self) -> bool:
        """True when every caller may use every policy: handlers skip the question."""
        ...

    def identify(self, request: Request) -> Caller | None:
        """Who is calling, without I/O: None when ``authenticate`` must find out.

        Raises ``ApiError`` (401) when the credential is missing or known to be refused.
        """
        ...

    async def authenticate(self, request: Request) -> Caller:
        """Who is calling, with I/O if need be. Raises ``ApiError`` (401, 503)."""
        ...

    def check(self, caller: Caller, namespace: str, policy: str) -> bool:
        """May ``caller`` use policy ``namespace/policy``, without I/O: True when allowed,
        False when ``review`` must decide. Raises ``ApiError`` (403) when refused on what is
        known now."""
        ...

    async def review(self, caller: Caller, namespace: str, policy: str) -> None:
        """Decide, with I/O if need be: return when allowed, raise ``ApiError`` (403, 503)
        otherwise. Never lets a caller in because the decision could not be made."""
        ...


class Anonymous:
    """A caller nobody identified: it has no namespace."""

    __slots__ = ()
    namespace: Final[None] = None


ANONYMOUS: Final = Anonymous()


class OpenAccess:
    """Everybody may use every policy (``--auth none``); callers have no namespace."""

    open = True

    def identify(self, request: Request) -> Caller:
        return ANONYMOUS

    async def authenticate(self, request: Request) -> Caller:
        return ANONYMOUS

    def check(self, caller: Caller, namespace: str, policy: str) -> bool:
        return True

    async def review(self, caller: Caller, namespace: str, policy: str) -> None:
        return None


__all__ = ["ANONYMOUS", "Access", "Anonymous", "Caller", "OpenAccess"]
