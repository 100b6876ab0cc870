"""``provider-router serve`` as a real process: SIGTERM and SIGINT shut it down cleanly
(exit 0, probes stopped, server closed), as Kubernetes and a terminal's Ctrl-C expect."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from pathlib import Path

import httpx
import pytest

from provider_router.mock_provider import MockProvider
from standalone.router_harness import policy_doc, provider_doc, write_docs


async def read_until(stream: asyncio.StreamReader, pattern: str, seen: list[str],
                     timeout: float = 15.0) -> re.Match[str]:
    async def scan() -> re.Match[str]:
        while True:
            line = (await stream.readline()).decode()
            if not line:
                raise AssertionError("process ended early:\n" + "".join(seen))
            seen.append(line)
            found = re.search(pattern, line)
            if found:
                return found

    return await asyncio.wait_for(scan(), timeout)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_serve_stops_cleanly_on_signal(tmp_path: Path, sig: signal.Signals) -> None:
    mock = MockProvider("m")
    await mock.start()
    write_docs(tmp_path / "m.yaml", provider_doc("m", mock.url), policy_doc())
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "provider_router.cli", "serve", "--manifests", str(tmp_path),
        "--port", "0", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert process.stderr is not None
    seen: list[str] = []
    try:
        found = await read_until(process.stderr, r"on (http://127\.0\.0\.1:\d+) \(Ctrl-C", seen)
        async with httpx.AsyncClient(base_url=found.group(1), trust_env=False) as http:
            assert (await http.get("/v1/route")).json()["provider"]["name"] == "m"
        process.send_signal(sig)
        await read_until(process.stderr, r"standalone router stopped", seen)
        assert await asyncio.wait_for(process.wait(), 10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await mock.stop()
    log = "".join(seen)
    assert f"received {sig.name}, shutting down" in log
    assert "Traceback" not in log


async def test_serve_exits_1_on_invalid_manifests(tmp_path: Path) -> None:
    write_docs(tmp_path / "bad.yaml", provider_doc("x", "http://127.0.0.1:9", weight=-1))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "provider_router.cli", "serve", "--manifests", str(tmp_path),
        "--port", "0", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, stderr = await asyncio.wait_for(process.communicate(), 15)
    assert process.returncode == 1
    assert (f"{tmp_path / 'bad.yaml'}: document 1 (LLMProvider default/x): spec.weight: "
            "Input should be greater than or equal to 0") in stderr.decode()
