"""A credential is used for its provider's probes and appears nowhere else.

The router is started with Secrets holding unique random tokens (one through base64 ``data``,
one through ``stringData``), every endpoint is exercised (including errors, an explained 503,
a credential the provider refuses, and reloads good and bad), and then every HTTP answer, every
log record at DEBUG and the metrics are searched for the tokens.
"""

from __future__ import annotations

import base64
import logging
import secrets
import traceback
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import generate_latest

from provider_router.mock_provider import MockProvider
from provider_router.standalone import Standalone
from standalone.router_harness import eventually, policy_doc, provider_doc, write_docs


def secret_doc(name: str, **fields: object) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, **fields}


def record_text(record: logging.LogRecord) -> str:
    parts = [record.getMessage(), repr(record.args), repr(record.__dict__)]
    if record.exc_info and record.exc_info[1] is not None:
        parts.append("".join(traceback.format_exception(record.exc_info[1])))
    return "\n".join(parts)


class Recorder:
    """Sends requests to the router and keeps every answer (status, headers, body)."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.seen: list[str] = []

    async def __call__(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = await self.http.request(method, path, **kwargs)
        self.seen.append(f"{method} {path} -> {response.status_code}\n{response.headers}\n"
                         f"{response.text}")
        return response

    async def health_is(self, health: str, every: bool) -> bool:
        body = (await self("GET", "/v1/providers")).json()
        found = [p["health"] == health for p in body["providers"]]
        return all(found) if every else any(found)


async def exercise_every_endpoint(call: Recorder) -> None:
    route = (await call("GET", "/v1/route", params={"explain": "true"})).json()
    assert route["provider"]["name"] == "keyed"
    await call("POST", "/v1/route", json={"capabilities": ["chat"], "explain": True})
    await call("POST", "/v1/report", json={"leaseId": route["leaseId"], "outcome": "success",
                                           "latencyMs": 12, "inputTokens": 10,
                                           "outputTokens": 5})
    await call("POST", "/v1/report", json={"provider": "claude", "outcome": "rate_limited",
                                           "retryAfterSeconds": 1, "statusCode": 429})
    await call("GET", "/v1/route", params={"capability": "teleport", "explain": "true"})
    await call("GET", "/v1/route", params={"policy": "missing"})
    await call("GET", "/v1/route", params={"capability": ""})
    await call("POST", "/v1/report", json={"outcome": "nope"})
    await call("GET", "/nowhere")
    for path in ("/v1/providers", "/v1/policies", "/metrics", "/openapi.json", "/readyz",
                 "/healthz"):
        await call("GET", path)


async def test_credentials_never_leave_the_probe(tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token_data = "tok-data-" + secrets.token_hex(16)
    token_string = "tok-string-" + secrets.token_hex(16)
    forms = [token_data, token_string, base64.b64encode(token_data.encode()).decode(),
             base64.b64encode(token_string.encode()).decode()]
    keyed = MockProvider("keyed", api_key=token_data)
    anthropic = MockProvider("claude", api_key=token_string)
    plain = MockProvider("plain")
    for mock in (keyed, anthropic, plain):
        await mock.start()
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    write_docs(manifests / "all.yaml",
               secret_doc("keyed-creds", data={"api-key": forms[2]}),
               secret_doc("claude-creds", stringData={"key": token_string}),
               provider_doc("keyed", keyed.url, priority=3,
                            credentialsSecretRef={"name": "keyed-creds", "key": "api-key"}),
               provider_doc("claude", anthropic.url, apiFormat="anthropic", priority=2,
                            credentialsSecretRef={"name": "claude-creds", "key": "key"}),
               provider_doc("plain", plain.url, priority=1),
               policy_doc(failover={"failureThreshold": 1, "cooldownSeconds": 30}))
    router = Standalone(manifests, port=0, probe_initial_delay=0.0, debounce_ms=50)
    await router.start()
    try:
        async with httpx.AsyncClient(base_url=router.url, trust_env=False) as http:
            call = Recorder(http)
            # The mocks refuse requests without their token: Healthy proves the probes
            # carried it.
            await eventually(lambda: call.health_is("Healthy", every=True))
            assert f"Bearer {token_data}" in keyed.authorizations()
            assert token_string in anthropic.authorizations()
            assert plain.authorizations() == []
            assert not any(token_data in a for a in anthropic.authorizations())
            await exercise_every_endpoint(call)

            # The provider starts refusing our credential: Unauthorized, explained, logged.
            keyed.api_key = "rotated-" + secrets.token_hex(4)
            await eventually(lambda: call.health_is("Unauthorized", every=False))
            await call("GET", "/v1/route", params={"explain": "true"})

            # Reloads: a bad one (logged with its place) and a good one.
            (manifests / "broken.yaml").write_text("apiVersion: v1\nkind: Secret\n"
                                                   "metadata: {name: broken}\n"
                                                   f"data: {{k: '{token_data}!'}}\n")
            await eventually(lambda: router.failed_reloads >= 1)
            (manifests / "broken.yaml").unlink()
            await eventually(lambda: router.last_error is None)
            for path in ("/v1/providers", "/v1/policies", "/metrics", "/readyz"):
                await call("GET", path)
    finally:
        await router.stop()
        for mock in (keyed, anthropic, plain):
            await mock.stop()

    logs = [record_text(r) for r in caplog.records]
    assert any("document 1 (Secret default/broken): data.k: not valid base64" in text
               for text in logs)
    assert any("is now Unauthorized" in text for text in logs)
    haystacks = {"responses": "\n".join(call.seen), "logs": "\n".join(logs),
                 "metrics": generate_latest(router.metrics.registry).decode(),
                 "repr": repr(router.manifests)}
    for where, text in haystacks.items():
        for form in forms:
            assert form not in text, f"a credential leaked into {where}"
