"""The ``provider-router`` command: argument parsing, then one call into the library.

Kept thin on purpose: everything a subcommand does lives in a module that tests and other
programs use directly (``standalone``, ``demo``, ``client``, ``api``, ``operator``), so the CLI
cannot grow behaviour of its own that only a shell can reach. Heavy modules are imported by
the subcommand that needs them, so ``provider-router --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from provider_router.client import RouterError
    from provider_router.proxy import ProxyOptions

from provider_router._defaults import (
    DEFAULT_HOST,
    DEFAULT_LEASE_TTL,
    DEFAULT_LIVENESS_PORT,
    DEFAULT_NAMESPACE,
    DEFAULT_PORT,
    DEFAULT_PROXY_CONNECT_SECONDS,
    DEFAULT_PROXY_DEADLINE_SECONDS,
    DEFAULT_PROXY_FIRST_BYTE_SECONDS,
    DEFAULT_PROXY_IDLE_SECONDS,
    DEFAULT_PROXY_MAX_BODY_BYTES,
    DEFAULT_STALL_SECONDS,
    DEFAULT_STATE_SYNC_MS,
    DEFAULT_URL,
)

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (0-65535)")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def _state_url(text: str) -> str:
    if not text.startswith(("redis://", "rediss://", "unix://")):
        # Say which scheme is wrong, never echo the URL: it may hold a password.
        scheme = text.partition("://")[0] if "://" in text else "no scheme"
        raise argparse.ArgumentTypeError(
            f"must be redis://HOST:PORT/DB, rediss://... or unix://..., not {scheme}")
    return text


def _lease_ttl_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lease-ttl", type=_positive, default=DEFAULT_LEASE_TTL,
                        metavar="SECONDS",
                        help="release a route's lease if it is not reported within this time; "
                        "longer than your longest calls (default: %(default)g)")


def _state_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state-url", type=_state_url,
                        default=os.environ.get("PROVIDER_ROUTER_STATE_URL") or None,
                        metavar="redis://HOST:PORT/DB",
                        help="share budgets, rate limits, cooldowns and circuits with the "
                        "other replicas through this Valkey or Redis (default: "
                        "$PROVIDER_ROUTER_STATE_URL; none: state is per replica)")
    parser.add_argument("--state-sync-ms", type=_positive_int, default=DEFAULT_STATE_SYNC_MS,
                        metavar="MS",
                        help="how often replicas exchange their totals; a limit can be "
                        "overshot by what each replica admits in one interval (default: "
                        "%(default)s)")


def _auth_options(parser: argparse.ArgumentParser, modes: list[str], default: str) -> None:
    parser.add_argument("--auth", choices=modes, default=None,
                        help="who may use a policy: none (anybody), kubernetes (ServiceAccount "
                        "tokens checked with TokenReview and RBAC)"
                        + (", keys (API keys from labelled Secrets in the manifests)"
                           if "keys" in modes else "") + f" (default: {default})")
    parser.add_argument("--auth-audience", default=None, metavar="AUDIENCE",
                        help="the audience ServiceAccount tokens must be minted for "
                        "(default: provider-router)")


def _proxy_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "proxy mode", "an OpenAI- and Anthropic-compatible endpoint on the route port: SDKs "
        "point base_url at http://ROUTER/v1 (the default policy) or "
        "http://ROUTER/proxy/NS/POLICY/v1")
    group.add_argument("--proxy", action="store_true", help="serve proxy mode")
    group.add_argument("--proxy-namespace", default=DEFAULT_NAMESPACE, metavar="NS",
                       help="namespace whose default policy serves /v1/... when the "
                       "caller's own namespace has none (default: %(default)s)")
    group.add_argument("--proxy-connect-timeout", type=_positive,
                       default=DEFAULT_PROXY_CONNECT_SECONDS,
                       metavar="SECONDS", help="connecting to a provider (default: %(default)g)")
    group.add_argument("--proxy-first-byte-timeout", type=_positive,
                       default=DEFAULT_PROXY_FIRST_BYTE_SECONDS,
                       metavar="SECONDS", help="a provider's answer (a non-streamed one whole, "
                       "a stream's first event) (default: %(default)g)")
    group.add_argument("--proxy-idle-timeout", type=_positive,
                       default=DEFAULT_PROXY_IDLE_SECONDS, metavar="SECONDS",
                       help="silence between two chunks of a stream (default: %(default)g)")
    group.add_argument("--proxy-deadline", type=_positive,
                       default=DEFAULT_PROXY_DEADLINE_SECONDS, metavar="SECONDS",
                       help="all attempts of one call, failover included, until its answer "
                       "starts (default: %(default)g)")
    group.add_argument("--proxy-stall-timeout", type=_positive,
                       default=DEFAULT_STALL_SECONDS,
                       metavar="SECONDS", help="a streaming client that reads nothing for this "
                       "long is dropped, and its upstream call closed (default: %(default)g)")
    group.add_argument("--proxy-max-body-bytes", type=_positive_int,
                       default=DEFAULT_PROXY_MAX_BODY_BYTES, metavar="BYTES",
                       help="largest proxied request body (default: %(default)d)")


def _proxy_from(args: argparse.Namespace) -> ProxyOptions | None:
    if not args.proxy:
        return None
    from provider_router.proxy import ProxyOptions

    return ProxyOptions(namespace=args.proxy_namespace,
                        connect_seconds=args.proxy_connect_timeout,
                        first_byte_seconds=args.proxy_first_byte_timeout,
                        idle_seconds=args.proxy_idle_timeout,
                        deadline_seconds=args.proxy_deadline,
                        stall_seconds=args.proxy_stall_timeout,
                        max_body_bytes=args.proxy_max_body_bytes)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="provider-router",
        description="Route LLM requests across providers declared as LLMProvider and "
                    "RoutingPolicy resources.")
    parser.add_argument("--log-level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="log level (default: INFO)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="standalone router over manifest files",
                                description="Load LLMProvider, RoutingPolicy and Secret "
                                "manifests, probe the providers, serve the route API, and "
                                "reload when the files change.")
    serve.add_argument("--manifests", "-f", required=True, type=Path,
                       help="a YAML file or a folder of them (read recursively)")
    serve.add_argument("--host", default=DEFAULT_HOST, help="address to listen on "
                       f"(default: {DEFAULT_HOST}; 0.0.0.0 for every interface)")
    serve.add_argument("--port", type=_port, default=DEFAULT_PORT,
                       help=f"route API port (default: {DEFAULT_PORT}; 0 for any free port)")
    serve.add_argument("--no-watch", action="store_true", help="do not reload on changes")
    _lease_ttl_option(serve)
    _state_options(serve)
    _auth_options(serve, ["none", "kubernetes", "keys"], "none")
    _proxy_options(serve)

    demo = commands.add_parser("demo", help="mock providers plus a router: try it out",
                               description="Start local OpenAI-compatible mock providers and "
                               "a router over the example manifests, and print curl lines.")
    demo.add_argument("--host", default=DEFAULT_HOST)
    demo.add_argument("--port", type=_port, default=DEFAULT_PORT,
                      help=f"route API port (default: {DEFAULT_PORT}, or a free one if busy)")
    demo.add_argument("--duration", type=_positive, default=None, metavar="SECONDS",
                      help="stop after this many seconds (default: run until Ctrl-C)")
    demo.add_argument("--no-traffic", action="store_true",
                      help="do not send a sample request through the router every few seconds")
    demo.add_argument("--manifests", type=Path, default=None,
                      help="start from these manifests instead of examples/standalone")

    crds = commands.add_parser("crds", help="print the CRD YAML generated from the models")
    crds.add_argument("--out", type=Path, default=None, metavar="DIR",
                      help="write one file per CRD into DIR instead of printing")

    def client_command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--url", default=None,
                         help=f"router URL (default: $PROVIDER_ROUTER_URL or {DEFAULT_URL})")
        sub.add_argument("-n", "--namespace", default=None)
        return sub

    route = client_command("route", "ask a running router where a request should go")
    route.add_argument("--policy", "-p", default=None, help="policy (default: the namespace's "
                       "default policy)")
    route.add_argument("--capability", "-c", action="append", default=[],
                       help="required capability (repeatable)")
    route.add_argument("--model", "-m", default=None)
    route.add_argument("--session", default=None, help="session key for sticky routing")
    route.add_argument("--explain", action="store_true", help="add each candidate's reasons")
    route.add_argument("--lease", action="store_true",
                       help="take a lease (then report it with `provider-router report`)")
    route.add_argument("--stream", action="store_true",
                       help="the call will stream: Latency policies rank by time to first token")

    report = client_command("report", "report a call's outcome to a running router")
    who = report.add_mutually_exclusive_group(required=True)
    who.add_argument("--lease-id", default=None)
    who.add_argument("--provider", default=None)
    report.add_argument("--policy", default=None, help="policy to charge, without a lease")
    report.add_argument("--outcome", required=True,
                        choices=["success", "error", "timeout", "rate_limited"])
    report.add_argument("--latency-ms", type=float, default=None)
    report.add_argument("--ttft-ms", type=float, default=None,
                        help="a streamed call's time to its first chunk")
    report.add_argument("--status-code", type=int, default=None)
    report.add_argument("--retry-after", type=float, default=None, metavar="SECONDS")
    report.add_argument("--input-tokens", type=int, default=None)
    report.add_argument("--output-tokens", type=int, default=None)

    client_command("providers", "list a running router's providers (JSON)")
    client_command("policies", "list a running router's policies (JSON)")

    _add_operator(commands)
    return parser


def _print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def _client_error(error: RouterError) -> int:
    json.dump({"error": {"code": error.code, "message": error.message,
                         "details": error.details}}, sys.stderr, indent=2, default=str)
    sys.stderr.write("\n")
    return 1


def _run_client(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from provider_router.client import RouterClient, RouterError

    with RouterClient(args.url, namespace=args.namespace) as client:
        try:
            if args.command == "route":
                route = client.route(policy=args.policy, capabilities=args.capability,
                                     model=args.model, session=args.session,
                                     explain=args.explain, lease=args.lease,
                                     stream=args.stream)
                _print_json(route.raw or asdict(route))
            elif args.command == "report":
                _print_json(client.report(
                    args.lease_id, args.outcome, provider=args.provider, policy=args.policy,
                    latency_ms=args.latency_ms, ttft_ms=args.ttft_ms,
                    status_code=args.status_code,
                    retry_after_seconds=args.retry_after, input_tokens=args.input_tokens,
                    output_tokens=args.output_tokens))
            elif args.command == "providers":
                _print_json({"providers": client.providers(args.namespace)})
            else:
                _print_json({"policies": client.policies(args.namespace)})
        except RouterError as error:
            return _client_error(error)
    return 0


def _add_operator(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    operator = commands.add_parser("operator", help="run the Kubernetes operator",
                                   description="Run the Kopf operator plus the route API, "
                                   "against in-cluster config or a kubeconfig.")
    scope = operator.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", action="append", dest="namespaces", default=[],
                       help="namespace to watch (repeatable)")
    scope.add_argument("-A", "--all-namespaces", action="store_true",
                       help="watch every namespace")
    operator.add_argument("--route-port", type=_port, default=DEFAULT_PORT,
                          help=f"route API port (default: {DEFAULT_PORT})")
    operator.add_argument("--kubeconfig", default=None,
                          help="kubeconfig file (default: in-cluster config, then "
                               "$KUBECONFIG / ~/.kube/config)")
    operator.add_argument("--liveness-port", type=_port, default=DEFAULT_LIVENESS_PORT,
                          help="Kopf's liveness endpoint port, serving /healthz "
                               f"(default: {DEFAULT_LIVENESS_PORT}; 0 turns it off)")
    operator.add_argument("--leader-elect", action="store_true",
                          help="elect one replica (a coordination.k8s.io Lease) to probe "
                               "providers and write status; needed with more than one replica")
    operator.add_argument("--leader-lease", default="provider-router-leader",
                          help="name of the election Lease; give each release its own "
                               "(default: provider-router-leader)")
    _lease_ttl_option(operator)
    _state_options(operator)
    operator.add_argument("--replicas-service", default=None, metavar="SERVICE",
                          help="the route Service (in the leader namespace) whose ready "
                          "endpoints count the replicas; without --state-url each then "
                          "enforces its share of every limit, never the whole limit")
    _auth_options(operator, ["none", "kubernetes"], "kubernetes with the proxy, else none")
    _proxy_options(operator)
    operator.add_argument("--leader-namespace", default=None,
                          help="namespace of the election Lease (default: $POD_NAMESPACE, "
                               "else the first watched namespace, else 'default')")


def _run_crds(out: Path | None) -> int:
    from provider_router.api import all_crds, render_yaml, write_crds

    if out is not None:
        for path in write_crds(out):
            print(path)
        return 0
    sys.stdout.write("---\n".join(render_yaml(crd) for crd in all_crds()))
    return 0


def _run_operator(args: argparse.Namespace) -> int:
    import importlib

    try:
        operator = importlib.import_module("provider_router.operator")
    except ModuleNotFoundError as error:
        if error.name not in ("provider_router.operator", "kopf", "kubernetes"):
            raise
        print(f"provider-router operator is not available: {error}. Install the operator "
              "dependencies (kopf, kubernetes) or use `provider-router serve` for standalone "
              "mode.", file=sys.stderr)
        return 2
    leader_namespace = (args.leader_namespace or os.environ.get("POD_NAMESPACE")
                        or (args.namespaces[0] if args.namespaces else "default"))
    from provider_router._defaults import DEFAULT_OPERATOR_HOST
    from provider_router.runtime import RuntimeSettings

    runtime = RuntimeSettings(host=DEFAULT_OPERATOR_HOST, port=args.route_port,
                              lease_ttl=args.lease_ttl, state_url=args.state_url,
                              state_sync_ms=args.state_sync_ms,
                              proxy=_proxy_from(args)).with_changes(
        auth=args.auth, auth_audience=args.auth_audience)
    operator.run(namespaces=list(args.namespaces), all_namespaces=args.all_namespaces,
                 runtime=runtime, kubeconfig=args.kubeconfig,
                 liveness_port=args.liveness_port or None, leader_elect=args.leader_elect,
                 leader_namespace=leader_namespace, leader_lease=args.leader_lease,
                 replicas_service=args.replicas_service)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format=LOG_FORMAT, stream=sys.stderr)
    if args.log_level != "DEBUG":
        # One INFO line per probe request would drown what matters (health transitions).
        logging.getLogger("httpx").setLevel(logging.WARNING)
    if args.command == "serve":
        from provider_router.standalone import serve

        return serve(args.manifests, args.host, args.port, watch=not args.no_watch,
                     lease_ttl=args.lease_ttl, state_url=args.state_url,
                     state_sync_ms=args.state_sync_ms, auth=args.auth,
                     auth_audience=args.auth_audience, proxy=_proxy_from(args))
    if args.command == "demo":
        from provider_router.demo import demo

        return demo(args.host, args.port, duration=args.duration,
                    send_traffic=not args.no_traffic, manifests=args.manifests)
    if args.command == "crds":
        return _run_crds(args.out)
    if args.command == "operator":
        return _run_operator(args)
    return _run_client(args)


if __name__ == "__main__":
    sys.exit(main())
