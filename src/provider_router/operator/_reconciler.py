"""Turns watch events for LLMProviders, RoutingPolicies and Secrets into the routing table.

Kopf delivers every event, the initial listing included; this module validates each object
with the same pydantic models that generate the CRDs, resolves Secret references, and applies
the result to the table at once, so a ``kubectl apply`` changes routing on the next request.
It also knows when the table holds every object that existed at start-up (readiness).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import ValidationError

from provider_router.api import LLMProvider, RoutingPolicy, SecretKeyRef
from provider_router.engine import Health, RoutingTable
from provider_router.operator._conditions import Acceptance
from provider_router.operator._kube import KubeClient, ObjectRef, decode_secret_data

log = logging.getLogger(__name__)

Key = tuple[str, str]
M = TypeVar("M", LLMProvider, RoutingPolicy)


@dataclass
class Tracked:
    """What the operator knows of one custom resource."""

    ref: ObjectRef
    generation: int | None
    status: dict[str, Any]
    acceptance: Acceptance
    secret: Key | None = None
    labels: dict[str, str] = field(default_factory=dict)
    provider: LLMProvider | None = None


def describe_validation_error(error: ValidationError) -> str:
    parts = []
    for problem in error.errors()[:5]:
        where = ".".join(str(p) for p in problem["loc"])
        parts.append(f"{where}: {problem['msg']}")
    return "; ".join(parts)


def _validated(model: type[M], body: Mapping[str, Any], tracked: Tracked) -> M | None:
    """The resource parsed with the API types, or None with ``InvalidSpec`` recorded."""
    try:
        return model.model_validate({"metadata": body.get("metadata", {}),
                                     "spec": body.get("spec") or {}})
    except ValidationError as error:
        tracked.acceptance = Acceptance(False, "InvalidSpec", describe_validation_error(error))
        return None


def _health_from_status(status: Mapping[str, Any]) -> tuple[Health, str, str] | None:
    for condition in status.get("conditions") or ():
        if condition.get("type") != "Healthy":
            continue
        reason, message = condition.get("reason", ""), condition.get("message", "")
        match condition.get("status"), reason:
            case "True", _:
                return Health.HEALTHY, reason, message
            case "False", "Unauthorized":
                return Health.UNAUTHORIZED, reason, message
            case "False", _:
                return Health.UNHEALTHY, reason, message
    return None


class Reconciler:
    def __init__(self, table: RoutingTable, kube: KubeClient) -> None:
        self.table = table
        self.kube = kube
        self.providers: dict[Key, Tracked] = {}
        self.policies: dict[Key, Tracked] = {}
        self._secrets: dict[Key, dict[str, str]] = {}
        self._refs: dict[Key, SecretKeyRef] = {}
        self._awaited: set[str] | None = None
        self.adopt_health = True
        """Take health from status written elsewhere; the leader turns this off once it probes."""

    # -- readiness -----------------------------------------------------------------------------

    def expect(self, uids: set[str]) -> None:
        """Objects listed at start-up: readiness waits until each has been seen."""
        seen = {t.ref.uid for t in (*self.providers.values(), *self.policies.values())}
        self._awaited = uids - seen

    def synced(self) -> bool:
        return self._awaited is not None and not self._awaited

    def _seen(self, uid: str | None) -> None:
        if self._awaited is not None and uid is not None:
            self._awaited.discard(uid)

    # -- events --------------------------------------------------------------------------------

    async def provider_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        key = self._key_of(body)
        if event_type == "DELETED":
            self.providers.pop(key, None)
            self._refs.pop(key, None)
            self.table.remove_provider(*key)
            return
        tracked = self._track(body, key, "LLMProvider", "llmproviders", self.providers)
        resource = _validated(LLMProvider, body, tracked)
        if resource is None:
            self._refs.pop(key, None)
            self.table.remove_provider(*key)
            return
        tracked.provider = resource
        secret_ref = resource.spec.credentials_secret_ref
        if secret_ref is not None:
            self._refs[key] = secret_ref
            tracked.secret = (key[0], secret_ref.name)
            tracked.acceptance = await self._resolve(key[0], secret_ref)
        else:
            self._refs.pop(key, None)
        if not tracked.acceptance.accepted:
            self.table.remove_provider(*key)
            return
        self._admit(key, resource)
        # Until a probe of our own has run, the last written verdict stands: a restart neither
        # forgets an outage nor rewrites status that is still true.
        if self.adopt_health or self.table.provider(*key).health is Health.UNKNOWN:
            restored = _health_from_status(tracked.status)
            if restored is not None:
                self.table.restore_health(key[0], key[1], *restored)
        # Likewise the models it listed: a model requirement routes right after a restart.
        models = tracked.status.get("models")
        if isinstance(models, list) and not self.table.provider(*key).discovered_models:
            self.table.record_models(key[0], key[1], tuple(m for m in models
                                                           if isinstance(m, str)))

    async def policy_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        key = self._key_of(body)
        if event_type == "DELETED":
            self.policies.pop(key, None)
            self.table.remove_policy(*key)
            return
        tracked = self._track(body, key, "RoutingPolicy", "routingpolicies", self.policies)
        resource = _validated(RoutingPolicy, body, tracked)
        if resource is None:
            self.table.remove_policy(*key)
            return
        self.table.upsert_policy(key[0], key[1], resource.spec, resource.metadata.generation)

    def _key_of(self, body: Mapping[str, Any]) -> Key:
        """The object's key; marks it seen for readiness."""
        metadata = body.get("metadata", {})
        self._seen(metadata.get("uid"))
        return metadata.get("namespace", "default"), metadata.get("name", "")

    @staticmethod
    def _track(body: Mapping[str, Any], key: Key, kind: str, plural: str,
               store: dict[Key, Tracked]) -> Tracked:
        metadata = body.get("metadata", {})
        tracked = Tracked(ObjectRef(kind, plural, key[0], key[1], metadata.get("uid")),
                          metadata.get("generation"), dict(body.get("status") or {}),
                          Acceptance(True), labels=dict(metadata.get("labels") or {}))
        store[key] = tracked
        return tracked

    def secret_is_referenced(self, namespace: str, name: str) -> bool:
        return any(k[0] == namespace and r.name == name for k, r in self._refs.items())

    async def secret_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        metadata = body.get("metadata", {})
        key: Key = (metadata.get("namespace", "default"), metadata.get("name", ""))
        if event_type == "DELETED":
            self._secrets.pop(key, None)
        else:
            self._secrets[key] = decode_secret_data(dict(body.get("data") or {}),
                                                    dict(body.get("stringData") or {}))
        for provider_key, tracked in list(self.providers.items()):
            if tracked.secret == key:
                await self._recheck(provider_key)

    async def _recheck(self, key: Key) -> None:
        """Re-evaluate a provider whose Secret changed, from what we know of its body."""
        tracked = self.providers[key]
        secret_ref = self._refs.get(key)
        if secret_ref is None:
            return
        tracked.acceptance = await self._resolve(key[0], secret_ref, refresh=False)
        if not tracked.acceptance.accepted:
            self.table.remove_provider(*key)
        elif tracked.provider is not None:
            self._admit(key, tracked.provider)

    def _admit(self, key: Key, resource: LLMProvider) -> None:
        self.table.upsert_provider(key[0], key[1], resource.spec, resource.metadata.labels,
                                   resource.metadata.generation)

    async def _resolve(self, namespace: str, ref: SecretKeyRef,
                       refresh: bool = True) -> Acceptance:
        data = self._secrets.get((namespace, ref.name))
        if data is None and refresh:
            data = await self.kube.read_secret(namespace, ref.name)
            if data is not None:
                self._secrets[(namespace, ref.name)] = data
        if data is None:
            return Acceptance(False, "SecretNotFound",
                              f"Secret {namespace}/{ref.name} does not exist")
        if ref.key not in data:
            return Acceptance(False, "SecretKeyNotFound",
                              f"Secret {namespace}/{ref.name} has no key {ref.key!r}")
        return Acceptance(True, "Valid", "spec is valid and its Secret resolved")

    def credential_for(self, namespace: str, ref: SecretKeyRef) -> str | None:
        """A credential for a provider's probes: never logged, never in status."""
        return self._secrets.get((namespace, ref.name), {}).get(ref.key)

    def providers_using(self, namespace: str, secret: str) -> list[Key]:
        return [k for k, t in self.providers.items() if t.secret == (namespace, secret)]
