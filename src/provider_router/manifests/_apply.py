"""Applying a ``ManifestSet`` to a ``RoutingTable`` as a diff.

A reload must not reset what the router has learned: open circuits, cooldowns, in-flight
leases, spend and measured latency all live in the table's provider state. So the table is
never rebuilt; resources that changed are upserted (the engine carries runtime state over to a
new spec of the same provider), vanished ones are removed, and unchanged ones are not touched.
"""

from __future__ import annotations

from dataclasses import dataclass

from provider_router.engine import RoutingTable
from provider_router.manifests._load import ManifestSet


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What a diff changed, as ``Kind namespace/name`` strings."""

    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    unchanged: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)

    def summary(self) -> str:
        parts = [f"{len(self.added)} added", f"{len(self.updated)} updated",
                 f"{len(self.removed)} removed", f"{self.unchanged} unchanged"]
        return ", ".join(parts)


def apply_manifests(table: RoutingTable, manifests: ManifestSet) -> ApplyResult:
    """Make the table's providers and policies those of ``manifests``, keeping runtime state.

    The table is assumed to be owned by the caller's manifests: anything in it that the set
    does not define is removed.
    """
    added: list[str] = []
    updated: list[str] = []
    removed: list[str] = []
    unchanged = 0
    known_providers = {s.key for s in table.providers()}
    known_policies = {p.key for p in table.policies()}

    for key in sorted(known_policies - manifests.policies.keys()):
        table.remove_policy(*key)
        removed.append(f"RoutingPolicy {key[0]}/{key[1]}")
    for key, provider in manifests.providers.items():
        meta = provider.metadata
        if table.upsert_provider(key[0], key[1], provider.spec, dict(meta.labels),
                                 meta.generation):
            (updated if key in known_providers else added).append(
                f"LLMProvider {key[0]}/{key[1]}")
        else:
            unchanged += 1
    for key, policy in manifests.policies.items():
        if table.upsert_policy(key[0], key[1], policy.spec, policy.metadata.generation):
            (updated if key in known_policies else added).append(
                f"RoutingPolicy {key[0]}/{key[1]}")
        else:
            unchanged += 1
    for key in sorted(known_providers - manifests.providers.keys()):
        table.remove_provider(*key)
        removed.append(f"LLMProvider {key[0]}/{key[1]}")
    return ApplyResult(tuple(added), tuple(updated), tuple(removed), unchanged)
