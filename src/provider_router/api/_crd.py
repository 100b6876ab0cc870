"""Generate the ``apiextensions.k8s.io/v1`` CustomResourceDefinitions from the API models.

Why: the pydantic models in this package are the single source of truth for the API, as
kubebuilder's Go types are for a Go operator. The CRD YAML under ``crds/`` is derived from them
and never edited by hand, so the API server and the operator cannot disagree about a field.

Pydantic emits JSON Schema (draft 2020-12); the API server wants a *structural* OpenAPI v3.0
schema. The differences are translated here, recursively and driven by the schema itself:

* ``$ref``/``$defs`` are inlined (the API server resolves no references);
* ``Optional[X]`` (``anyOf: [X, {type: null}]``) becomes plain ``X``: optional means "not
  required", and leaving ``nullable`` off makes the API server drop a sent ``null`` instead of
  storing it (a model may still ask for ``nullable`` through ``json_schema_extra``);
* ``exclusiveMinimum: n`` becomes ``minimum: n, exclusiveMinimum: true`` (v3.0 form);
* ``additionalProperties: false`` (``extra="forbid"``) is dropped, since structural schemas prune
  unknown fields anyway; ``additionalProperties: true`` becomes preserve-unknown-fields;
* key constraints on maps (``patternProperties``, ``propertyNames``) are not expressible, so only
  the value schema is kept and pydantic alone checks the keys;
* ``default_factory`` defaults are emitted too, a nested model's as ``{}`` plus whatever differs
  from its own defaults, so that the API server fills in the nested defaults itself.

Anything else that the API server could not take is refused with ``UnsupportedSchemaError``, so a
model change that cannot be expressed fails the tests instead of shipping a CRD that differs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import yaml
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import core_schema

from provider_router.api._meta import KubeModel
from provider_router.api.llmprovider import LLMProvider
from provider_router.api.routingpolicy import RoutingPolicy

Schema = dict[str, Any]

HEADER = "# Generated from provider_router.api by 'provider-router crds'. Do not edit.\n"

# Schema keywords the API server understands and that pass through unchanged.
_PASSTHROUGH = frozenset({
    "description", "type", "format", "enum", "nullable",
    "minimum", "maximum", "multipleOf", "minLength", "maxLength", "pattern",
    "minItems", "maxItems", "minProperties", "maxProperties", "required", "example",
})
# Keywords that carry nothing the API server needs.
_DROPPED = frozenset({"title", "propertyNames", "examples", "deprecated", "readOnly", "writeOnly"})
# Output order of the keywords in every schema node, so the YAML does not depend on the order
# pydantic happens to emit them in; anything not listed follows, alphabetically.
_KEY_ORDER = (
    "description", "type", "format", "enum", "default", "nullable",
    "minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum", "multipleOf",
    "minLength", "maxLength", "pattern", "minItems", "maxItems", "minProperties", "maxProperties",
    "items", "properties", "additionalProperties", "required",
)
_KEY_RANK = {key: rank for rank, key in enumerate(_KEY_ORDER)}
_TYPE_META_DESCRIPTIONS = {
    "apiVersion": "APIVersion defines the versioned schema of this representation of an object. "
                  "Servers should convert recognized schemas to the latest internal value, and "
                  "may reject unrecognized values.",
    "kind": "Kind is a string value representing the REST resource this object represents. "
            "Servers may infer this from the endpoint the client submits requests to. "
            "Cannot be updated. In CamelCase.",
}


class UnsupportedSchemaError(ValueError):
    """A model produced JSON Schema that has no faithful structural OpenAPI v3.0 equivalent."""


@dataclass(frozen=True)
class PrinterColumn:
    """One ``additionalPrinterColumns`` entry: what ``kubectl get`` shows."""

    name: str
    type: str
    json_path: str
    description: str = ""
    priority: int = 0

    def to_dict(self) -> dict[str, Any]:
        column: dict[str, Any] = {"name": self.name, "type": self.type, "jsonPath": self.json_path}
        if self.description:
            column["description"] = self.description
        if self.priority:
            column["priority"] = self.priority
        return column


@dataclass(frozen=True)
class KindInfo:
    """What the models do not say about a kind: its resource names and ``kubectl get`` columns."""

    plural: str
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    printer_columns: tuple[PrinterColumn, ...] = ()


def _condition_column(condition_type: str) -> PrinterColumn:
    return PrinterColumn(
        condition_type, "string", f'.status.conditions[?(@.type=="{condition_type}")].status',
        f"Status of the {condition_type} condition.")


_AGE = PrinterColumn("Age", "date", ".metadata.creationTimestamp")
_CATEGORIES = ("llm", "zoey")

KINDS: Mapping[type[KubeModel], KindInfo] = {
    LLMProvider: KindInfo(
        plural="llmproviders", short_names=("llmp",), categories=_CATEGORIES,
        printer_columns=(
            _condition_column("Ready"),
            _condition_column("Healthy"),
            PrinterColumn("Latency-ms", "number", ".status.health.latencyMs",
                          "Latency of the last successful probe, in milliseconds."),
            PrinterColumn("Circuit", "string", ".status.health.circuit",
                          "Circuit breaker state: Closed, Open or HalfOpen."),
            _AGE,
            PrinterColumn("Base-URL", "string", ".spec.baseURL", "Root URL of the back-end.",
                          priority=1),
            PrinterColumn("Saturated", "string",
                          '.status.conditions[?(@.type=="Saturated")].status',
                          "Whether its own load figures say it is full (loadMetrics only).",
                          priority=1),
        )),
    RoutingPolicy: KindInfo(
        plural="routingpolicies", short_names=("rpol",), categories=_CATEGORIES,
        printer_columns=(
            PrinterColumn("Strategy", "string", ".spec.strategy", "How a provider is picked."),
            PrinterColumn("Providers", "integer", ".status.providers.selected",
                          "Providers the selector matches."),
            PrinterColumn("Available", "integer", ".status.providers.available",
                          "Selected providers that can take requests now."),
            _condition_column("Ready"),
            _AGE,
            PrinterColumn("Healthy", "integer", ".status.providers.healthy",
                          "Selected providers whose probes pass.", priority=1),
        )),
}


class _CrdSchemaGenerator(GenerateJsonSchema):
    """Pydantic's generator, but emitting ``default_factory`` defaults as well."""

    def get_default_value(self, schema: core_schema.WithDefaultSchema) -> Any:
        factory = schema.get("default_factory")
        if factory is not None and not schema.get("default_factory_takes_data"):
            value = cast(Callable[[], Any], factory)()
        else:
            value = super().get_default_value(schema)
        if isinstance(value, BaseModel):
            # Only what differs from the nested defaults: the API server applies those itself.
            # A default computed from other fields has no schema default; the model fills it.
            derived = {field.alias or name for name, field in type(value).model_fields.items()
                       if field.default_factory_takes_validated_data}
            dumped = value.model_dump(mode="json", by_alias=True, exclude_defaults=True)
            return {k: v for k, v in dumped.items() if k not in derived}
        return value


def _ordered(node: Schema) -> Schema:
    return dict(sorted(node.items(), key=lambda kv: (_KEY_RANK.get(kv[0], len(_KEY_RANK)), kv[0])))


def _deref(node: Schema, defs: Mapping[str, Schema], path: str) -> Schema:
    """``node`` with its ``$ref`` replaced by the definition; the node's own keys win."""
    ref = node["$ref"]
    prefix = "#/$defs/"
    if not ref.startswith(prefix) or ref[len(prefix):] not in defs:
        raise UnsupportedSchemaError(f"{path}: cannot resolve $ref {ref!r}")
    siblings = {k: v for k, v in node.items() if k != "$ref"}
    return {**defs[ref[len(prefix):]], **siblings}


def _unwrap_optional(node: Schema, path: str) -> Schema:
    """``anyOf: [X, {type: null}]`` (and one-element ``anyOf``/``allOf``) as plain ``X``."""
    key = "anyOf" if "anyOf" in node else "allOf"
    branches = [b for b in node[key] if b != {"type": "null"}]
    if len(branches) != 1 or (key == "allOf" and len(node[key]) != 1):
        raise UnsupportedSchemaError(f"{path}: unions ({key}) are not structural; model it as "
                                     "one object type with optional fields instead")
    siblings = {k: v for k, v in node.items() if k != key}
    return {**branches[0], **siblings}


def _flatten(node: Schema, defs: Mapping[str, Schema], path: str,
             ancestors: tuple[str, ...]) -> tuple[Schema, tuple[str, ...]]:
    """Resolve ``$ref`` and Optional wrappers until the node is a plain schema.

    Returns the plain schema and ``ancestors`` plus the references followed, so that a type
    containing itself (which no CRD schema can express) is refused instead of recursing forever.
    """
    while "$ref" in node or "anyOf" in node or "allOf" in node:
        if "$ref" in node:
            ref = node["$ref"]
            if ref in ancestors:
                raise UnsupportedSchemaError(f"{path}: recursive type {ref!r} cannot be a CRD "
                                             "schema")
            ancestors = (*ancestors, ref)
            node = _deref(node, defs, path)
        else:
            node = _unwrap_optional(node, path)
    if "oneOf" in node or "not" in node:
        raise UnsupportedSchemaError(f"{path}: oneOf/not are not structural")
    return node, ancestors


def _convert_keyword(key: str, value: Any, out: Schema, defs: Mapping[str, Schema],
                     path: str, ancestors: tuple[str, ...]) -> None:
    """Translate one keyword of a schema node into ``out``."""
    if key in _DROPPED or (key == "default" and value is None):
        return
    if key in _PASSTHROUGH or key == "default" or key.startswith("x-kubernetes-"):
        out[key] = value
    elif key == "const":
        out["enum"] = [value]
    elif key == "properties":
        out[key] = {name: _convert(sub, defs, f"{path}.{name}", ancestors)
                    for name, sub in value.items()}
    elif key == "items":
        out[key] = _convert(value, defs, f"{path}[]", ancestors)
    elif key == "additionalProperties":
        if isinstance(value, dict):
            out[key] = _convert(value, defs, f"{path}{{}}", ancestors)
        elif value:
            out["x-kubernetes-preserve-unknown-fields"] = True
    elif key == "patternProperties":
        if len(value) != 1:
            raise UnsupportedSchemaError(f"{path}: patternProperties with {len(value)} patterns")
        (value_schema,) = value.values()
        out["additionalProperties"] = _convert(value_schema, defs, f"{path}{{}}", ancestors)
    elif key in ("exclusiveMinimum", "exclusiveMaximum"):
        if isinstance(value, bool):  # already in OpenAPI v3.0 form
            out[key] = value
        else:
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
    elif key == "uniqueItems":
        if value:
            out.setdefault("x-kubernetes-list-type", "set")
    else:
        raise UnsupportedSchemaError(f"{path}: keyword {key!r} is not supported by CRD schemas")


def _convert(node: Schema, defs: Mapping[str, Schema], path: str,
             ancestors: tuple[str, ...] = ()) -> Schema:
    """The structural OpenAPI v3.0 equivalent of one pydantic JSON Schema node."""
    flat, inner = _flatten(node, defs, path, ancestors)
    out: Schema = {}
    for key, value in flat.items():
        _convert_keyword(key, value, out, defs, path, inner)
    if "type" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
        raise UnsupportedSchemaError(f"{path}: no type (Any is not structural)")
    return _ordered(out)


def _kind_identity(kind_model: type[KubeModel]) -> tuple[str, str, str]:
    """``(group, version, kind)`` from the model's ``apiVersion`` and ``kind`` defaults."""
    api_version = kind_model.model_fields["api_version"].default
    kind = kind_model.model_fields["kind"].default
    if not isinstance(api_version, str) or "/" not in api_version or not isinstance(kind, str):
        raise UnsupportedSchemaError(f"{kind_model.__name__}: needs apiVersion and kind defaults")
    group, version = api_version.split("/", 1)
    return group, version, kind


def openapi_schema(kind_model: type[KubeModel]) -> Schema:
    """The ``openAPIV3Schema`` for a kind: type meta, opaque metadata, converted spec/status."""
    raw = kind_model.model_json_schema(by_alias=True, mode="validation",
                                       schema_generator=_CrdSchemaGenerator)
    defs: Mapping[str, Schema] = raw.get("$defs", {})
    type_meta = ("apiVersion", "kind", "metadata")
    properties: Schema = {
        "apiVersion": {"description": _TYPE_META_DESCRIPTIONS["apiVersion"], "type": "string"},
        "kind": {"description": _TYPE_META_DESCRIPTIONS["kind"], "type": "string"},
        "metadata": {"type": "object"},
    }
    for name, sub in raw["properties"].items():
        if name not in type_meta:
            properties[name] = _convert(sub, defs, f".{name}")
    if "status" in properties:
        # The operator may write more than the model knows of, at any depth (a newer operator
        # during a rollback, say); never let the server prune any of it.
        properties["status"] = _preserve_objects(properties["status"])
    schema: Schema = {"type": "object", "properties": properties}
    if "description" in raw:
        schema["description"] = raw["description"]
    required = [name for name in raw.get("required", []) if name not in type_meta]
    if required:
        schema["required"] = required
    return _ordered(schema)


def _preserve_objects(schema: Schema) -> Schema:
    """``schema`` with every object node, itself included, preserving unknown fields."""
    out = dict(schema)
    if "properties" in out:
        out["properties"] = {k: _preserve_objects(v) for k, v in out["properties"].items()}
    if isinstance(out.get("items"), Mapping):
        out["items"] = _preserve_objects(out["items"])
    if out.get("type") == "object" and "additionalProperties" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    return _ordered(out)


def crd_for(kind_model: type[KubeModel], info: KindInfo | None = None) -> dict[str, Any]:
    """The CustomResourceDefinition for one kind; ``info`` defaults to the entry in ``KINDS``."""
    if info is None:
        if kind_model not in KINDS:
            raise KeyError(f"{kind_model.__name__} is not in KINDS; pass its KindInfo")
        info = KINDS[kind_model]
    group, version, kind = _kind_identity(kind_model)
    names: dict[str, Any] = {
        "kind": kind,
        "listKind": f"{kind}List",
        "plural": info.plural,
        "singular": kind.lower(),
    }
    if info.short_names:
        names["shortNames"] = list(info.short_names)
    if info.categories:
        names["categories"] = list(info.categories)
    served: dict[str, Any] = {
        "name": version,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": openapi_schema(kind_model)},
        "subresources": {"status": {}},
    }
    if info.printer_columns:
        served["additionalPrinterColumns"] = [c.to_dict() for c in info.printer_columns]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{info.plural}.{group}"},
        "spec": {
            "group": group,
            "names": names,
            "scope": "Namespaced",
            "versions": [served],
        },
    }


def all_crds() -> list[dict[str, Any]]:
    """The CRDs of every kind in ``KINDS``, in a fixed order."""
    return [crd_for(kind_model) for kind_model in KINDS]


class _CrdDumper(yaml.SafeDumper):
    """Block style throughout; multi-line strings (docstrings) as ``|`` literals."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_CrdDumper.add_representer(str, _represent_str)


def render_yaml(crd: Mapping[str, Any]) -> str:
    """The YAML document for one CRD, header comment included; same input, same bytes."""
    body = yaml.dump(dict(crd), Dumper=_CrdDumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=100)
    return HEADER + body


def crd_filename(crd: Mapping[str, Any]) -> str:
    """``<group>_<plural>.yaml``, the name controller-gen would give the file."""
    spec = crd["spec"]
    return f"{spec['group']}_{spec['names']['plural']}.yaml"


def write_crds(directory: Path, crds: Sequence[Mapping[str, Any]] | None = None) -> list[Path]:
    """Write every CRD (default: ``all_crds()``) into ``directory``; return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for crd in all_crds() if crds is None else crds:
        path = directory / crd_filename(crd)
        path.write_text(render_yaml(crd), encoding="utf-8")
        written.append(path)
    return written
