"""The chart's ``sharedState`` values: how the store URL reaches the operator, and that a URL
carrying credentials never sits in values (schema and template both refuse it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chart._helm import FULLNAME, render, template


def _operator(values: dict[str, Any], helm: Path) -> dict[str, Any]:
    deployment = render(helm, values).one("Deployment", FULLNAME)
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e for e in container["env"]}


def test_a_url_without_credentials_is_passed_in_the_environment(helm: Path) -> None:
    container = _operator({"sharedState": {"url": "redis://valkey.db:6379/2",
                                           "syncMs": 150}}, helm)
    assert _env(container)["PROVIDER_ROUTER_STATE_URL"]["value"] == "redis://valkey.db:6379/2"
    args = container["args"]
    assert args[args.index("--state-sync-ms") + 1] == "150"
    assert not any("redis://" in a for a in args)  # the URL is never an argument


def test_a_secret_carries_a_url_with_a_password(helm: Path) -> None:
    container = _operator({"sharedState": {"existingSecret": "valkey-url"}}, helm)
    ref = _env(container)["PROVIDER_ROUTER_STATE_URL"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "valkey-url", "key": "url"}


def test_without_shared_state_nothing_is_passed(helm: Path) -> None:
    container = _operator({}, helm)
    assert "PROVIDER_ROUTER_STATE_URL" not in _env(container)
    assert "--state-sync-ms" not in container["args"]


@pytest.mark.parametrize("url", ["redis://:hunter2@valkey:6379/0",
                                 "rediss://user:pw@valkey:6380"])
def test_a_url_with_credentials_is_refused(helm: Path, url: str) -> None:
    result = template(helm, {"sharedState": {"url": url}})
    assert result.returncode != 0
    assert "sharedState" in result.stderr
    skipped = template(helm, {"sharedState": {"url": url}}, "--skip-schema-validation")
    assert skipped.returncode != 0, "the template must refuse it without the schema too"
    assert "existingSecret" in skipped.stderr
    assert url not in skipped.stdout


def test_url_and_secret_together_are_refused(helm: Path) -> None:
    result = template(helm, {"sharedState": {"url": "redis://valkey:6379/0",
                                             "existingSecret": "valkey-url"}})
    assert result.returncode != 0
    assert "not both" in result.stderr
