"""The ``provider-router`` command line: each subcommand parses its flags and calls the
library; client subcommands print JSON from a real running router."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import yaml

from provider_router.cli import DEFAULT_LEASE_TTL, build_parser, main
from provider_router.engine import DEFAULT_LEASE_TTL as ENGINE_LEASE_TTL
from provider_router.proxy import ProxyOptions
from provider_router.runtime import RuntimeSettings
from standalone.router_harness import Env


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


COMMANDS = ["serve", "demo", "crds", "route", "report", "providers", "policies", "operator"]


def _listed_commands(help_text: str) -> dict[str, str]:
    """The ``COMMAND`` block of ``--help``: each command's name and one-line help, in order."""
    lines = help_text.splitlines()
    start = lines.index("  COMMAND") + 1
    listed: dict[str, str] = {}
    for line in lines[start:]:
        found = re.fullmatch(r" {4}(\S+) +(\S.*)", line)
        if found is None:
            break
        listed[found[1]] = found[2]
    return listed


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    listed = _listed_commands(capsys.readouterr().out)
    assert list(listed) == COMMANDS
    (commands,) = [action for action in build_parser()._actions
                   if isinstance(action, argparse._SubParsersAction)]
    assert list(commands.choices) == COMMANDS  # what --help lists is what main() parses
    for name in COMMANDS:
        assert listed[name].strip()
        with pytest.raises(SystemExit) as done:
            main([name, "--help"])
        assert done.value.code == 0
        assert capsys.readouterr().out.startswith(f"usage: provider-router {name} ")


def test_defaults() -> None:
    parser = build_parser()
    serve = parser.parse_args(["serve", "--manifests", "x"])
    assert (serve.host, serve.port, serve.manifests) == ("127.0.0.1", 8080, Path("x"))
    route = parser.parse_args(["route", "-c", "chat", "-c", "vision"])
    assert route.capability == ["chat", "vision"]
    assert route.url is None  # RouterClient falls back to $PROVIDER_ROUTER_URL, then :8080
    assert serve.lease_ttl == DEFAULT_LEASE_TTL == ENGINE_LEASE_TTL
    assert parser.parse_args(["serve", "-f", "x", "--lease-ttl", "900"]).lease_ttl == 900.0
    with pytest.raises(SystemExit):
        parser.parse_args(["serve", "-f", "x", "--lease-ttl", "0"])
    with pytest.raises(SystemExit):
        parser.parse_args(["serve"])  # --manifests is required
    with pytest.raises(SystemExit):
        parser.parse_args(["operator", "-n", "a", "-A"])  # one or the other


def test_crds_prints_yaml(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "crds")
    assert code == 0
    docs = [d for d in yaml.safe_load_all(out) if d]
    assert {d["spec"]["names"]["kind"] for d in docs} == {"LLMProvider", "RoutingPolicy"}
    assert all(d["kind"] == "CustomResourceDefinition" for d in docs)


def test_crds_out_writes_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "crds", "--out", str(tmp_path))
    assert code == 0
    written = sorted(p.name for p in tmp_path.iterdir())
    assert len(written) == 2
    assert sorted(Path(line).name for line in out.split()) == written


def test_operator_passes_its_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    fake = types.ModuleType("provider_router.operator")
    fake.run = lambda **kwargs: calls.append(kwargs)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "provider_router.operator", fake)
    monkeypatch.delenv("POD_NAMESPACE", raising=False)
    monkeypatch.delenv("PROVIDER_ROUTER_STATE_URL", raising=False)
    assert main(["operator", "-n", "a", "--namespace", "b", "--route-port", "9000",
                 "--kubeconfig", "/k"]) == 0
    assert main(["operator", "-A", "--leader-elect", "--leader-lease", "r-leader",
                 "--liveness-port", "0"]) == 0
    monkeypatch.setenv("POD_NAMESPACE", "router-system")
    assert main(["operator", "-A", "--leader-elect", "--lease-ttl", "600"]) == 0
    assert main(["operator", "--auth", "kubernetes", "--auth-audience", "llm"]) == 0
    common = {"leader_lease": "provider-router-leader", "liveness_port": 8081,
              "leader_elect": False, "replicas_service": None}
    listen = RuntimeSettings(host="0.0.0.0")
    assert calls == [
        {**common, "namespaces": ["a", "b"], "all_namespaces": False,
         "runtime": listen.with_changes(port=9000), "kubeconfig": "/k",
         "leader_namespace": "a"},
        {**common, "namespaces": [], "all_namespaces": True, "runtime": listen,
         "kubeconfig": None, "leader_elect": True, "leader_lease": "r-leader",
         "liveness_port": None, "leader_namespace": "default"},
        {**common, "namespaces": [], "all_namespaces": True,
         "runtime": listen.with_changes(lease_ttl=600.0), "kubeconfig": None,
         "leader_elect": True, "leader_namespace": "router-system"},
        {**common, "namespaces": [], "all_namespaces": False,
         "runtime": listen.with_changes(auth="kubernetes", auth_audience="llm"),
         "kubeconfig": None, "leader_namespace": "router-system"}]


def test_proxy_flags_become_proxy_options(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    fake = types.ModuleType("provider_router.operator")
    fake.run = lambda **kwargs: calls.append(kwargs)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "provider_router.operator", fake)
    assert main(["operator", "-A", "--proxy", "--proxy-namespace", "team-a",
                 "--proxy-idle-timeout", "7", "--proxy-stall-timeout", "9",
                 "--proxy-max-body-bytes", "1000"]) == 0
    options = calls[0]["runtime"].proxy
    assert isinstance(options, ProxyOptions)
    assert (options.namespace, options.idle_seconds, options.stall_seconds,
            options.max_body_bytes) == ("team-a", 7.0, 9.0, 1000)
    assert options.connect_seconds == ProxyOptions().connect_seconds
    assert main(["operator", "-A", "--proxy"]) == 0
    assert calls[1]["runtime"].proxy == ProxyOptions(), "flag defaults differ from the options'"


def test_operator_missing_exits_2(monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "provider_router.operator", None)
    code, _, err = run_cli(capsys, "operator", "-A")
    assert code == 2
    assert "provider-router operator is not available" in err


async def test_client_commands_against_a_running_router(
        env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    def cli(*argv: str) -> tuple[int, str, str]:
        return run_cli(capsys, *argv, "--url", env.url)

    # main() blocks, so it runs in a thread while this loop serves the router.
    code, out, _ = await asyncio.to_thread(cli, "route", "-c", "chat", "--explain")
    assert code == 0
    route = json.loads(out)
    assert route["provider"]["name"] == "alpha"
    assert route["leaseId"] is None  # the CLI only looks, unless --lease
    assert {c["name"] for c in route["candidates"]} == {"alpha", "beta"}

    code, out, _ = await asyncio.to_thread(cli, "route", "--lease")
    lease = json.loads(out)["leaseId"]
    assert lease
    code, out, _ = await asyncio.to_thread(cli, "report", "--lease-id", lease, "--outcome",
                                           "success", "--latency-ms", "12")
    assert code == 0
    assert json.loads(out)["leaseReleased"] is True

    code, out, _ = await asyncio.to_thread(cli, "route", "--lease", "--stream")
    streamed = json.loads(out)
    code, out, _ = await asyncio.to_thread(cli, "report", "--lease-id", streamed["leaseId"],
                                           "--outcome", "success", "--latency-ms", "900",
                                           "--ttft-ms", "45")
    assert code == 0

    code, out, _ = await asyncio.to_thread(cli, "providers")
    assert [p["name"] for p in json.loads(out)["providers"]] == ["alpha", "beta"]
    listed = {p["name"]: p for p in json.loads(out)["providers"]}
    assert listed[streamed["provider"]["name"]]["ttftMs"] == 45.0
    code, out, _ = await asyncio.to_thread(cli, "policies", "-n", "default")
    assert [p["name"] for p in json.loads(out)["policies"]] == ["main"]

    code, out, err = await asyncio.to_thread(cli, "route", "--policy", "nope")
    assert code == 1
    assert out == ""
    assert json.loads(err)["error"]["code"] == "unknown_policy"


def test_client_command_without_router(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "providers", "--url", "http://127.0.0.1:9")
    assert code == 1
    assert json.loads(err)["error"]["code"] == "RouterUnavailable"
