"""Reading the caller's credential from a request, and the one digest it is known by.

The credential itself is held only for as long as it takes to hash it (and, on a cache miss,
to send it to the API server); caches, logs and metrics see its SHA-256 digest at most.
"""

from __future__ import annotations

import hashlib
from typing import Final

from provider_router.access._errors import unauthenticated
from provider_router.service import ApiError, Request

_BEARER: Final = frozenset((b"Bearer ", b"bearer ", b"BEARER "))


def missing() -> ApiError:
    """A fresh error each time: a raised instance keeps every traceback it was raised with."""
    return unauthenticated("this endpoint needs a credential: send 'Authorization: Bearer "
                           "<credential>'", invalid=False)


def malformed() -> ApiError:
    return unauthenticated("the Authorization header is not 'Bearer <credential>'",
                           invalid=True)


def bearer(request: Request, *, api_key_header: bool = False) -> bytes:
    """The credential of ``Authorization: Bearer ...`` (or ``x-api-key`` when
    ``api_key_header``, as Anthropic's SDK sends it). Raises 401 if there is none."""
    value = request.headers.get(b"authorization")
    if value is not None and value[:7] in _BEARER:  # the common case, in few operations
        credential = value[7:]
        if credential and b" " not in credential:
            return credential
    if value is None:
        if api_key_header:
            key = request.headers.get(b"x-api-key")
            if key is not None and key.strip():
                return key.strip()
        raise missing()
    scheme, _, credential = value.strip().partition(b" ")
    credential = credential.strip()
    if scheme.lower() != b"bearer" or not credential or b" " in credential:
        raise malformed()
    return credential


def digest(credential: bytes) -> bytes:
    return hashlib.sha256(credential).digest()
