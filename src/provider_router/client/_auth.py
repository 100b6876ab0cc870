"""The credential a workload sends: its projected ServiceAccount token, or an API key.

In a cluster the kubelet writes a token for the router's audience into a projected volume and
replaces it before it expires, by writing a new directory and swapping a symlink. So the file
is looked at (one ``stat``) before every request and read again when it is a different file
or has changed; a workload never restarts to pick up a new token. Outside a cluster there is
no such file and nothing is sent, which is what a router with ``--auth none`` expects.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Generator
from pathlib import Path
from typing import Final

import httpx

log = logging.getLogger("provider_router.client")

DEFAULT_TOKEN_FILE: Final = "/var/run/secrets/provider-router/token"
"""Where the chart's README mounts the projected token (audience ``provider-router``)."""
TOKEN_FILE_ENV: Final = "PROVIDER_ROUTER_TOKEN_FILE"
API_KEY_ENV: Final = "PROVIDER_ROUTER_API_KEY"


def default_token_file() -> str:
    return os.environ.get(TOKEN_FILE_ENV) or DEFAULT_TOKEN_FILE


class TokenFile:
    """A token file that may rotate. ``token()`` is the current token, or None if there is no
    file (yet): the last token read is kept while a swap is half done."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._seen: tuple[int, int, int, int] | None = None
        self._token: str | None = None
        self.reads = 0

    def token(self) -> str | None:
        try:
            info = os.stat(self.path)  # follows the kubelet's symlinks to the real file
        except OSError:
            return self._token
        seen = (info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size)
        if seen != self._seen:
            try:
                text = self.path.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as error:
                log.warning("cannot read the token file %s: %s", self.path,
                            type(error).__name__)
                return self._token
            self.reads += 1
            self._seen = seen
            self._token = text or None
        return self._token


class BearerAuth(httpx.Auth):
    """Sends ``Authorization: Bearer`` with an API key, or with the token file's content."""

    def __init__(self, *, api_key: str | None = None, token_file: TokenFile | None = None) -> None:
        self._api_key = api_key
        self.token_file = token_file

    def credential(self) -> str | None:
        if self._api_key is not None:
            return self._api_key
        return self.token_file.token() if self.token_file is not None else None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        credential = self.credential()
        if credential is not None and "authorization" not in request.headers:
            request.headers["authorization"] = f"Bearer {credential}"
        yield request

    def __repr__(self) -> str:  # never the credential
        source = "api key" if self._api_key is not None else (
            f"token file {self.token_file.path}" if self.token_file else "nothing")
        return f"BearerAuth({source})"


def make_auth(api_key: str | None,
              token_file: str | os.PathLike[str] | bool | None) -> BearerAuth | None:
    """``api_key`` (or ``$PROVIDER_ROUTER_API_KEY``) wins; else ``token_file`` (True: the
    default path or ``$PROVIDER_ROUTER_TOKEN_FILE``; False or None: none)."""
    key = api_key if api_key is not None else os.environ.get(API_KEY_ENV) or None
    if key is not None:
        return BearerAuth(api_key=key)
    if token_file is None or token_file is False:
        return None
    path = default_token_file() if token_file is True else token_file
    return BearerAuth(token_file=TokenFile(path))
