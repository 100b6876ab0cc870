"""The seam through which the route API asks "may this caller use this policy?".

The service does not know how callers are identified: Kubernetes tokens, API keys or nobody at
all are implementations of ``Access`` that live in their own package and are handed to
``RouteService``. The question is split in two so that the common case costs no I/O: ``check``
answers from what is already known (a cached review, a key table), and only when it cannot does
the handler await ``review``, which may call the API server.
"""

from __future__ import annotations

from typing import Protocol

from provider_router.service._http import Request


class Access(Protocol):
    """Decides whether the caller of ``request`` may use policy ``namespace/policy``."""

    @property
    def open(self) -> bool:
        """True when every caller may use every policy: handlers skip the question."""
        ...

    def check(self, request: Request, namespace: str, policy: str) -> bool:
        """Answer without I/O: True when allowed, False when ``review`` must decide.

        Raises ``ApiError`` (401, 403) when the caller is refused on what is known now.
        """
        ...

    async def review(self, request: Request, namespace: str, policy: str) -> None:
        """Decide, with I/O if need be: return when allowed, raise ``ApiError`` (401, 403,
        503) otherwise. Never lets a caller in because the decision could not be made."""
        ...


class OpenAccess:
    """Everybody may use every policy (``--auth none``)."""

    open = True

    def check(self, request: Request, namespace: str, policy: str) -> bool:
        return True

    async def review(self, request: Request, namespace: str, policy: str) -> None:
        return None


__all__ = ["Access", "OpenAccess"]
