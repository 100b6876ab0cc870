"""Shared Kubernetes shapes: object metadata, label selectors and status conditions.

These mirror the upstream ``metav1`` types closely enough that the CRD schemas generated from
them read like any other Kubernetes API, and that selectors match exactly as the API server's do.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AliasGenerator, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

GROUP = "router.zoeyos.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"


class KubeModel(BaseModel):
    """Base for every API type: camelCase on the wire, snake_case in Python, unknown keys
    refused."""

    model_config = ConfigDict(
        alias_generator=AliasGenerator(alias=to_camel),
        populate_by_name=True,
        extra="forbid",
        use_enum_values=False,
        validate_default=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready form, as the API server stores it (aliases, no unset optionals)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


# A DNS-1123 subdomain prefix plus a name segment, as in metav1 label keys.
_LABEL_NAME = r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)"
_LABEL_KEY_RE = re.compile(rf"^([a-z0-9]([-a-z0-9.]{{0,251}}[a-z0-9])?/)?{_LABEL_NAME}$")
_LABEL_VALUE_RE = re.compile(rf"^({_LABEL_NAME})?$")

LabelKey = Annotated[str, Field(pattern=_LABEL_KEY_RE.pattern, max_length=316)]
LabelValue = Annotated[str, Field(pattern=_LABEL_VALUE_RE.pattern, max_length=63)]


class ObjectMeta(BaseModel):
    """The parts of ``metav1.ObjectMeta`` the router reads; everything else passes through."""

    model_config = ConfigDict(alias_generator=AliasGenerator(alias=to_camel),
                              populate_by_name=True, extra="allow")

    name: Annotated[str, Field(min_length=1, max_length=253,
                               pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")]
    namespace: str = "default"
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    generation: int | None = None
    uid: str | None = None
    resource_version: str | None = None


class SelectorOperator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


class LabelSelectorRequirement(KubeModel):
    """One ``key operator values`` term of a label selector (``metav1``'s requirement)."""

    # The API server's copy of ``_values_fit_operator`` below, so kubectl gets the same answer.
    model_config = KubeModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "self.operator in ['In', 'NotIn'] ? "
                            "(has(self.values) && size(self.values) > 0) : "
                            "(!has(self.values) || size(self.values) == 0)",
                    "message": "values must be non-empty for operators In and NotIn, "
                               "and empty for Exists and DoesNotExist",
                    "fieldPath": ".values",
                }
            ]
        }
    }

    key: LabelKey
    operator: SelectorOperator
    values: list[LabelValue] = Field(default_factory=list)

    @model_validator(mode="after")
    def _values_fit_operator(self) -> LabelSelectorRequirement:
        needs_values = self.operator in (SelectorOperator.IN, SelectorOperator.NOT_IN)
        if needs_values and not self.values:
            raise ValueError(f"values: operator {self.operator.value} needs at least one value")
        if not needs_values and self.values:
            raise ValueError(f"values: operator {self.operator.value} takes no values")
        return self

    def matches(self, labels: Mapping[str, str]) -> bool:
        match self.operator:
            case SelectorOperator.IN:
                return labels.get(self.key) in self.values
            case SelectorOperator.NOT_IN:
                return self.key not in labels or labels[self.key] not in self.values
            case SelectorOperator.EXISTS:
                return self.key in labels
            case SelectorOperator.DOES_NOT_EXIST:
                return self.key not in labels


class LabelSelector(KubeModel):
    """``metav1.LabelSelector``: the requirements are ANDed; an empty selector matches
    everything."""

    match_labels: dict[LabelKey, LabelValue] = Field(default_factory=dict)
    match_expressions: list[LabelSelectorRequirement] = Field(default_factory=list)

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.match_labels.items()) and all(
            expr.matches(labels) for expr in self.match_expressions
        )


# CRD list markers for a ``conditions`` field (kubebuilder's ``+listType=map``,
# ``+listMapKey=type``): at most one condition per type, merged per type by server-side apply.
CONDITIONS_LIST: JsonDict = {
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["type"],
}


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(KubeModel):
    """``metav1.Condition``. ``last_transition_time`` moves only when ``status`` flips."""

    type: Annotated[str, Field(min_length=1, max_length=316)]
    status: ConditionStatus
    reason: Annotated[str, Field(min_length=1, max_length=1024,
                                 pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")]
    message: Annotated[str, Field(max_length=32768)] = ""
    last_transition_time: datetime
    observed_generation: Annotated[int, Field(ge=0)] | None = None
