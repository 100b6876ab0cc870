"""``--auth keys``: API keys for standalone mode, from a Secret among the manifests.

Standalone mode has no API server to ask, so the manifests say who may use what::

    apiVersion: v1
    kind: Secret
    metadata:
      name: router-api-keys
      namespace: team-a
      labels:
        router.zoeyos.io/api-keys: "true"          # this Secret holds API keys
      annotations:
        router.zoeyos.io/policies.batch-jobs: "chat, team-b/embeddings"
        router.zoeyos.io/policies.ci: "*"
    stringData:
      batch-jobs: "<a long random key>"           # one data key per API key
      ci: "<another one>"

Each data key is one API key, named ``<namespace>/<secret>/<data key>`` in answers and logs
(its value never is). The Secret's namespace (``default`` when the manifest names none) is the
caller's namespace: requests that name no namespace use its default policy first. Its
annotation ``router.zoeyos.io/policies.<data key>`` lists the policies it may use, separated by
commas: ``name`` (in the Secret's namespace), ``namespace/name``, ``*`` (every policy of the
Secret's namespace) or ``namespace/*``. A key without that annotation may use nothing. Clients
send the key as ``Authorization: Bearer <key>`` (what the OpenAI SDK sends as its ``api_key``)
or ``x-api-key: <key>`` (Anthropic's).

Only SHA-256 digests of the keys are kept. A request's key is hashed and its digest compared
with ``hmac.compare_digest``, so neither the comparison's time nor a memory dump gives a key
away. The table is replaced whole on every reload of the manifests, so adding, rotating or
revoking a key takes effect like any other manifest change.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Protocol, cast

from provider_router.access._credentials import bearer, digest
from provider_router.access._errors import forbidden_by_key, unauthenticated
from provider_router.access._metrics import (
    ALLOWED,
    AUTHENTICATED,
    DENIED,
    INVALID,
    MISSING,
    AccessMetrics,
)
from provider_router.service import ApiError, Caller, Request

log = logging.getLogger(__name__)

KEYS_LABEL: Final = "router.zoeyos.io/api-keys"
POLICIES_ANNOTATION: Final = "router.zoeyos.io/policies."
"""Followed by the data key: ``router.zoeyos.io/policies.<data key>``."""
ANY: Final = "*"
_BUCKET: Final = 8
"""Digest bytes a key is filed under; the whole digest is then compared in constant time."""


class SecretLike(Protocol):
    """What a Secret of the manifests offers (``provider_router.manifests.Secret``)."""

    @property
    def namespace(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def data(self) -> Mapping[str, str]: ...
    @property
    def labels(self) -> Mapping[str, str]: ...
    @property
    def annotations(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class ApiKey:
    """One key, by name: ``grants`` holds ``(namespace, policy)`` pairs, ``policy`` ``*``
    for all of a namespace. The ``Caller`` of the ``Access`` protocol."""

    name: str
    annotation: str
    grants: frozenset[tuple[str, str]]
    namespace: str | None = None
    """The namespace of the Secret that holds the key: the caller's namespace, whose default
    policy serves the requests that name no namespace."""

    def allows(self, namespace: str, policy: str) -> bool:
        grants = self.grants
        return (namespace, policy) in grants or (namespace, ANY) in grants


def parse_grants(text: str, namespace: str) -> tuple[frozenset[tuple[str, str]], list[str]]:
    """The grants an annotation value lists, and the entries that are not valid."""
    grants: set[tuple[str, str]] = set()
    bad: list[str] = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        where, _, name = entry.rpartition("/")
        where = where or namespace
        if not name or "/" in where or (where == ANY):
            bad.append(entry)
            continue
        grants.add((where, name))
    return frozenset(grants), bad


def keys_from_secrets(secrets: Iterable[SecretLike]) -> tuple[list[tuple[bytes, ApiKey]],
                                                               list[str]]:
    """The ``(digest, key)`` pairs of every labelled Secret, and warnings (never a value)."""
    found: list[tuple[bytes, ApiKey]] = []
    warnings: list[str] = []
    for secret in secrets:
        if secret.labels.get(KEYS_LABEL) != "true":
            continue
        where = f"Secret {secret.namespace}/{secret.name}"
        for annotation in secret.annotations:
            if (annotation.startswith(POLICIES_ANNOTATION)
                    and annotation.removeprefix(POLICIES_ANNOTATION) not in secret.data):
                warnings.append(f"{where}: annotation {annotation} names no key of the Secret")
        for data_key, value in secret.data.items():
            annotation = POLICIES_ANNOTATION + data_key
            name = f"{secret.namespace}/{secret.name}/{data_key}"
            if not value.strip():
                warnings.append(f"{where}: key {data_key} is empty; ignored")
                continue
            grants, bad = parse_grants(secret.annotations.get(annotation, ""), secret.namespace)
            if bad:
                warnings.append(f"{where}: annotation {annotation} has invalid entries "
                                f"{bad}; use name, namespace/name, * or namespace/*")
            if not grants:
                warnings.append(f"{where}: key {data_key} may use no policy (annotate it "
                                f"with {annotation})")
            found.append((digest(value.strip().encode()),
                          ApiKey(name, annotation, grants, secret.namespace)))
    return found, warnings


class KeysAccess:
    """The ``Access`` of ``--auth keys``. ``load`` replaces the keys (on every reload)."""

    open = False

    def __init__(self, secrets: Iterable[SecretLike] | None = None, *,
                 metrics: AccessMetrics | None = None) -> None:
        self.metrics = metrics if metrics is not None else AccessMetrics("keys")
        self._keys: dict[bytes, list[tuple[bytes, ApiKey]]] = {}
        self.count = 0
        if secrets is not None:
            self.load(secrets)

    def load(self, secrets: Iterable[SecretLike]) -> list[str]:
        """Use the keys of ``secrets`` from now on; returns (and logs) the warnings."""
        found, warnings = keys_from_secrets(secrets)
        table: dict[bytes, list[tuple[bytes, ApiKey]]] = {}
        for key_digest, key in found:
            table.setdefault(key_digest[:_BUCKET], []).append((key_digest, key))
        self._keys = table
        self.count = len(found)
        for warning in warnings:
            log.warning("API keys: %s", warning)
        if not found:
            log.warning("API keys: no Secret labelled %s=true holds a key; every route and "
                        "report is refused (401)", KEYS_LABEL)
        return warnings

    def identify(self, request: Request) -> ApiKey:
        """The key the request presents; raises 401 when it presents none we know."""
        try:
            presented = bearer(request, api_key_header=True)
        except ApiError as error:
            self.metrics.authn[MISSING if error.details.get("reason") == "missing_credential"
                               else INVALID] += 1
            raise
        presented_digest = digest(presented)
        match: ApiKey | None = None
        for key_digest, key in self._keys.get(presented_digest[:_BUCKET], ()):
            if hmac.compare_digest(key_digest, presented_digest):
                match = key
        if match is None:
            self.metrics.authn[INVALID] += 1
            raise unauthenticated("the API key is not valid", invalid=True)
        self.metrics.authn[AUTHENTICATED] += 1
        return match

    async def authenticate(self, request: Request) -> Caller:
        return self.identify(request)  # everything is known: no I/O to wait for

    def check(self, caller: Caller, namespace: str, policy: str) -> bool:
        key = cast(ApiKey, caller)  # what ``identify`` returned
        if key.allows(namespace, policy):
            self.metrics.authz[ALLOWED] += 1
            return True
        self.metrics.authz[DENIED] += 1
        raise forbidden_by_key(key.name, namespace, policy, key.annotation)

    async def review(self, caller: Caller, namespace: str, policy: str) -> None:
        self.check(caller, namespace, policy)
