"""Reading LLMProvider, RoutingPolicy and Secret manifests from YAML files.

Standalone mode has no API server to validate what users write, so this module does that job
with the same pydantic models the CRDs are generated from: a manifest that ``kubectl apply``
would accept loads here, and one it would refuse fails here with the file, the document and the
field named. Every problem in a load is collected before failing, so one run shows them all.

Choices, and why:

* Kinds from other API groups (a Deployment or ConfigMap sitting in the same folder, as happens
  with kustomize trees) are skipped with a warning: they are not ours to judge. A kind that
  claims our group but is not one of ours (``LLMProvder``) is an error, because it is a typo
  that would otherwise silently drop a provider. ``v1 List`` documents are expanded.
* The same kind, namespace and name defined twice is an error that names both places: which
  one should win is not knowable.
* A provider's ``credentialsSecretRef`` must resolve to a Secret (and key) in its namespace; in
  standalone mode nothing else could supply it later, so failing at load is the useful answer.
* Folders are read recursively, ``*.yaml`` and ``*.yml`` only, sorted, skipping names that
  start with a dot. That last rule matters for Kubernetes ConfigMap volumes, whose
  ``..data`` directory mirrors every file and would otherwise double every resource.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from provider_router.api import GROUP, LLMProvider, ObjectMeta, RoutingPolicy, SecretKeyRef
from provider_router.manifests._errors import ManifestError, Problem, field_path

log = logging.getLogger(__name__)

MANIFEST_SUFFIXES = (".yaml", ".yml")

ResourceKey = tuple[str, str]
"""``(namespace, name)``."""

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class Source:
    """Where a resource was defined."""

    file: str
    document: int

    def __str__(self) -> str:
        return f"{self.file} document {self.document}"


@dataclass(frozen=True, eq=False)
class Secret:
    """A Secret's decoded values. ``repr`` shows the keys only, so logging one leaks nothing."""

    namespace: str
    name: str
    data: Mapping[str, str] = field(repr=False)
    labels: Mapping[str, str] = field(default_factory=dict, repr=False)
    annotations: Mapping[str, str] = field(default_factory=dict, repr=False)
    """Read by ``--auth keys``: the label marks a Secret of API keys, annotations grant them."""

    def __repr__(self) -> str:
        return f"Secret({self.namespace}/{self.name}, keys={sorted(self.data)})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return (self.namespace, self.name, dict(self.data), dict(self.labels),
                dict(self.annotations)) == (other.namespace, other.name, dict(other.data),
                                            dict(other.labels), dict(other.annotations))

    def __hash__(self) -> int:
        return hash((self.namespace, self.name))


@dataclass(frozen=True)
class ManifestSet:
    """Everything one load produced, keyed by ``(namespace, name)`` in load order."""

    providers: Mapping[ResourceKey, LLMProvider] = field(default_factory=dict)
    policies: Mapping[ResourceKey, RoutingPolicy] = field(default_factory=dict)
    secrets: Mapping[ResourceKey, Secret] = field(default_factory=dict, repr=False)
    sources: Mapping[tuple[str, str, str], Source] = field(default_factory=dict, repr=False)
    """``(kind, namespace, name)`` to where it was defined."""
    skipped: tuple[str, ...] = ()
    """Documents of other kinds that were ignored, as ``file: document N (Kind ns/name)``."""

    def credential_for(self, namespace: str, ref: SecretKeyRef) -> str | None:
        """The value ``ref`` names in ``namespace``, or None if there is none."""
        secret = self.secrets.get((namespace, ref.name))
        return None if secret is None else secret.data.get(ref.key)

    def source_of(self, kind: str, namespace: str, name: str) -> Source | None:
        return self.sources.get((kind, namespace, name))

    def __len__(self) -> int:
        return len(self.providers) + len(self.policies) + len(self.secrets)


class _SecretManifest(BaseModel):
    """The parts of a core/v1 Secret that matter here; other keys (``type``...) pass."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    api_version: Literal["v1"]
    kind: Literal["Secret"]
    metadata: ObjectMeta
    data: dict[Annotated[str, Field(pattern=r"^[-._a-zA-Z0-9]+$")], str | None] = Field(
        default_factory=dict)
    string_data: dict[Annotated[str, Field(pattern=r"^[-._a-zA-Z0-9]+$")], str] = Field(
        default_factory=dict)


_OUR_KINDS: dict[str, type[LLMProvider] | type[RoutingPolicy]] = {
    "LLMProvider": LLMProvider,
    "RoutingPolicy": RoutingPolicy,
}


def manifest_files(path: str | os.PathLike[str]) -> list[Path]:
    """The files a load of ``path`` reads: the file itself, or a folder's YAML files."""
    root = Path(path)
    if not root.is_dir():
        return [root]
    found: list[Path] = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        found.extend(Path(directory) / f for f in files
                     if not f.startswith(".") and f.endswith(MANIFEST_SUFFIXES))
    return sorted(found, key=lambda p: p.relative_to(root).parts)


def load_manifests(path: str | os.PathLike[str],
                   default_namespace: str = "default") -> ManifestSet:
    """Load a file or a folder of manifests; raises ``ManifestError`` naming every problem."""
    root = Path(path)
    if not root.exists():
        raise ManifestError([Problem(str(root), None, "no such file or directory")])
    texts: list[tuple[str, str]] = []
    problems: list[Problem] = []
    for file in manifest_files(root):
        try:
            texts.append((str(file), file.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as error:
            problems.append(Problem(str(file), None, f"cannot read: {error}"))
    return _build(texts, default_namespace, problems)


def parse_manifests(text: str, source: str = "<string>",
                    default_namespace: str = "default") -> ManifestSet:
    """Load manifests from YAML text; ``source`` names it in errors."""
    return _build([(source, text)], default_namespace, [])


@dataclass
class _Builder:
    default_namespace: str
    problems: list[Problem]
    providers: dict[ResourceKey, LLMProvider] = field(default_factory=dict)
    policies: dict[ResourceKey, RoutingPolicy] = field(default_factory=dict)
    secrets: dict[ResourceKey, Secret] = field(default_factory=dict)
    sources: dict[tuple[str, str, str], Source] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def add_document(self, file: str, index: int, doc: object, prefix: str = "") -> None:
        if doc is None:
            return  # an empty document, e.g. after a trailing ``---``
        if not isinstance(doc, dict):
            self.problems.append(Problem(file, index, "expected a mapping with apiVersion, "
                                         f"kind and metadata, got {type(doc).__name__}",
                                         prefix.rstrip(".") or None))
            return
        kind, api_version = doc.get("kind"), doc.get("apiVersion")
        meta = doc.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) else None
        namespace = (meta.get("namespace") if isinstance(meta, dict) else None) or (
            self.default_namespace)
        where: dict[str, Any] = {
            "kind": kind if isinstance(kind, str) else None,
            "namespace": namespace if isinstance(namespace, str) else None,
            "name": name if isinstance(name, str) else None}
        if not isinstance(kind, str) or not isinstance(api_version, str):
            missing = "kind" if not isinstance(kind, str) else "apiVersion"
            self.problems.append(Problem(file, index, "missing: every document needs "
                                         "apiVersion and kind", prefix + missing, **where))
            return
        if kind == "List" and api_version == "v1":
            items = doc.get("items") or []
            if not isinstance(items, list):
                self.problems.append(Problem(file, index, "expected a list", prefix + "items"))
                return
            for i, item in enumerate(items):
                self.add_document(file, index, item, f"{prefix}items[{i}].")
            return
        if isinstance(meta, dict) and "namespace" not in meta:
            doc = {**doc, "metadata": {**meta, "namespace": self.default_namespace}}
        if kind in _OUR_KINDS:
            self._add_ours(file, index, kind, doc, prefix, where)
        elif kind == "Secret" and api_version == "v1":
            self._add_secret(file, index, doc, prefix, where)
        elif api_version.split("/")[0] == GROUP:
            self.problems.append(Problem(
                file, index, f"unknown kind {kind!r} in {GROUP}; expected one of "
                f"{', '.join(sorted(_OUR_KINDS))}", prefix + "kind", **where))
        else:
            label = str(Problem(file, index, "", **where)).removesuffix(": ")
            log.warning("%s: skipping %s %s: not a kind the router reads", label,
                        api_version, kind)
            self.skipped.append(label)

    def _validation_problems(self, file: str, index: int, error: ValidationError, prefix: str,
                             where: dict[str, Any]) -> None:
        for item in error.errors(include_url=False, include_input=False):
            message = item["msg"].removeprefix("Value error, ")
            self.problems.append(Problem(file, index, message,
                                         prefix + field_path(item["loc"]) or None, **where))

    def _claim(self, file: str, index: int, kind: str, key: ResourceKey, prefix: str,
               where: dict[str, Any]) -> bool:
        previous = self.sources.get((kind, *key))
        if previous is not None:
            self.problems.append(Problem(
                file, index, f"duplicate: {kind} {key[0]}/{key[1]} is already defined in "
                f"{previous}", (prefix + "metadata.name"), **where))
            return False
        self.sources[(kind, *key)] = Source(file, index)
        return True

    def _add_ours(self, file: str, index: int, kind: str, doc: dict[str, Any], prefix: str,
                  where: dict[str, Any]) -> None:
        model = _OUR_KINDS[kind]
        try:
            resource = model.model_validate(doc)
        except ValidationError as error:
            self._validation_problems(file, index, error, prefix, where)
            return
        key = (resource.metadata.namespace, resource.metadata.name)
        if not self._claim(file, index, kind, key, prefix, where):
            return
        if isinstance(resource, LLMProvider):
            self.providers[key] = resource
        else:
            self.policies[key] = resource

    def _add_secret(self, file: str, index: int, doc: dict[str, Any], prefix: str,
                    where: dict[str, Any]) -> None:
        try:
            manifest = _SecretManifest.model_validate(doc)
        except ValidationError as error:
            self._validation_problems(file, index, error, prefix, where)
            return
        values: dict[str, str] = {}
        ok = True
        for key, encoded in manifest.data.items():
            try:
                raw = base64.b64decode("".join((encoded or "").split()), validate=True)
                values[key] = raw.decode("utf-8")
            except (binascii.Error, ValueError):
                # Deliberately no excerpt of the value: it is a secret.
                self.problems.append(Problem(file, index, "not valid base64 of UTF-8 text "
                                             "(use stringData for plain text)",
                                             f"{prefix}data.{key}", **where))
                ok = False
        values.update(manifest.string_data)  # as in Kubernetes, stringData wins
        if not ok:
            return
        key2 = (manifest.metadata.namespace, manifest.metadata.name)
        if self._claim(file, index, "Secret", key2, prefix, where):
            meta = manifest.metadata
            self.secrets[key2] = Secret(key2[0], key2[1], MappingProxyType(values),
                                        MappingProxyType(dict(meta.labels)),
                                        MappingProxyType(dict(meta.annotations)))

    def check_references(self) -> None:
        for key, provider in self.providers.items():
            ref = provider.spec.credentials_secret_ref
            if ref is None:
                continue
            secret = self.secrets.get((key[0], ref.name))
            if secret is not None and ref.key in secret.data:
                continue
            source = self.sources[("LLMProvider", *key)]
            what = (f"Secret {key[0]}/{ref.name} not found" if secret is None
                    else f"Secret {key[0]}/{ref.name} has no key {ref.key!r}")
            self.problems.append(Problem(source.file, source.document, what,
                                         "spec.credentialsSecretRef", "LLMProvider", *key))

    def warn_about_defaults(self) -> None:
        defaults: dict[str, list[str]] = {}
        for (namespace, name), policy in self.policies.items():
            if policy.spec.default:
                defaults.setdefault(namespace, []).append(name)
        for namespace, names in defaults.items():
            if len(names) > 1:
                log.warning("namespace %s has %d default RoutingPolicies (%s); requests that "
                            "name none use %s", namespace, len(names), ", ".join(sorted(names)),
                            sorted(names)[0])


def _documents(file: str, text: str, problems: list[Problem]) -> Iterator[tuple[int, object]]:
    index = 0
    try:
        for index, doc in enumerate(yaml.load_all(text, Loader=_Loader), start=1):
            yield index, doc
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        problems.append(Problem(file, index + 1, f"invalid YAML{at}: {problem}"))


def _build(texts: Iterable[tuple[str, str]], default_namespace: str,
           problems: list[Problem]) -> ManifestSet:
    builder = _Builder(default_namespace, problems)
    for file, text in texts:
        for index, doc in _documents(file, text, problems):
            builder.add_document(file, index, doc)
    builder.check_references()
    if problems:
        raise ManifestError(problems)
    builder.warn_about_defaults()
    return ManifestSet(providers=builder.providers, policies=builder.policies,
                       secrets=builder.secrets, sources=builder.sources,
                       skipped=tuple(builder.skipped))
