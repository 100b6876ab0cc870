"""Standalone mode end to end: serve from manifest files, reload them live, survive bad
edits, and shut down cleanly."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from provider_router.standalone import Standalone
from standalone.router_harness import Env, eventually, policy_doc, provider_doc, write_docs


async def test_routes_from_manifests(env: Env) -> None:
    response = await env.http.get("/v1/route", params={"capability": "chat"})
    assert response.status_code == 200
    body = response.json()
    assert body["provider"]["name"] == "alpha"
    assert body["provider"]["apiBase"] == env.alpha.url + "/v1"
    assert [f["name"] for f in body["fallbacks"]] == ["beta"]
    assert body["policy"] == "main"
    assert body["leaseId"]
    assert (await env.http.get("/readyz")).json()["ready"] is True
    assert await env.provider_names() == ["alpha", "beta"]


async def test_providers_are_probed(env: Env) -> None:
    async def healthy() -> bool:
        body = (await env.http.get("/v1/providers")).json()
        return all(p["health"] == "Healthy" for p in body["providers"])

    await eventually(healthy)
    assert any(r.path == "/v1/models" for r in env.alpha.requests)
    metrics = (await env.http.get("/metrics")).text
    assert 'provider_router_probe_results_total{namespace="default",provider="alpha"' in metrics


async def test_failover_when_a_provider_fails(env: Env) -> None:
    env.alpha.fail(503)

    async def routed_to_beta() -> bool:
        body = (await env.http.get("/v1/route", params={"lease": "false"})).json()
        return bool(body["provider"]["name"] == "beta")

    # Three probes a second apart (the default failure threshold) turn alpha unhealthy.
    await eventually(routed_to_beta, timeout=6)


async def test_hot_reload_adds_and_removes_providers_keeping_state(env: Env) -> None:
    # Teach the router something about beta that a rebuild would forget: an open circuit.
    async def beta_open() -> bool:
        report = await env.http.post("/v1/report", json={"provider": "beta",
                                                         "outcome": "error"})
        return bool(report.json()["circuit"] == "Open")

    await eventually(beta_open)

    write_docs(env.folder / "providers.yaml",
               provider_doc("beta", env.beta.url, priority=2),
               provider_doc("gamma", env.alpha.url + "/gamma"))

    async def reloaded() -> bool:
        return await env.provider_names() == ["beta", "gamma"]

    await eventually(reloaded)
    beta = next(p for p in (await env.http.get("/v1/providers")).json()["providers"]
            if p["name"] == "beta")
    assert beta["priority"] == 2
    assert beta["circuit"] == "Open"
    route = (await env.http.get("/v1/route")).json()
    assert route["provider"]["name"] == "gamma"
    await eventually(lambda: any(r.path == "/gamma/v1/models" for r in env.alpha.requests))


async def test_new_files_in_subfolders_are_picked_up(env: Env) -> None:
    (env.folder / "team").mkdir()
    write_docs(env.folder / "team" / "extra.yml", provider_doc("delta", env.beta.url + "/d"))

    async def added() -> bool:
        return "delta" in await env.provider_names()

    await eventually(added)


async def test_bad_manifest_keeps_the_last_good_table(env: Env,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="provider_router.standalone")
    write_docs(env.folder / "providers.yaml",
               provider_doc("alpha", env.alpha.url, priority=10),
               provider_doc("beta", env.beta.url, weight=-1))
    await eventually(lambda: env.router.failed_reloads >= 1)
    expected = (f"{env.folder / 'providers.yaml'}: document 2 (LLMProvider default/beta): "
                "spec.weight: Input should be greater than or equal to 0")
    assert any(expected in r.getMessage() and r.levelno == logging.ERROR
               for r in caplog.records)
    # Still serving the old table, and saying why the new one was refused.
    assert await env.provider_names() == ["alpha", "beta"]
    assert (await env.http.get("/v1/route")).status_code == 200
    ready = (await env.http.get("/readyz")).json()
    assert ready["ready"] is True
    assert expected in ready["details"]["lastError"]

    # Fixing the file recovers.
    write_docs(env.folder / "providers.yaml", provider_doc("alpha", env.alpha.url))

    async def fixed() -> bool:
        return await env.provider_names() == ["alpha"]

    await eventually(fixed)
    assert env.router.last_error is None


async def test_single_file_mode(tmp_path: Path) -> None:
    from provider_router.mock_provider import MockProvider

    mock = MockProvider("solo")
    await mock.start()
    path = tmp_path / "router.yaml"
    write_docs(path, provider_doc("solo", mock.url), policy_doc())
    (tmp_path / "unrelated.yaml").write_text("not: [valid")
    router = Standalone(path, port=0, probe_initial_delay=0.0, debounce_ms=50)
    await router.start()
    try:
        async with httpx.AsyncClient(base_url=router.url) as http:
            assert (await http.get("/v1/route")).json()["provider"]["name"] == "solo"
            write_docs(path, provider_doc("solo", mock.url), provider_doc("duo", mock.url),
                       policy_doc())

            async def two() -> bool:
                return len((await http.get("/v1/providers")).json()["providers"]) == 2

            await eventually(two)
    finally:
        await router.stop()
        await mock.stop()


async def test_invalid_manifests_at_start_are_fatal(tmp_path: Path) -> None:
    from provider_router.manifests import ManifestError

    write_docs(tmp_path / "bad.yaml", provider_doc("x", "ftp://nope"))
    router = Standalone(tmp_path, port=0)
    with pytest.raises(ManifestError, match=r"bad.yaml: document 1 \(LLMProvider default/x\): "
                       r"spec.baseURL"):
        await router.start()


async def test_shutdown_is_clean(tmp_path: Path) -> None:
    from provider_router.mock_provider import MockProvider

    mock = MockProvider("m", latency=0.3)
    await mock.start()
    write_docs(tmp_path / "m.yaml", provider_doc("m", mock.url), policy_doc())
    router = Standalone(tmp_path, port=0, probe_initial_delay=0.0)
    await router.start()
    stop = asyncio.Event()
    runner = asyncio.create_task(router.run_until(stop))
    await eventually(lambda: len(mock.requests) >= 1)  # a probe is in flight (0.3 s)
    client = router.prober.client
    stop.set()  # what the SIGTERM/SIGINT handler does
    await asyncio.wait_for(runner, timeout=10)
    assert router.prober.probed == set()
    assert client.is_closed
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError):
        sock.connect(("127.0.0.1", router.port))
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("probe ")]
    await router.stop()  # idempotent
    await mock.stop()


async def test_a_rotated_secret_is_used_after_reload(tmp_path: Path) -> None:
    from provider_router.mock_provider import MockProvider

    mock = MockProvider("keyed", api_key="key-one")
    await mock.start()

    def write(value: str) -> None:
        write_docs(tmp_path / "all.yaml",
                   {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
                    "stringData": {"token": value}},
                   provider_doc("keyed", mock.url,
                                credentialsSecretRef={"name": "creds", "key": "token"}),
                   policy_doc())

    write("key-one")
    router = Standalone(tmp_path, port=0, probe_initial_delay=0.0, debounce_ms=50)
    await router.start()
    try:
        async with httpx.AsyncClient(base_url=router.url) as http:
            async def health() -> str:
                return str((await http.get("/v1/providers")).json()["providers"][0]["health"])

            await eventually(lambda: health_is(health, "Healthy"))
            mock.api_key = "key-two"  # the provider rotated its key
            await eventually(lambda: health_is(health, "Unauthorized"))
            write("key-two")  # ... and so did the operator of the router
            await eventually(lambda: health_is(health, "Healthy"))
    finally:
        await router.stop()
        await mock.stop()
    assert mock.authorizations()[-1] == "Bearer key-two"


async def health_is(read: Callable[[], Awaitable[str]], expected: str) -> bool:
    return await read() == expected
