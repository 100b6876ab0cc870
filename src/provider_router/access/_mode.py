"""Which ``--auth`` mode a process runs with, and the warning an open router deserves.

The defaults live here, one function per command, so the rule "the operator checks identities
whenever it spends money (proxy mode)" is one line to change and one place to read.
"""

from __future__ import annotations

import logging
from enum import StrEnum

log = logging.getLogger(__name__)


class AuthMode(StrEnum):
    NONE = "none"
    """Everybody may use every policy (the router's behaviour before access control)."""
    KUBERNETES = "kubernetes"
    """ServiceAccount tokens, TokenReview and RBAC (SubjectAccessReview)."""
    KEYS = "keys"
    """API keys from Secrets among the manifests (standalone mode)."""


def operator_auth_mode(requested: str | None, *, proxy: bool = False) -> AuthMode:
    """``provider-router operator``: ``--auth`` if given, else ``kubernetes`` when the proxy
    is on (it spends money on the caller's behalf), else ``none``."""
    if requested:
        return AuthMode(requested)
    return AuthMode.KUBERNETES if proxy else AuthMode.NONE


def serve_auth_mode(requested: str | None, *, proxy: bool = False) -> AuthMode:
    """``provider-router serve``: ``--auth`` if given, else ``none`` (a laptop's router)."""
    del proxy  # standalone stays open unless asked: keys must first be written
    return AuthMode(requested) if requested else AuthMode.NONE


def warn_if_open(mode: AuthMode, *, proxy: bool) -> bool:
    """Log a warning when the proxy is served to anybody; True if it warned."""
    if mode is AuthMode.NONE and proxy:
        log.warning("--auth none with --proxy: anyone who can reach the router can spend "
                    "money on its providers; use --auth kubernetes (or keys)")
        return True
    return False
