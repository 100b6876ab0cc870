"""A provider's credential: from its Secret to the request headers for that provider alone.

The prober and the proxy both call providers on the router's behalf, so both resolve the
credential here: one place decides how a missing or unreadable Secret is handled, what it
logs (the provider and the error's type, never a value) and which headers each wire format
takes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from provider_router.api import ApiFormat, LLMProviderSpec, SecretKeyRef

log = logging.getLogger(__name__)

ANTHROPIC_VERSION = "2023-06-01"

CredentialLookup = Callable[[str, SecretKeyRef], str | None]
"""``credential_for(namespace, secret_ref)``: the secret value, or None if there is none."""


def resolve_credential(lookup: CredentialLookup | None, namespace: str, name: str,
                       spec: LLMProviderSpec) -> str | None:
    """The credential of provider ``namespace/name``, or None when it has none or it cannot
    be read (logged without the value)."""
    ref = spec.credentials_secret_ref
    if ref is None or lookup is None:
        return None
    try:
        return lookup(namespace, ref)
    except Exception as error:
        log.warning("provider %s/%s: cannot resolve its credential (%s)", namespace, name,
                    type(error).__name__)
        return None


def auth_headers(api_format: ApiFormat, credential: str | None) -> dict[str, str]:
    """The headers that carry ``credential`` in ``api_format``'s convention."""
    if not credential:
        return {}
    if api_format is ApiFormat.ANTHROPIC:
        return {"x-api-key": credential, "anthropic-version": ANTHROPIC_VERSION}
    return {"Authorization": f"Bearer {credential}"}


__all__ = ["ANTHROPIC_VERSION", "CredentialLookup", "auth_headers", "resolve_credential"]
