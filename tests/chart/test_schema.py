"""``values.schema.json`` refuses bad values before anything renders, naming the field.

Why: without a schema Helm renders whatever it is given: ``replicas: "two"`` becomes a broken
Deployment, and a typo such as ``replicaCount`` is silently ignored. The schema turns both into
an install-time error that says which field is wrong and why.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml

from chart._helm import CHART_DIR, HelmResult, set_flags, template
from provider_router.api import Strategy

SCHEMA_PATH = CHART_DIR / "values.schema.json"
VALUES_PATH = CHART_DIR / "values.yaml"


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return schema


def _error_lines(result: HelmResult) -> str:
    """Helm's message, with Helm 4's JSON-pointer paths (/a/b) written as Helm 3's (a.b)."""
    assert result.returncode != 0, f"helm accepted the values:\n{result.stdout[:500]}"
    assert "values don't meet the specifications of the schema" in result.stderr, result.stderr
    return result.stderr.replace("'/", "'").replace("/", ".")


# (values given with --set, or a values file), the field, words that say what is wrong
BAD_VALUES: list[tuple[str, list[str] | dict[str, Any], str, tuple[str, ...]]] = [
    ("replicas-not-an-integer", ["replicas=two"], "replicas", ("integer",)),
    ("negative-replicas", {"replicas": -1}, "replicas", ("greater than or equal to 0",
                                                         "minimum")),
    ("unknown-strategy", {"defaultPolicy": {"enabled": True, "strategy": "Fastest"}},
     "defaultPolicy.strategy", ("must be one of",)),
    ("unknown-top-level-key", ["replicaCount=2"], "replicaCount", ("additional propert",)),
    ("unknown-nested-key", {"serviceMonitor": {"enable": True}}, "enable",
     ("additional propert",)),
    ("bad-namespace-name", {"watchNamespaces": ["Team_A"]}, "watchNamespaces",
     ("does not match pattern", "does not match")),
    ("port-out-of-range", ["routePort=70000"], "routePort", ("less than or equal to",
                                                             "maximum")),
    ("bad-pull-policy", ["image.pullPolicy=Sometimes"], "image.pullPolicy",
     ("must be one of",)),
    ("string-for-boolean", ["crds.templated=maybe"], "crds.templated", ("boolean",)),
    ("zero-lease-ttl", ["leaseTTLSeconds=0"], "leaseTTLSeconds", ("greater than 0",
                                                                 "exclusiveminimum")),
    ("zero-proxy-timeout", ["proxy.idleTimeoutSeconds=0"], "proxy.idleTimeoutSeconds",
     ("greater than 0", "exclusiveminimum")),
    ("text-proxy-timeout", ["proxy.deadlineSeconds=soon"], "proxy.deadlineSeconds",
     ("number",)),
    ("fractional-body-limit", {"proxy": {"maxBodyBytes": 1.5}}, "proxy.maxBodyBytes",
     ("integer",)),
    ("bad-session-affinity", ["service.sessionAffinity=Cookie"], "service.sessionAffinity",
     ("must be one of",)),
]


@pytest.mark.parametrize(("given", "field", "words"),
                         [pytest.param(g, f, w, id=i) for i, g, f, w in BAD_VALUES])
def test_bad_values_are_refused_naming_the_field(helm: Path, given: list[str] | dict[str, Any],
                                                 field: str, words: tuple[str, ...]) -> None:
    if isinstance(given, list):
        result = template(helm, None, *set_flags(given))
    else:
        result = template(helm, given)
    message = _error_lines(result)
    assert field in message, message
    assert any(w in message.lower() for w in words), message


def test_schema_is_draft_07_and_closed_at_the_top(helm: Path) -> None:
    schema = _schema()
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["additionalProperties"] is False


def test_values_yaml_and_schema_list_the_same_keys() -> None:
    values = yaml.safe_load(VALUES_PATH.read_text(encoding="utf-8"))
    assert set(values) == set(_schema()["properties"])


def test_values_yaml_satisfies_the_schema() -> None:
    """An independent validator (not Helm's) agrees that the defaults are valid."""
    values = yaml.safe_load(VALUES_PATH.read_text(encoding="utf-8"))
    validator = jsonschema_rs.Draft7Validator(_schema())
    errors = [f"{list(e.instance_path)}: {e.message}" for e in validator.iter_errors(values)]
    assert errors == []


def test_schema_strategies_are_the_api_strategies() -> None:
    strategy = _schema()["properties"]["defaultPolicy"]["properties"]["strategy"]
    assert strategy["enum"] == [s.value for s in Strategy]
    assert len(strategy["enum"]) == 7


@pytest.mark.parametrize("strategy", [s.value for s in Strategy])
def test_every_strategy_is_accepted(helm: Path, strategy: str) -> None:
    result = template(helm, {"defaultPolicy": {"enabled": True, "strategy": strategy}})
    assert result.returncode == 0, result.stderr


def test_zero_replicas_and_percentages_are_valid(helm: Path) -> None:
    values = {"replicas": 0, "podDisruptionBudget": {"enabled": True, "maxUnavailable": "25%"}}
    assert template(helm, values).returncode == 0


def test_readme_documents_every_top_level_value() -> None:
    readme = (CHART_DIR / "README.md").read_text(encoding="utf-8")
    values = yaml.safe_load(VALUES_PATH.read_text(encoding="utf-8"))
    undocumented = [k for k in values if f"`{k}`" not in readme and f"`{k}." not in readme]
    assert undocumented == []
