"""A Secret's value is used for the provider's probes and appears nowhere else: not in status,
Events, logs, route answers, listings or metrics."""

from __future__ import annotations

import logging
import uuid

import pytest

from support.operator_harness import eventually, policy_doc, provider_doc

pytestmark = pytest.mark.integration


def test_secret_value_never_leaves_the_probe(kube, operator, mock_providers, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    token = f"sk-{uuid.uuid4().hex}"
    server = mock_providers()
    kube.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
                "stringData": {"apiKey": token}},
               provider_doc("keyed", server.url,
                            credentialsSecretRef={"name": "creds", "key": "apiKey"}),
               policy_doc("main", default=True))
    kube.run("wait", "--for=condition=Ready", "llmp/keyed", "--timeout=30s")
    assert f"Bearer {token}" in server.authorizations()
    server.fail(503)
    eventually(lambda: kube.condition("llmp", "keyed", "Healthy").get("status") == "False")
    server.recover()
    eventually(lambda: kube.condition("llmp", "keyed", "Healthy").get("status") == "True")
    seen = [
        kube.run("get", "llmp", "keyed", "-o", "yaml"),
        kube.run("get", "rpol", "main", "-o", "yaml"),
        kube.run("get", "events", "-o", "yaml"),
        operator.route(namespace=kube.namespace, explain="true").text,
        operator.http.get("/v1/providers").text,
        operator.http.get("/v1/policies").text,
        operator.http.get("/metrics").text,
        "\n".join(record.getMessage() for record in caplog.records),
    ]
    for text in seen:
        assert token not in text
