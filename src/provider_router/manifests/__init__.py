"""LLMProvider, RoutingPolicy and Secret manifests from YAML, for running without a cluster.

``load_manifests(path)`` reads a file or a folder into a ``ManifestSet`` (validated by the same
models as the CRDs; errors name file, document and field), and ``apply_manifests(table, set)``
brings a ``RoutingTable`` in line with it as a diff, so reloads keep circuits and leases.
"""

from provider_router.manifests._apply import ApplyResult, apply_manifests
from provider_router.manifests._errors import ManifestError, Problem, field_path
from provider_router.manifests._load import (
    MANIFEST_SUFFIXES,
    ManifestSet,
    ResourceKey,
    Secret,
    Source,
    load_manifests,
    manifest_files,
    parse_manifests,
)

__all__ = [
    "MANIFEST_SUFFIXES",
    "ApplyResult",
    "ManifestError",
    "ManifestSet",
    "Problem",
    "ResourceKey",
    "Secret",
    "Source",
    "apply_manifests",
    "field_path",
    "load_manifests",
    "manifest_files",
    "parse_manifests",
]
