"""``provider-router demo``: a newcomer's first command starts, prints curl lines that work
as printed, shows failover, and stops by itself with ``--duration``."""

from __future__ import annotations

import asyncio
import io
import shlex
import sys

import httpx

from provider_router.demo import run_demo
from provider_router.mock_provider import MockProvider
from provider_router.standalone import Standalone


def curl_lines(text: str) -> list[list[str]]:
    return [shlex.split(line.strip()) for line in text.splitlines()
            if line.strip().startswith("curl ")]


async def run_curl(http: httpx.AsyncClient, argv: list[str]) -> httpx.Response:
    """Execute a printed ``curl -s [-X M] URL [-H h] [-d data]`` line with httpx."""
    method, url, data, headers = "GET", "", None, {}
    args = iter(argv[1:])
    for arg in args:
        if arg == "-X":
            method = next(args)
        elif arg == "-H":
            name, _, value = next(args).partition(":")
            headers[name.strip()] = value.strip()
        elif arg == "-d":
            data = next(args)
            method = "POST" if method == "GET" else method
        elif arg == "|":
            break
        elif not arg.startswith("-"):
            url = arg
    return await http.request(method, url, content=data, headers=headers)


async def test_demo_in_process_curl_lines_work_and_failover_shows() -> None:
    out = io.StringIO()
    stop = asyncio.Event()
    started: list[tuple[Standalone, list[MockProvider]]] = []
    task = asyncio.create_task(run_demo(port=0, duration=20, out=out, stop=stop,
                                        send_traffic=False,
                                        on_ready=lambda r, m: started.append((r, m))))
    try:
        while not started:
            assert not task.done(), out.getvalue()
            await asyncio.sleep(0.02)
        _, mocks = started[0]
        lines = curl_lines(out.getvalue())

        def line_with(fragment: str, after: int = 0) -> list[str]:
            return next(argv for argv in lines[after:] if fragment in " ".join(argv))

        async with httpx.AsyncClient(trust_env=False) as http:
            # Every line of the "try it" part works exactly as printed.
            answers = [await run_curl(http, argv) for argv in lines
                       if "/admin/" not in " ".join(argv)]
            assert len(answers) == 9
            assert [a.status_code for a in answers] == [200] * 9, [a.text for a in answers]
            route = await run_curl(http, line_with("/v1/route?capability=chat"))
            assert route.json()["provider"]["name"] == mocks[0].name == "local-llama"
            report = await run_curl(http, line_with("/v1/report"))
            assert report.json()["provider"] == "local-llama"
            metrics = await run_curl(http, line_with("/metrics"))
            assert "provider_router_route_decisions" in metrics.text
            chat = await run_curl(http, line_with("/chat/completions"))
            assert chat.json()["usage"]["total_tokens"] > 0
            proxied = await run_curl(http, line_with(f"{started[0][0].url}/v1/chat/"))
            assert proxied.headers["x-router-provider"] == "default/local-llama"
            assert proxied.json()["usage"]["total_tokens"] > 0

            # The failover lines: make the first mock fail, and the route moves.
            fail = line_with("/admin/fail")
            explain = line_with("explain=true", after=lines.index(fail))
            assert (await run_curl(http, fail)).json()["failing"] is True

            async def moved() -> bool:
                body = (await run_curl(http, explain)).json()
                excluded = {c["name"]: c["reasons"] for c in body["candidates"]
                            if c["role"] == "excluded"}
                return (body["provider"]["name"] != "local-llama"
                        and "Unhealthy" in excluded.get("local-llama", []))

            for _ in range(100):
                if await moved():
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("traffic did not fail over")
            recover = await run_curl(http, line_with("/admin/recover"))
            assert recover.json()["failing"] is False
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 10) == 0
    assert out.getvalue().rstrip().endswith("demo stopped")


async def test_demo_command_runs_for_its_duration() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "provider_router.cli", "demo", "--port", "0", "--duration", "3",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert process.stdout is not None
    printed: list[str] = []
    try:
        while True:
            line = (await asyncio.wait_for(process.stdout.readline(), 15)).decode()
            assert line, "demo ended before printing its banner"
            printed.append(line)
            if "Press Ctrl-C" in line:
                break
        route_line = next(shlex.split(line.strip()) for line in printed
                          if "/v1/route?capability=chat'" in line)
        async with httpx.AsyncClient(trust_env=False) as http:
            response = await run_curl(http, route_line)
        assert response.status_code == 200
        assert response.json()["provider"]["apiBase"].startswith("http://127.0.0.1:")
        rest, errors = await asyncio.wait_for(process.communicate(), 20)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, errors.decode()
    output = "".join(printed) + rest.decode()
    assert "[traffic] local-llama: HTTP 200" in output  # the sample requests went through
    assert output.rstrip().endswith("demo stopped")
    assert "Traceback" not in errors.decode()
